import type Router from '@koa/router';
import type { Context } from 'koa';
import type { Db } from '../db/connect.ts';
import type { Logger } from './errors.ts';

// For load balancers and orchestrators. /healthz: the process answers (no database
// call). /readyz: this node can serve sign-ins: the database answers within a short
// time and signing keys are loaded; otherwise 503 naming the check that failed.

export const READINESS_DATABASE_TIMEOUT_MS = 2000;

type Check = 'ok' | 'failed' | 'timeout' | 'missing';

function answer(ctx: Context, status: number, body: unknown) {
  ctx.set('Cache-Control', 'no-store');
  ctx.status = status;
  ctx.body = body;
}

async function databaseCheck(db: Db, timeoutMs: number, logger: Logger): Promise<Check> {
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<'timeout'>((resolve) => {
    timer = setTimeout(() => resolve('timeout'), timeoutMs);
  });
  const query = db
    .raw('select 1')
    .then((): Check => 'ok')
    .catch((err: unknown): Check => {
      logger.error('readiness: the database did not answer', err);
      return 'failed';
    });
  try {
    return await Promise.race([query, timedOut]);
  } finally {
    clearTimeout(timer);
  }
}

export function healthRoutes(router: Router, o: { db: Db; signingKeysLoaded: () => boolean; logger: Logger; timeoutMs?: number }): void {
  router.get('/healthz', (ctx) => answer(ctx, 200, { status: 'ok' }));
  router.get('/readyz', async (ctx) => {
    const checks: Record<'database' | 'signingKeys', Check> = {
      database: await databaseCheck(o.db, o.timeoutMs ?? READINESS_DATABASE_TIMEOUT_MS, o.logger),
      signingKeys: o.signingKeysLoaded() ? 'ok' : 'missing',
    };
    const failed = Object.entries(checks).filter(([, result]) => result !== 'ok').map(([name]) => name);
    if (failed.length === 0) answer(ctx, 200, { status: 'ok', checks });
    else answer(ctx, 503, { status: 'unavailable', failed, checks });
  });
}
