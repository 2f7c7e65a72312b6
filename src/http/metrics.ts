import Router from '@koa/router';
import type Provider from 'oidc-provider';
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import { constantTimeEqual } from '../crypto/secrets.ts';
import type { Db } from '../db/connect.ts';
import { pendingCountKeys } from '../audit/pending-counts.ts';
import { cacheCounts, type CacheCounts } from '../db/cache.ts';
import { changeFeedOf } from '../db/change-feed.ts';
import { currentRequest } from './requests.ts';

// Prometheus metrics, one registry per app (several servers in one process, as in the
// tests, do not share counts). Labels are all low-cardinality: method, route template,
// status, outcome, kind. Never a path, an id or a client.

export const SIGN_IN_OUTCOMES = ['success', 'failure', 'locked', 'mfa_failed'] as const;
export type SignInOutcome = (typeof SIGN_IN_OUTCOMES)[number];

// The provider's models whose issue is counted, by the label they get.
const TOKEN_KINDS = {
  AccessToken: 'access_token',
  ClientCredentials: 'client_credentials',
  RefreshToken: 'refresh_token',
  AuthorizationCode: 'authorization_code',
} as const;
const TOKEN_EVENTS = Object.entries(TOKEN_KINDS).flatMap(([model, kind]) => {
  const event = model.replace(/(?<!^)([A-Z])/g, '_$1').toLowerCase(); // the provider's snake_case kind
  return [`${event}.saved`, `${event}.issued`].map((name) => ({ name, kind }));
});

export type Metrics = {
  registry: Registry;
  observeRequest(labels: { method: string; route: string; status: string }, seconds: number): void;
  signIns: Counter<'outcome'>;
  passwordChecks: Counter;
  tokensIssued: Counter<'kind'>;
};

type TarnPool = { numUsed(): number; numFree(): number; numPendingAcquires(): number; numPendingCreates(): number; max: number };
const isTarnPool = (pool: unknown): pool is TarnPool =>
  typeof pool === 'object' && pool !== null && ['numUsed', 'numFree', 'numPendingAcquires', 'numPendingCreates'].every((m) => typeof (pool as Record<string, unknown>)[m] === 'function');

// pendingLogoutDeliveries: read at each scrape (one indexed count).
export function createMetrics(o: { db?: Db; pendingLogoutDeliveries?: () => Promise<number> } = {}): Metrics {
  const registry = new Registry();
  const registers = [registry];
  collectDefaultMetrics({ register: registry });

  const requests = new Counter({ name: 'http_requests_total', help: 'HTTP requests answered, by method, route template and status', labelNames: ['method', 'route', 'status'] as const, registers });
  const durations = new Histogram({
    name: 'http_request_duration_seconds',
    help: 'Time to answer an HTTP request, by method, route template and status',
    labelNames: ['method', 'route', 'status'] as const,
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers,
  });
  const signIns = new Counter({ name: 'sme_passport_sign_ins_total', help: 'Password sign-ins, by outcome', labelNames: ['outcome'] as const, registers });
  for (const outcome of SIGN_IN_OUTCOMES) signIns.inc({ outcome }, 0);
  // Every argon2 verification a request makes: what the lockout and the hashing queue bound.
  const passwordChecks = new Counter({ name: 'sme_passport_password_checks_total', help: 'Passwords checked with argon2 while answering requests', registers });
  const tokensIssued = new Counter({ name: 'sme_passport_tokens_issued_total', help: 'Tokens and codes issued by the provider, by kind', labelNames: ['kind'] as const, registers });
  for (const kind of Object.values(TOKEN_KINDS)) tokensIssued.inc({ kind }, 0);

  // The database pool (knex's tarn pool; the embedded database has a pool of one).
  const pool = () => {
    const candidate = (o.db?.client as { pool?: unknown } | undefined)?.pool;
    return isTarnPool(candidate) ? candidate : undefined;
  };
  if (pool()) {
    const gauge = (name: string, help: string, read: (p: TarnPool) => number) =>
      new Gauge({
        name,
        help,
        registers,
        collect() {
          const p = pool();
          this.set(p ? read(p) : 0);
        },
      });
    gauge('sme_passport_db_pool_used', 'Database connections in use', (p) => p.numUsed());
    gauge('sme_passport_db_pool_free', 'Database connections open and idle', (p) => p.numFree());
    gauge('sme_passport_db_pool_pending_acquires', 'Requests waiting for a database connection', (p) => p.numPendingAcquires());
    gauge('sme_passport_db_pool_pending_creates', 'Database connections being opened', (p) => p.numPendingCreates());
    gauge('sme_passport_db_pool_max', 'Most database connections this node opens', (p) => p.max);
  }
  // The node's caches (src/db/cache.ts) and per-minute counts (audit/pending-counts.ts),
  // counted where they are kept.
  if (o.db) {
    const db = o.db;
    new Gauge({
      name: 'sme_passport_pending_counts',
      help: 'Per-minute counts (tokens, failed client authentications) kept in memory until the next write',
      registers,
      collect() {
        this.set(pendingCountKeys(db));
      },
    });
    const counted = (name: string, help: string, read: (c: CacheCounts) => number) =>
      new Counter({
        name,
        help,
        labelNames: ['cache'] as const,
        registers,
        collect() {
          this.reset();
          for (const [cache, counts] of Object.entries(cacheCounts(db).caches)) this.inc({ cache }, read(counts));
        },
      });
    counted('sme_passport_cache_hits_total', 'Reads answered from the node cache, by cache', (c) => c.hits);
    counted('sme_passport_cache_misses_total', 'Reads the node cache did not hold, which went to the database, by cache', (c) => c.misses);
    counted('sme_passport_cache_bypassed_total', 'Reads that went past the cache (change notifications down, or a change of this node not yet committed), by cache', (c) => c.bypassed);
    new Counter({
      name: 'sme_passport_change_notifications_total',
      help: 'Notifications of changes this node has heard, by table (each drops the caches read from it)',
      labelNames: ['table'] as const,
      registers,
      collect() {
        this.reset();
        for (const [table, count] of Object.entries(cacheCounts(db).changesHeard)) this.inc({ table }, count);
      },
    });
    const pendingLogouts = o.pendingLogoutDeliveries;
    if (pendingLogouts) {
      new Gauge({
        name: 'sme_passport_logout_deliveries_pending',
        help: 'Back-channel logout notifications not yet delivered (every node sees the same queue)',
        registers,
        async collect() {
          this.set(await pendingLogouts());
        },
      });
    }
    new Gauge({
      name: 'sme_passport_change_feed_up',
      help: 'Whether this node receives change notifications (1), and so uses its caches, or not (0)',
      registers,
      collect() {
        this.set(changeFeedOf(db)?.state === 'up' ? 1 : 0);
      },
    });
  }

  return {
    registry,
    observeRequest(labels, seconds) {
      requests.inc(labels);
      durations.observe(labels, seconds);
    },
    signIns,
    passwordChecks,
    tokensIssued,
  };
}

// Counts a password sign-in of the request being handled (a no-op outside one).
export function countSignIn(outcome: SignInOutcome): void {
  currentRequest()?.metrics?.signIns.inc({ outcome });
}

// Counts an argon2 verification made for the request being handled.
export function countPasswordCheck(): void {
  currentRequest()?.metrics?.passwordChecks.inc();
}

// Counts what the provider issues. Called for every provider built (a new one is built
// when the key set changes).
export function countIssuedTokens(provider: Provider, metrics: Metrics): void {
  const events = provider as unknown as NodeJS.EventEmitter; // the typings name each event separately
  for (const { name, kind } of TOKEN_EVENTS) events.on(name, () => metrics.tokensIssued.inc({ kind }));
}

// GET /metrics. With METRICS_TOKEN set it needs `Authorization: Bearer <token>`;
// without one it is open outside production and does not exist in production.
export function metricsRoute(router: Router, metrics: Metrics, access: { token: string | undefined; production: boolean }): void {
  router.get('/metrics', async (ctx, next) => {
    if (access.token === undefined) {
      if (access.production) return next();
    } else {
      const header = ctx.get('Authorization');
      const presented = /^Bearer /i.test(header) ? header.slice(7).trim() : '';
      if (!presented || !constantTimeEqual(presented, access.token)) {
        ctx.set('WWW-Authenticate', 'Bearer realm="metrics"');
        ctx.set('Cache-Control', 'no-store');
        ctx.status = 401;
        ctx.body = { error: 'invalid_token' };
        return;
      }
    }
    ctx.set('Cache-Control', 'no-store');
    ctx.type = metrics.registry.contentType;
    ctx.body = await metrics.registry.metrics();
  });
}
