import crypto from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import querystring from 'node:querystring';
import type { Context } from 'koa';
import { createLocalJWKSet, decodeProtectedHeader, jwtVerify, type JWK } from 'jose';
import type { KoaContextWithOIDC } from 'oidc-provider';
import type { Db } from '../db/connect.ts';
import { actingEnterprise } from '../enterprises/acting.ts';
import { replayRequestBody, saveTokenRecord, type IssuedToken } from './internals.ts';

// RFC 9068 JWT access tokens for the windows' APIs (src/windows/apis.ts). The library
// signs them and keeps no record of them, and its introspection and revocation
// endpoints refuse any JWT (unsupported_token_type). Here each one is also recorded,
// like an opaque token, under its jti, and a JWT sent to introspection or revocation
// whose signature verifies is looked up by that record: it is answered active, with
// its aud, until it expires or is revoked (revocation deletes the record, as for an
// opaque token; so does revoking its grant). An API that verifies tokens on its own
// sees only the signature and the expiry: revocation reaches it through introspection.

// The record says it stands for a JWT: presented as an opaque token (its jti is in the
// JWT, which an API may log), the library refuses it (formats/opaque.js verify).
const RECORD_FORMAT = 'jwt';

// formats.customizers.jwt: called before the token is signed, in the token request,
// which waits for the record.
export async function recordJwtAccessToken(token: IssuedToken, payload: { iat: number; exp: number }): Promise<void> {
  await saveTokenRecord(token, { iat: payload.iat, exp: payload.exp, format: RECORD_FORMAT }, Math.max(1, payload.exp - Math.floor(Date.now() / 1000)));
}

// The claims a JWT access token carries beyond RFC 9068's: whom the person acts for
// (enterprise_id), from the sign-in session the token came from. Opaque tokens (the
// windows' own and the admin API's) get none: they are introspected, not read.
export async function jwtTokenClaims(db: Db, token: IssuedToken): Promise<Record<string, unknown> | undefined> {
  if (token.format !== 'jwt' || !token.sessionUid || !token.accountId) return undefined;
  const acting = await actingEnterprise(db, token.sessionUid, token.accountId);
  return acting ? { enterprise_id: acting.enterprise.id } : undefined;
}

// A verified JWT's record, under a name good for this request only: the library is
// handed the name instead of the JWT, and the adapter (adapter.ts) finds the record by
// it. Nothing a client sends can be such a name.
const verified = new Map<string, string>();
export const jwtIdOfLookup = (value: string): string | undefined => verified.get(value);
export const isJwtRecord = (payload: Record<string, unknown>): boolean => payload.format === RECORD_FORMAT;

const PUBLIC_MEMBERS = ['kty', 'kid', 'alg', 'use', 'n', 'e', 'crv', 'x', 'y'] as const;
const publicKeys = (keys: JWK[]) => keys.map((k) => Object.fromEntries(PUBLIC_MEMBERS.filter((m) => k[m] !== undefined).map((m) => [m, k[m]])) as JWK);

// The library's own limit on these bodies (lib/shared/selective_body.js).
const BODY_LIMIT = 56 * 1024;

async function readBody(req: IncomingMessage): Promise<Buffer | undefined> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > BODY_LIMIT) return undefined;
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks);
}

const isJwt = (value: unknown): value is string => {
  if (typeof value !== 'string') return false;
  try {
    return decodeProtectedHeader(value).typ === 'at+jwt';
  } catch {
    return false;
  }
};

// Middleware for the provider (provider.use), for its introspection and revocation
// routes: a JWT access token is replaced by the name of its record if it verifies
// (signature with one of the provider's keys, issuer, typ; an expired one does not),
// and by a name that finds nothing if it does not, so it is answered inactive.
export function structuredTokenLookups(issuer: string, keys: JWK[], isLookupRoute: (ctx: KoaContextWithOIDC) => boolean) {
  const jwks = createLocalJWKSet({ keys: publicKeys(keys) });
  return async (ctx: KoaContextWithOIDC, next: () => Promise<void>) => {
    if (ctx.method !== 'POST' || !isLookupRoute(ctx) || !ctx.is('application/x-www-form-urlencoded')) return next();
    const raw = await readBody(ctx.req);
    if (!raw) {
      ctx.status = 413;
      ctx.body = { error: 'invalid_request', error_description: 'request entity too large' };
      return;
    }
    const params = querystring.parse(raw.toString('utf8'));
    let name: string | undefined;
    if (isJwt(params.token)) {
      name = `jwt-record.${crypto.randomBytes(24).toString('base64url')}`;
      try {
        const { payload } = await jwtVerify(params.token, jwks, { issuer, typ: 'at+jwt' });
        if (typeof payload.jti === 'string') verified.set(name, payload.jti);
      } catch {
        // Not ours, tampered with or expired: answered like an unknown token.
      }
      params.token = name;
    }
    replayRequestBody(ctx as unknown as Context, name ? Buffer.from(querystring.stringify(params)) : raw);
    try {
      await next();
    } finally {
      if (name) verified.delete(name);
    }
  };
}
