import { AsyncLocalStorage } from 'node:async_hooks';
import crypto from 'node:crypto';
import type { Context, Next } from 'koa';
import type { Logger } from './errors.ts';
import type { Metrics } from './metrics.ts';

// Every request gets an id (returned in X-Request-Id, named in every log line written
// while it is handled), one log line when it ends, and its count and duration in the
// metrics. This is the first middleware of the app; it never answers by itself.

// `started`: process.hrtime.bigint() when the request came in (db/change-feed.ts fence).
export type RequestContext = { requestId: string; metrics: Metrics | undefined; started: bigint };

const store = new AsyncLocalStorage<RequestContext>();

// The request being handled, wherever in its call chain the caller is.
export const currentRequest = (): RequestContext | undefined => store.getStore();

// An id set by a trusted proxy or load balancer is kept (so one id follows the request
// through every hop), if it is plainly an id.
const INCOMING_ID = /^[A-Za-z0-9._-]{8,128}$/;

// A low-cardinality name for what answered: the provider's route name ('token',
// 'authorization', 'userinfo', 'jwks'...), else the template of the route a router
// matched ('/interaction/:uid/login'), else 'other'. Never the path itself: paths carry
// ids.
export function routeOf(ctx: Context): string {
  const oidcRoute = (ctx as Context & { oidc?: { route?: unknown } }).oidc?.route;
  if (typeof oidcRoute === 'string' && oidcRoute) return oidcRoute;
  const matched = (ctx as Context & { _matchedRoute?: unknown })._matchedRoute;
  if (typeof matched === 'string' && matched) return matched;
  return 'other';
}

export function requestHandling(o: { logger: Logger; trustProxy: boolean; metrics?: Metrics }) {
  return (ctx: Context, next: Next): Promise<void> => {
    const incoming = o.trustProxy ? ctx.get('X-Request-Id') : '';
    const requestId = incoming && INCOMING_ID.test(incoming) ? incoming : crypto.randomUUID();
    const started = process.hrtime.bigint();
    return store.run({ requestId, metrics: o.metrics, started }, async () => {
      ctx.set('X-Request-Id', requestId);
      let status: number | undefined;
      try {
        await next();
      } catch (err) {
        status = (err as { status?: number }).status ?? 500;
        throw err;
      } finally {
        status ??= ctx.status;
        // Whatever replaced the headers on the way out, the id goes back.
        if (!ctx.headerSent) ctx.set('X-Request-Id', requestId);
        const seconds = Number(process.hrtime.bigint() - started) / 1e9;
        const route = routeOf(ctx);
        const method = ctx.method;
        o.metrics?.observeRequest({ method, route, status: String(status) }, seconds);
        o.logger.info(`${method} ${route} ${status}`, { requestId, method, route, status, durationMs: Math.round(seconds * 1e4) / 10 });
      }
    });
  };
}
