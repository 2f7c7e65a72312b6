import type { Context, Next } from 'koa';
import { errors, type KoaContextWithOIDC, type Provider } from 'oidc-provider';
import type { Db } from '../db/connect.ts';
import { DatabaseUnavailable } from '../db/connection-errors.ts';
import { countClientAuth } from '../audit/client-auth-counts.ts';
import { recordWithRequest } from '../audit/request-records.ts';
import { recordEvent } from '../audit/trail.ts';
import { FAILURES_CHANNEL } from '../db/change-feed.ts';
import { failingKeys } from '../http/failing-keys.ts';
import { hit, usedUp, type RateLimit } from '../http/rate-limit.ts';
import { windowOf } from '../windows/clients.ts';
import { compareClientSecretDigests, providerRouteMatcher } from './internals.ts';

// Client secrets cannot be guessed at full speed. Failed client authentications at every
// endpoint where clients authenticate (CLIENT_AUTH_ROUTES) are counted per address and
// per client, across every node (rate_limits, in PostgreSQL). Once an address has used
// up its failures for the window, everything it sends to those endpoints is refused with
// 429 before it is looked at, a right secret included, so guessing cannot go on; once a
// client has, any attempt to authenticate as it with a secret is refused the same way
// (a guess spread over many addresses). Successes are never counted. Failures and
// refusals go on the audit trail per minute (audit/client-auth-counts.ts), and reaching
// a limit is put on record at once (client_auth.limited). Every failure is announced to
// every node (http/failing-keys.ts), so that an address or client with none in its
// window, the common case, is let through without a read.

export type ClientAuthLimits = { perIp: RateLimit; perClient: RateLimit };

// Every route of the library at which clients authenticate, with the event the library
// emits when a request there fails. Those of features not enabled (provider.ts) are not
// routed, so never matched; enabling one is guarded already.
export const CLIENT_AUTH_ROUTES = {
  token: 'grant.error',
  introspection: 'introspection.error',
  revocation: 'revocation.error',
  pushed_authorization_request: 'pushed_authorization_request.error',
  device_authorization: 'device_authorization.error',
  backchannel_authentication: 'backchannel_authentication.error',
} as const;
const IP_PREFIX = 'client-auth-ip:';
const CLIENT_PREFIX = 'client-auth-client:';
const ipKey = (ip: string) => `${IP_PREFIX}${ip}`;
const clientKey = (clientId: string) => `${CLIENT_PREFIX}${clientId}`;

// Shaped as the library's own errors, so that it answers it as OAuth error JSON.
export class ClientAuthLimited extends Error {
  readonly status = 429;
  readonly statusCode = 429;
  readonly expose = true;
  readonly error = 'invalid_client';
  readonly error_description: string;
  readonly retryAfter: number;
  constructor(who: 'address' | 'client', retryAfter: number) {
    super('invalid_client');
    this.name = 'ClientAuthLimited';
    this.retryAfter = retryAfter;
    this.error_description = `too many failed client authentications from this ${who}; try again in ${retryAfter} s`;
  }
}

export function limitClientAuthentication(provider: Provider, db: Db, limits: ClientAuthLimits, onRecordFailure: (err: unknown) => void): void {
  const routeOf = providerRouteMatcher(provider);
  const failing = failingKeys(db, [IP_PREFIX, CLIENT_PREFIX], Math.max(limits.perIp.windowSeconds, limits.perClient.windowSeconds));
  const check = async (key: string, rule: RateLimit) => ((await failing.mayBeUsedUp(key)) ? usedUp(db, key, rule) : { usedUp: false, retryAfter: 0 });

  // An address that has used up its failures is refused before anything is read.
  provider.use(async (ctx: Context, next: Next) => {
    const route = ctx.method === 'POST' ? routeOf(ctx.method, ctx.path) : undefined;
    if (!route || !Object.hasOwn(CLIENT_AUTH_ROUTES, route)) return next();
    let refusal: ClientAuthLimited | DatabaseUnavailable | undefined;
    try {
      const address = await check(ipKey(ctx.ip), limits.perIp);
      if (address.usedUp) {
        refusal = new ClientAuthLimited('address', address.retryAfter);
        await countClientAuth(db, { clientId: undefined, windowId: null, ip: ctx.ip, reason: 'limited' });
      }
    } catch (err) {
      // This runs before the provider's own error handling: answer as it would.
      if (!(err instanceof DatabaseUnavailable)) throw err;
      refusal = err;
    }
    if (!refusal) return next();
    // Named in the request's log line and metrics as the provider names its route
    // (http/requests.ts routeOf), which has not run.
    (ctx as Context & { _matchedRoute?: string })._matchedRoute = route;
    ctx.status = refusal.statusCode;
    if (refusal instanceof ClientAuthLimited) ctx.set('Retry-After', String(refusal.retryAfter));
    ctx.set('Cache-Control', 'no-store');
    ctx.body = { error: refusal.error, error_description: refusal.error_description };
  });

  // A client whose failures are used up is refused once the library knows who it is.
  compareClientSecretDigests(provider, async (clientId) => {
    const client = await check(clientKey(clientId), limits.perClient);
    if (client.usedUp) throw new ClientAuthLimited('client', client.retryAfter);
  });

  const limitReached = (ctx: KoaContextWithOIDC, reason: 'per address' | 'per client', rule: RateLimit, retryAfter: number) => {
    const client = ctx.oidc.client;
    return recordEvent(db, {
      actor: client ? { type: 'client', id: client.clientId } : { type: 'system', id: 'anonymous' },
      ip: ctx.ip,
      windowId: windowOf(client as never),
      event: 'client_auth.limited',
      ...(client && { target: `client:${client.clientId}` }),
      outcome: 'success',
      reason,
      after: { failures: rule.limit, windowSeconds: rule.windowSeconds, retryAfter },
    });
  };

  const failed = async (ctx: KoaContextWithOIDC) => {
    const client = ctx.oidc.client;
    const count = async (key: string, rule: RateLimit) => {
      const counted = await hit(db, key, rule, FAILURES_CHANNEL);
      failing.failed(key, counted.until);
      return counted;
    };
    const address = await count(ipKey(ctx.ip), limits.perIp);
    const perClient = client ? await count(clientKey(client.clientId), limits.perClient) : undefined;
    await countClientAuth(db, { clientId: client?.clientId, windowId: windowOf(client as never), ip: ctx.ip, reason: 'invalid_client' });
    if (address.hits === limits.perIp.limit) await limitReached(ctx, 'per address', limits.perIp, address.retryAfter);
    if (perClient?.hits === limits.perClient.limit) await limitReached(ctx, 'per client', limits.perClient, perClient.retryAfter);
  };

  // (The library emits these as (ctx, err); its typings spell each one out separately.)
  const events = provider as unknown as { on(event: string, listener: (ctx: KoaContextWithOIDC, err: unknown) => void): void };
  for (const event of Object.values(CLIENT_AUTH_ROUTES)) {
    events.on(event, (ctx, err) => {
      if (err instanceof ClientAuthLimited) {
        ctx.set('Retry-After', String(err.retryAfter));
        const client = ctx.oidc.client;
        recordWithRequest(ctx as unknown as Context, countClientAuth(db, { clientId: client?.clientId, windowId: windowOf(client as never), ip: ctx.ip, reason: 'limited' }), onRecordFailure);
      } else if (err instanceof errors.InvalidClientAuth) {
        recordWithRequest(ctx as unknown as Context, failed(ctx), onRecordFailure);
      }
    });
  }
}
