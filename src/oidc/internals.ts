import crypto from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { Readable } from 'node:stream';
import type Koa from 'koa';
import type { Provider } from 'oidc-provider';
import instance from 'oidc-provider/lib/helpers/weak_cache.js';

// The one module that reaches into oidc-provider beyond its documented configuration,
// so a library upgrade has one place to check.

// The database holds only a SHA-256 digest of each client secret, and the adapter hands
// that digest to the library as `client_secret`. Compare digests, in constant time.
// (Symmetric uses of the secret, client_secret_jwt and HS* algorithms, are disabled.)
// During a rotation's grace period the client also carries the replaced digest as
// `client_secret_previous`, and either one matches. Both comparisons always run, so the
// time taken tells neither which one matched nor whether there is a previous one.
// `admit` runs first, once the library knows which client is asking: it may refuse the
// attempt by throwing (a client whose secret is being guessed), before any comparison.
export function compareClientSecretDigests(provider: Provider, admit: (clientId: string) => Promise<void> = async () => {}): void {
  type Client = { clientId: string; clientSecret: string; client_secret_previous?: string; compareClientSecret(actual: string): Promise<boolean> };
  const proto = provider.Client.prototype as unknown as Client;
  proto.compareClientSecret = async function compareClientSecret(this: Client, actual: string) {
    await admit(this.clientId);
    if (typeof actual !== 'string') return false;
    const digest = crypto.createHash('sha256').update(actual).digest();
    const current = sameDigest(this.clientSecret, digest);
    const previous = sameDigest(this.client_secret_previous ?? '', digest);
    return current || previous;
  };
}

// A stored digest (base64url, as sha256() writes it) against the digest of what was
// presented, in constant time: both are 32 bytes, and one that is not (no previous
// digest) is compared all the same, against the presented one, so that it takes as long.
function sameDigest(stored: string, presented: Buffer): boolean {
  const bytes = Buffer.from(stored, 'base64url');
  const comparable = bytes.length === presented.length;
  return crypto.timingSafeEqual(comparable ? bytes : presented, presented) && comparable;
}

// Who is signed in at the provider in this browser, for the provider's own pages
// (the account center). Read from the provider's session, so signing out anywhere
// signs out here too.
export async function signedInSession(provider: Provider, ctx: Koa.Context): Promise<{ uid: string; accountId: string } | undefined> {
  const session = await provider.Session.get(ctx);
  return session.accountId ? { uid: session.uid, accountId: session.accountId } : undefined;
}

// The windows a browser's session is signed in at, each with its sid, read before the
// library changes the session (a sign-out). Read through the adapter, which remembers it
// for the request, so the library's own read costs nothing more.
export async function sessionSids(provider: Provider, ctx: Koa.Context): Promise<Map<string, string>> {
  const session = await provider.Session.get(ctx);
  const authorizations = (session as { authorizations?: Record<string, { sid?: string }> }).authorizations ?? {};
  return new Map(Object.entries(authorizations).flatMap(([clientId, { sid }]) => (sid ? [[clientId, sid] as [string, string]] : [])));
}

// oidc-provider sends back-channel logout once, during the end-session request, and
// forgets it. Each provider's clients get a backchannelLogout that queues the
// notification instead (the library awaits it before the session ends); the library's
// own sender (a freshly signed logout token, POSTed through the configured fetch,
// 200 or 204 expected) is kept for the delivery.
type LogoutSender = (this: object, sub: string, sid: string) => Promise<void>;
const librarySenders = new WeakMap<Provider, LogoutSender>();

export function queueBackchannelLogouts(provider: Provider, queue: (client: { clientId: string; [key: string]: unknown }, accountId: string, sid: string) => Promise<void>): void {
  const proto = provider.Client.prototype as unknown as { backchannelLogout: LogoutSender };
  if (typeof proto.backchannelLogout !== 'function') throw new Error("oidc-provider's Client#backchannelLogout is not where internals.ts expects it (lib/models/client.js)");
  librarySenders.set(provider, proto.backchannelLogout);
  proto.backchannelLogout = function backchannelLogout(this: object, sub: string, sid: string) {
    return queue(this as { clientId: string }, sub, sid);
  };
}

export function sendBackchannelLogout(provider: Provider, client: object, accountId: string, sid: string): Promise<void> {
  const send = librarySenders.get(provider);
  if (!send) throw new Error('this provider does not queue its back-channel logouts (queueBackchannelLogouts)');
  return send.call(client, accountId, sid);
}

// The name of the provider's route a request goes to, as the provider's own router
// picks it: case-insensitively, with or without a trailing slash. Anything that guards
// a route from in front of the router must match requests exactly as it does. Missing
// router (a library upgrade): refuse to start rather than guard nothing.
export function providerRouteMatcher(provider: Provider): (method: string, path: string) => string | undefined {
  const router = instance(provider)?.router;
  if (typeof router?.match !== 'function') throw new Error("oidc-provider's router is not where internals.ts expects it (lib/helpers/weak_cache.js)");
  return (method, path) => router.match(method, path)?.route.name;
}

// A token the library is issuing (AccessToken, ClientCredentials): `format` is 'jwt' or
// 'opaque' (lib/models/formats/index.js).
export type IssuedToken = { jti: string; format?: string; sessionUid?: string; accountId?: string; [field: string]: unknown };

// Saves a record of an issued token as the library saves an opaque one (the fields of
// its model's IN_PAYLOAD, lib/models/formats/opaque.js), through the token's own
// adapter, with `fields` added. A record whose `format` is not 'opaque' is refused by
// the library when presented as an opaque token (the same file's verify).
export async function saveTokenRecord(token: IssuedToken, fields: Record<string, unknown>, expiresIn: number): Promise<void> {
  const t = token as IssuedToken & { constructor: { IN_PAYLOAD: string[] }; adapter: { upsert(id: string, payload: object, expiresIn: number): Promise<void> } };
  const record: Record<string, unknown> = { ...fields };
  for (const field of t.constructor.IN_PAYLOAD) if (t[field] !== undefined) record[field] = t[field];
  await t.adapter.upsert(t.jti, record, expiresIn);
}

// The library reads a request's body itself, from the request stream
// (lib/shared/selective_body.js): a middleware that read it first hands the library a
// request whose stream gives `body` again (the same or changed).
export function replayRequestBody(ctx: Koa.Context, body: Buffer): void {
  const original = ctx.req;
  const stream = Readable.from([body]);
  const headers = { ...original.headers, 'content-length': String(body.length) };
  delete headers['transfer-encoding'];
  const fromStream = new Set<PropertyKey>(['readable', 'readableEncoding', 'readableEnded', 'iterator', Symbol.asyncIterator, 'read', 'on', 'once', 'off', 'removeListener', 'pipe', 'resume', 'pause', 'setEncoding']);
  const req = new Proxy(original, {
    get(target, prop) {
      if (prop === 'headers') return headers;
      const source = fromStream.has(prop) ? (stream as unknown as IncomingMessage) : target;
      const value = Reflect.get(source, prop, source) as unknown;
      return typeof value === 'function' ? value.bind(source) : value;
    },
  });
  ctx.req = req;
  ctx.request.req = req;
}
