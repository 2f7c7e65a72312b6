import type { Context, Next } from 'koa';
import type { Db } from '../db/connect.ts';
import { render } from './render.ts';

// Per-IP limits that hold across every node: a fixed window counted in PostgreSQL with
// one atomic upsert. (rate-limiter-flexible's PostgreSQL store needs a pg connection;
// the embedded database is not one.) Behind a proxy, TRUST_PROXY makes ctx.ip the client's.

export type RateLimit = { limit: number; windowSeconds: number };

// Counts one hit; `hits` is how many the window has had, this one included, `until`
// when the window ends (ms since the epoch). With `announce`, the hit is also sent to
// every node on that channel, at commit (http/failing-keys.ts).
export async function hit(
  db: Db,
  key: string,
  rule: RateLimit,
  announce?: string,
): Promise<{ allowed: boolean; retryAfter: number; hits: number; until: number }> {
  const { rows } = (await db.raw(
    `WITH r AS (
       INSERT INTO rate_limits AS r (key, window_start, hits)
         VALUES (?, to_timestamp(floor(extract(epoch FROM now()) / ?) * ?), 1)
       ON CONFLICT (key) DO UPDATE SET
         hits = CASE WHEN r.window_start = EXCLUDED.window_start THEN r.hits + 1 ELSE 1 END,
         window_start = EXCLUDED.window_start
       RETURNING hits, extract(epoch FROM window_start)::float8 * 1000 + ? * 1000 AS until,
                 ceil(extract(epoch FROM (window_start + ? * interval '1 second' - now())))::int AS retry_after)
     SELECT hits, until, retry_after, CASE WHEN ?::text IS NOT NULL THEN pg_notify(?, json_build_object('key', ?::text, 'until', until)::text) END
       FROM r`,
    [key, rule.windowSeconds, rule.windowSeconds, rule.windowSeconds, rule.windowSeconds, announce ?? null, announce ?? null, key],
  )) as { rows: Array<{ hits: number; until: number; retry_after: number }> };
  const { hits, until, retry_after } = rows[0]!;
  return { allowed: hits <= rule.limit, retryAfter: Math.max(1, retry_after), hits, until };
}

// Whether the key's window is used up, without counting a hit: for limits on what fails
// (counted with hit() afterwards), checked before the attempt.
export async function usedUp(db: Db, key: string, rule: RateLimit): Promise<{ usedUp: boolean; retryAfter: number }> {
  const row = (await db('rate_limits')
    .where({ key })
    .where('window_start', db.raw('to_timestamp(floor(extract(epoch FROM now()) / ?) * ?)', [rule.windowSeconds, rule.windowSeconds]))
    .first('hits', db.raw("ceil(extract(epoch FROM (window_start + ? * interval '1 second' - now())))::int AS retry_after", [rule.windowSeconds]))) as
    | { hits: number; retry_after: number }
    | undefined;
  return { usedUp: row !== undefined && row.hits >= rule.limit, retryAfter: Math.max(1, row?.retry_after ?? 1) };
}

// A middleware answering 429 with Retry-After once the client's IP has used its window.
export function rateLimit(db: Db, name: string, rule: RateLimit) {
  return async (ctx: Context, next: Next) => {
    const { allowed, retryAfter } = await hit(db, `${name}:${ctx.ip}`, rule);
    if (allowed) return next();
    ctx.set('Retry-After', String(retryAfter));
    render(ctx, 'error', { message: 'errorTooMany', code: 'too_many_requests', detail: `${retryAfter} s` }, 429);
  };
}

export async function purgeOldWindows(db: Db): Promise<number> {
  return db('rate_limits').where('window_start', '<', db.raw("now() - interval '1 day'")).delete();
}
