import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as oidc from 'openid-client';
import { createRemoteJWKSet, decodeProtectedHeader, jwtVerify } from 'jose';
import { createAccount } from '../../src/accounts/accounts.ts';
import { PASSWORD_POLICIES } from '../../src/accounts/password-policy.ts';
import { createEnterprise, type Enterprise } from '../../src/enterprises/enterprises.ts';
import { addMember } from '../../src/enterprises/memberships.ts';
import { createApi, deleteApi, updateApi, type Api } from '../../src/windows/apis.ts';
import { listWindows } from '../../src/windows/windows.ts';
import { browser } from '../helpers/browser.ts';
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
