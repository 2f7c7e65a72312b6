import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as oidc from 'openid-client';
import { createRemoteJWKSet, decodeProtectedHeader, jwtVerify } from 'jose';
import { createAccount } from '../../src/accounts/accounts.ts';
import { PASSWORD_POLICIES } from '../../src/accounts/password-policy.ts';
import { createEnterprise, type Enterprise } from '../../src/enterprises/enterprises.ts';
import { addMember } from '../../src/enterprises/memberships.ts';
import { createApi, deleteApi, listApis, updateApi, type Api } from '../../src/windows/apis.ts';
import { ConflictError, InputError, NotFoundError } from '../../src/errors.ts';
import { listWindows } from '../../src/windows/windows.ts';
import { browser } from '../helpers/browser.ts';
import { statementsOf } from '../helpers/statements.ts';
import { startTestServer, type TestServer } from '../helpers/server.ts';
import { windowSite, type WindowSite } from '../helpers/window-site.ts';

// The APIs of a window: a client of the window asks for a token for one with
// resource=<identifier> and gets an RFC 9068 JWT the API verifies on its own.

let server: TestServer;
let a: WindowSite;
let b: WindowSite;
let orders: Api;
let shared: Api;
let ofB: Api;
let acme: Enterprise;
const password = 'Central-Plains-2014';

beforeAll(async () => {
  server = await startTestServer();
  const windows = await listWindows(server.db);
  const windowA = windows.find((w) => w.region === '410100')!.id;
  const windowB = windows.find((w) => w.region === '410300')!.id;
  const grantTypes = ['authorization_code', 'refresh_token', 'client_credentials'] as const;
  a = await windowSite(server, { windowId: windowA, name: 'zz-apis', grantTypes: [...grantTypes] });
  b = await windowSite(server, { windowId: windowB, name: 'ly-apis', grantTypes: [...grantTypes] });
  orders = await createApi(server.db, { windowId: windowA, identifier: 'https://orders.zz.example/api', name: '订单服务', scopes: ['orders:read', 'orders:write'] });
  shared = await createApi(server.db, { windowId: windowA, identifier: 'https://catalog.zz.example/', name: '产品目录', scopes: ['catalog:read'], otherWindows: true });
  ofB = await createApi(server.db, { windowId: windowB, identifier: 'https://ly.example/api', name: '洛阳服务', scopes: ['ly:read'] });
  acme = await createEnterprise(server.db, { uscc: '91410000170001401D', name: '宇通客车股份有限公司', type: 'enterprise', region: '410100', status: 'verified' });
  const person = await createAccount(server.db, { username: 'api.user', displayName: '钱进', password }, PASSWORD_POLICIES.mlps);
  await addMember(server.db, { enterpriseId: acme.id, accountId: person.id, role: 'legal_rep' });
  await createAccount(server.db, { username: 'api.loner', displayName: '吴一', password }, PASSWORD_POLICIES.mlps);
});

afterAll(async () => {
  await server?.close();
});

const jwks = () => createRemoteJWKSet(new URL(`${server.url}/jwks`));
const verify = (token: string, audience: string, currentDate?: Date) => jwtVerify(token, jwks(), { issuer: server.url, audience, typ: 'at+jwt', ...(currentDate && { currentDate }) });

async function failure(p: Promise<unknown>): Promise<{ error?: string; code?: string; status?: number }> {
  try {
    await p;
  } catch (err) {
    const e = err as { error?: string; code?: string; status?: number };
    return { error: e.error, code: e.code, status: e.status };
  }
  throw new Error('expected a failure');
}

// A person's sign-in at window A's site asking for a token for `resource`.
async function codeFlowToken(username: string, resource: string, scope: string) {
  const you = browser();
  const { visit, checks } = await a.authorize(you, { scope, resource });
  let at = visit;
  if (at.kind === 'page' && at.html.includes('name="password"')) at = await you.submit(at, '/login', { identifier: username, password }, a.redirectUri);
  if (at.kind === 'page' && at.html.includes('/select"')) at = await you.submit(at, '/select', { enterprise: acme.id }, a.redirectUri);
  if (at.kind !== 'redirect') throw new Error(`expected a redirect, got ${at.status}: ${at.html.slice(0, 800)}`);
  return oidc.authorizationCodeGrant(a.config, at.to, checks, { resource });
}

describe('window APIs: JWT access tokens', () => {
  it('a person signed in at window A gets a JWT for A’s API (code flow), with whom they act for', async () => {
    const tokens = await codeFlowToken('api.user', orders.identifier, 'openid profile enterprise orders:read');
    expect(decodeProtectedHeader(tokens.access_token)).toMatchObject({ typ: 'at+jwt', alg: 'RS256' });
    const { payload } = await verify(tokens.access_token, orders.identifier);
    expect(payload).toMatchObject({ iss: server.url, aud: orders.identifier, client_id: a.clientId, scope: 'orders:read', enterprise_id: acme.id });
    expect(payload.sub).toBe(tokens.claims()!.sub);
    expect(payload.exp! - payload.iat!).toBe(orders.accessTokenTtlSeconds);
    expect(typeof payload.jti).toBe('string');
    // The ID token is the window's, as always.
    expect(tokens.claims()!.aud).toBe(a.clientId);
  });

  it('without an acting enterprise the token has no enterprise_id', async () => {
    const tokens = await codeFlowToken('api.loner', orders.identifier, 'openid orders:read orders:write');
    const { payload } = await verify(tokens.access_token, orders.identifier);
    expect(payload.scope).toBe('orders:read orders:write');
    expect(payload).not.toHaveProperty('enterprise_id');
  });

  it('client_credentials: a JWT for the API, its subject the client', async () => {
    const tokens = await oidc.clientCredentialsGrant(a.config, { scope: 'orders:read', resource: orders.identifier });
    const { payload } = await verify(tokens.access_token, orders.identifier);
    expect(payload).toMatchObject({ sub: a.clientId, client_id: a.clientId, scope: 'orders:read', aud: orders.identifier });
    expect(payload).not.toHaveProperty('enterprise_id');
  });

  it('a client limited to some OpenID Connect scopes still gets only those, and any API scope of its window', async () => {
    const narrow = await windowSite(server, { windowId: orders.windowId, name: 'zz-narrow', grantTypes: ['client_credentials'], redirectUris: [], postLogoutRedirectUris: [], scopes: ['openid'] });
    expect((await failure(oidc.clientCredentialsGrant(narrow.config, { scope: 'email orders:read', resource: orders.identifier }))).error).toBe('invalid_scope');
    const tokens = await oidc.clientCredentialsGrant(narrow.config, { scope: 'openid orders:read', resource: orders.identifier });
    expect((await verify(tokens.access_token, orders.identifier)).payload.scope).toBe('orders:read');
  });

  it('a token for A’s API does not verify as one for B’s API', async () => {
    const tokens = await oidc.clientCredentialsGrant(a.config, { scope: 'orders:read', resource: orders.identifier });
    expect((await failure(verify(tokens.access_token, ofB.identifier))).code).toBe('ERR_JWT_CLAIM_VALIDATION_FAILED');
  });

  it('a client of window B is refused A’s API (invalid_target), unless the API allows other windows', async () => {
    expect((await failure(oidc.clientCredentialsGrant(b.config, { scope: 'orders:read', resource: orders.identifier }))).error).toBe('invalid_target');
    const tokens = await oidc.clientCredentialsGrant(b.config, { scope: 'catalog:read', resource: shared.identifier });
    expect((await verify(tokens.access_token, shared.identifier)).payload).toMatchObject({ client_id: b.clientId, scope: 'catalog:read' });
    // At the authorization endpoint too.
    const { visit } = await b.authorize(browser(), { scope: 'openid orders:read', resource: orders.identifier });
    expect(visit.kind === 'redirect' ? visit.to.searchParams.get('error') : visit.html).toBe('invalid_target');
  });

  it('an expired token is refused; the lifetime follows the API', async () => {
    const quick = await createApi(server.db, { windowId: orders.windowId, identifier: 'http://127.0.0.1:9/quick', name: 'quick', scopes: ['quick:go'], accessTokenTtlSeconds: 60 });
    const tokens = await oidc.clientCredentialsGrant(a.config, { scope: 'quick:go', resource: quick.identifier });
    expect(tokens.expires_in).toBe(60);
    const { payload } = await verify(tokens.access_token, quick.identifier);
    expect((await failure(verify(tokens.access_token, quick.identifier, new Date((payload.exp! + 1) * 1000)))).code).toBe('ERR_JWT_EXPIRED');
    await updateApi(server.db, quick.id, { accessTokenTtlSeconds: 120 });
    expect((await oidc.clientCredentialsGrant(a.config, { scope: 'quick:go', resource: quick.identifier })).expires_in).toBe(120);
  });

  it('introspection answers a JWT with its aud and claims; revoked, it is inactive', async () => {
    const tokens = await codeFlowToken('api.user', orders.identifier, 'openid enterprise orders:write');
    const active = await oidc.tokenIntrospection(a.config, tokens.access_token);
    expect(active).toMatchObject({ active: true, aud: orders.identifier, client_id: a.clientId, scope: 'orders:write', enterprise_id: acme.id, token_type: 'Bearer' });
    expect(active.sub).toBe(tokens.claims()!.sub);
    await oidc.tokenRevocation(a.config, tokens.access_token);
    expect((await oidc.tokenIntrospection(a.config, tokens.access_token)).active).toBe(false);

    const machine = await oidc.clientCredentialsGrant(a.config, { scope: 'orders:read', resource: orders.identifier });
    expect(await oidc.tokenIntrospection(a.config, machine.access_token)).toMatchObject({ active: true, aud: orders.identifier, client_id: a.clientId });
    await oidc.tokenRevocation(a.config, machine.access_token);
    expect((await oidc.tokenIntrospection(a.config, machine.access_token)).active).toBe(false);
  });

  it('a refresh token gives a new JWT for the API; revoking the grant (its refresh token) ends its JWTs at introspection', async () => {
    const tokens = await codeFlowToken('api.loner', orders.identifier, 'openid orders:read');
    expect(tokens.refresh_token).toBeDefined();
    const refreshed = await oidc.refreshTokenGrant(a.config, tokens.refresh_token!, { resource: orders.identifier });
    expect((await verify(refreshed.access_token, orders.identifier)).payload).toMatchObject({ scope: 'orders:read', client_id: a.clientId });
    for (const t of [tokens.access_token, refreshed.access_token]) expect((await oidc.tokenIntrospection(a.config, t)).active).toBe(true);
    await oidc.tokenRevocation(a.config, refreshed.refresh_token!);
    for (const t of [tokens.access_token, refreshed.access_token]) expect((await oidc.tokenIntrospection(a.config, t)).active).toBe(false);
  });

  it('a JWT whose signature does not verify, or that is not ours, is inactive; its jti alone is not a token', async () => {
    const tokens = await oidc.clientCredentialsGrant(a.config, { scope: 'orders:read', resource: orders.identifier });
    const [header, body, signature] = tokens.access_token.split('.');
    const claims = JSON.parse(Buffer.from(body!, 'base64url').toString()) as { jti: string; scope: string };
    const forged = `${header}.${Buffer.from(JSON.stringify({ ...claims, scope: 'orders:read orders:write' })).toString('base64url')}.${signature}`;
    expect((await oidc.tokenIntrospection(a.config, forged)).active).toBe(false);
    expect((await oidc.tokenIntrospection(a.config, claims.jti)).active).toBe(false);
    expect((await oidc.tokenIntrospection(a.config, tokens.access_token)).active).toBe(true);
    // Revoking the forged one revokes nothing.
    await oidc.tokenRevocation(a.config, forged);
    expect((await oidc.tokenIntrospection(a.config, tokens.access_token)).active).toBe(true);
  });

  it('a third party is given an API’s scopes only on the consent page, which names the API', async () => {
    const partner = await windowSite(server, { windowId: orders.windowId, name: 'zz-partner', thirdParty: true });
    const you = browser();
    const { visit, checks } = await partner.authorize(you, { scope: 'openid profile orders:read', resource: orders.identifier });
    const consent = await you.submit(visit, '/login', { identifier: 'api.loner', password }, partner.redirectUri);
    if (consent.kind !== 'page') throw new Error('expected the consent page');
    expect(consent.html).toContain('订单服务');
    expect(consent.html).toContain('<code>orders:read</code>');
    const back = await you.submit(consent, '/confirm', {}, partner.redirectUri);
    if (back.kind !== 'redirect') throw new Error(`expected a redirect, got ${back.status}`);
    const tokens = await oidc.authorizationCodeGrant(partner.config, back.to, checks, { resource: orders.identifier });
    expect((await verify(tokens.access_token, orders.identifier)).payload).toMatchObject({ client_id: partner.clientId, scope: 'orders:read' });
  });

  it('a token with no resource (opaque) is introspected with its client as aud', async () => {
    const { tokens } = await a.signIn(browser(), { identifier: 'api.loner', password });
    const machine = await oidc.clientCredentialsGrant(a.config, { scope: 'openid' });
    for (const plain of [tokens, machine]) {
      expect(plain.access_token.split('.')).toHaveLength(1);
      expect(await oidc.tokenIntrospection(a.config, plain.access_token)).toMatchObject({ active: true, aud: a.clientId, client_id: a.clientId });
    }
  });

  it('resource= that is not registered, malformed, or two of them: invalid_target', async () => {
    for (const resource of ['https://unknown.example/api', 'https://orders.zz.example/api/', 'https://orders.zz.example/api#x', 'urn:x:y', 'not a uri']) {
      expect((await failure(oidc.clientCredentialsGrant(a.config, { scope: 'orders:read', resource })))).toMatchObject({ error: expect.stringMatching(/invalid_target|invalid_request/) });
    }
    const two = new URLSearchParams({ grant_type: 'client_credentials', scope: 'orders:read' });
    two.append('resource', orders.identifier);
    two.append('resource', shared.identifier);
    const res = await fetch(`${server.url}/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: `Basic ${Buffer.from(`${a.clientId}:${a.clientSecret}`).toString('base64')}` },
      body: two,
    });
    expect(res.status).toBe(400);
    expect(((await res.json()) as { error: string }).error).toBe('invalid_target');
  });

  it('the back end of an API’s window may introspect tokens for it issued to another window’s client', async () => {
    const theirs = await oidc.clientCredentialsGrant(b.config, { scope: 'catalog:read', resource: shared.identifier });
    expect(await oidc.tokenIntrospection(a.config, theirs.access_token)).toMatchObject({ active: true, aud: shared.identifier, client_id: b.clientId });
    // Not a token of B's for one of B's own APIs.
    const own = await oidc.clientCredentialsGrant(b.config, { scope: 'ly:read', resource: ofB.identifier });
    expect((await oidc.tokenIntrospection(a.config, own.access_token)).active).toBe(false);
    expect((await oidc.tokenIntrospection(b.config, own.access_token)).active).toBe(true);
  });

  it('an identifier on the provider’s own origin is never a window’s API', async () => {
    const mine = await createApi(server.db, { windowId: orders.windowId, identifier: `${server.url}/api/admin/v1`, name: 'not the admin API', scopes: ['admin:all'] });
    expect((await failure(oidc.clientCredentialsGrant(a.config, { scope: 'admin:all', resource: mine.identifier }))).error).toBe('invalid_target');
    await deleteApi(server.db, mine.id);
  });

  it('reads the APIs from the node’s cache, not the database, on every token request', async () => {
    await oidc.clientCredentialsGrant(a.config, { scope: 'orders:read', resource: orders.identifier });
    const statements = await statementsOf(server.db, async () => {
      await oidc.clientCredentialsGrant(a.config, { scope: 'orders:read', resource: orders.identifier });
      await failure(oidc.clientCredentialsGrant(a.config, { scope: 'orders:read', resource: 'https://nowhere.example/api' }));
    });
    // The one statement is the token's record (for introspection); a refusal costs none.
    expect(statements).toEqual([expect.stringMatching(/^INSERT INTO oidc_artifacts/)]);
  });

  it('refuses bad APIs by field, a taken identifier, an unknown window, and keeps one of two racing registrations', async () => {
    const windowId = orders.windowId;
    const base = { windowId, name: 'x', scopes: ['x:read'] };
    const refusal = async (input: object) => {
      try {
        await createApi(server.db, input as never);
      } catch (err) {
        if (err instanceof InputError) return { kind: err.constructor.name, field: err.field, message: err.message };
        throw err;
      }
      throw new Error(`accepted ${JSON.stringify(input)}`);
    };
    const before = (await listApis(server.db)).length;
    expect(await refusal({ ...base, identifier: 'https://x.example.cn/api#frag' })).toMatchObject({ field: 'identifier', message: expect.stringContaining('must not have a fragment') });
    expect(await refusal({ ...base, identifier: 'http://x.example.cn/api' })).toMatchObject({ field: 'identifier', message: expect.stringContaining('must use https') });
    expect(await refusal({ ...base, identifier: 'javascript:alert(1)' })).toMatchObject({ field: 'identifier', message: expect.stringContaining('must use https') });
    expect(await refusal({ ...base, identifier: `https://x.example.cn/${'a'.repeat(3000)}` })).toMatchObject({ field: 'identifier', message: 'identifier: must be at most 2000 characters' });
    for (const name of ['__proto__', 'constructor']) expect(await refusal({ ...base, identifier: name })).toMatchObject({ field: 'identifier', message: `identifier: "${name}" is not an absolute URI` });
    expect(await refusal({ ...base, identifier: 'https://x.example.cn/a\u0000b' })).toMatchObject({ field: 'identifier', message: expect.stringContaining('control characters') });
    expect(await refusal({ ...base, identifier: 'https://user:pw@x.example.cn/api' })).toMatchObject({ field: 'identifier', message: expect.stringContaining('user name or password') });
    expect(await refusal({ ...base, identifier: orders.identifier })).toEqual({ kind: 'ConflictError', field: 'identifier', message: `identifier: an API with the identifier ${orders.identifier} exists already` });
    const fresh = 'https://fresh.example.cn/api';
    expect(await refusal({ ...base, identifier: fresh, windowId: 999_999 })).toMatchObject({ kind: 'NotFoundError', field: 'window' });
    for (const scopes of [[], ['openid'], ['offline_access'], ['Orders'], ['a b'], ['x'.repeat(65)], ['__proto__'.toUpperCase()], ['x:1', 'x:1'], Array.from({ length: 51 }, (_, i) => `s${i}`)]) {
      expect(await refusal({ ...base, identifier: fresh, scopes })).toMatchObject({ field: expect.stringMatching(/^scopes/) });
    }
    for (const accessTokenTtlSeconds of [59, 86_401, 1.5, '600']) expect(await refusal({ ...base, identifier: fresh, accessTokenTtlSeconds })).toMatchObject({ field: 'accessTokenTtlSeconds' });
    expect(await refusal({ ...base, identifier: fresh, extra: 1 })).toMatchObject({ field: 'extra', message: 'extra: is not a known field' });
    expect((await listApis(server.db)).length).toBe(before);

    const raced = await Promise.allSettled([0, 1, 2].map(() => createApi(server.db, { ...base, identifier: 'https://raced.example.cn/api' })));
    expect(raced.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
    expect(raced.filter((r) => r.status === 'rejected').map((r) => (r as PromiseRejectedResult).reason)).toEqual([expect.any(ConflictError), expect.any(ConflictError)]);
    // Scopes such as __proto__ are plain names: nothing in the lookups is keyed by them.
    const odd = await createApi(server.db, { ...base, identifier: 'https://odd.example.cn/api', scopes: ['__proto__', 'constructor'] });
    const tokens = await oidc.clientCredentialsGrant(a.config, { scope: '__proto__ constructor', resource: odd.identifier });
    expect((await verify(tokens.access_token, odd.identifier)).payload.scope).toBe('__proto__ constructor');
    await expect(updateApi(server.db, 999_999, { name: 'y' })).rejects.toBeInstanceOf(NotFoundError);
    await expect(deleteApi(server.db, -1)).rejects.toBeInstanceOf(NotFoundError);
  });

  it('an API deleted while its tokens live: new tokens are refused, introspection answers inactive', async () => {
    const temp = await createApi(server.db, { windowId: orders.windowId, identifier: 'https://temp.zz.example/api', name: 'temp', scopes: ['temp:read'] });
    const tokens = await oidc.clientCredentialsGrant(a.config, { scope: 'temp:read', resource: temp.identifier });
    expect((await oidc.tokenIntrospection(a.config, tokens.access_token)).active).toBe(true);
    await deleteApi(server.db, temp.id);
    expect((await oidc.tokenIntrospection(a.config, tokens.access_token)).active).toBe(false);
    expect((await failure(oidc.clientCredentialsGrant(a.config, { scope: 'temp:read', resource: temp.identifier }))).error).toBe('invalid_target');
    expect(server.errors).toEqual([]);
  });
});
