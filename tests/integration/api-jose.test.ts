import net from 'node:net';
import * as jose from 'jose';
import * as oidc from 'openid-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApi, type Api } from '../../src/windows/apis.ts';
import { listWindows } from '../../src/windows/windows.ts';
import { browser } from '../helpers/browser.ts';
import { exampleApi, person, setUpPerson, startApiExample, typePassword, type ExampleProcess } from '../helpers/examples.ts';
import { freePort } from '../helpers/processes.ts';
import { startTestServer, type TestServer } from '../helpers/server.ts';
import { eventually } from '../helpers/wait.ts';
import { windowSite, type WindowSite } from '../helpers/window-site.ts';

// docs/examples/api-jose/server.js, the guide's window API that verifies the provider's
// JWT access tokens with jose alone, as a process of its own against the real server.

let server: TestServer;
let api: ExampleProcess | undefined;
let later: ExampleProcess | undefined;
let orders: Api;
let theirs: Api;
let site: WindowSite;
let otherWindowSite: WindowSite;
let enterpriseId: string;
let laterUrl: string;

const grantTypes: Array<'authorization_code' | 'refresh_token' | 'client_credentials'> = ['authorization_code', 'refresh_token', 'client_credentials'];

beforeAll(async () => {
  server = await startTestServer();
  const { windowId, enterprise } = await setUpPerson(server);
  enterpriseId = enterprise.id;
  ({ api: orders, process: api } = await exampleApi(server, windowId, { accessTokenTtlSeconds: 60 }));
  const otherWindow = (await listWindows(server.db)).find((w) => w.region === '410300')!.id;
  theirs = await createApi(server.db, { windowId: otherWindow, identifier: 'https://api.ly.example.cn/orders', name: '洛阳订单', scopes: ['orders:read'] });
  site = await windowSite(server, { windowId, name: 'api-site', grantTypes });
  otherWindowSite = await windowSite(server, { windowId: otherWindow, name: 'ly-site', grantTypes });
  // The same API with its clock a token's lifetime and a second ahead.
  const laterPort = await freePort();
  laterUrl = `http://127.0.0.1:${laterPort}`;
  later = await startApiExample(server.url, orders.identifier, laterPort, { clockAheadSeconds: orders.accessTokenTtlSeconds + 1 });
});

afterAll(async () => {
  await api?.stop();
  await later?.stop();
  await site?.close();
  await otherWindowSite?.close();
  await server?.close();
});

type Answer = { status: number; challenge: string | null; body: string };

async function call(token: string | undefined, at = orders.identifier): Promise<Answer> {
  const res = await fetch(`${at}/orders`, token === undefined ? {} : { headers: { authorization: `Bearer ${token}` } });
  return { status: res.status, challenge: res.headers.get('www-authenticate'), body: await res.text() };
}

const invalidToken = (description: string) => ({ status: 401, challenge: `Bearer realm="${orders.identifier}", error="invalid_token", error_description="${description}"`, body: '' });
const NOT_VALID = 'the access token is not valid for this API';

// A sign-in at the window's site asking for a token for the API (resource= at the
// authorization and the token endpoint, as openid-client sends it).
async function codeFlowTokens(scope: string) {
  const you = browser();
  const { visit, checks } = await site.authorize(you, { scope, resource: orders.identifier });
  const back = await typePassword(you, visit, site.redirectUri);
  if (back.kind !== 'redirect') throw new Error(`expected a redirect back, got a page (${back.status})`);
  return oidc.authorizationCodeGrant(site.config, back.to, checks, { resource: orders.identifier });
}

// An HTTP request written byte for byte, so that the header can hold what fetch refuses
// to send (control characters, bytes beyond ASCII).
function rawCall(authorization: Buffer): Promise<number> {
  const { hostname, port } = new URL(orders.identifier);
  return new Promise((resolve, reject) => {
    const socket = net.connect(Number(port), hostname);
    let answer = '';
    socket.on('data', (d) => (answer += d.toString('latin1')));
    socket.on('error', reject);
    socket.on('close', () => resolve(Number(/^HTTP\/1\.1 (\d{3})/.exec(answer)?.[1] ?? 0)));
    socket.end(Buffer.concat([Buffer.from(`GET /orders HTTP/1.1\r\nHost: ${hostname}\r\nConnection: close\r\nAuthorization: `), authorization, Buffer.from('\r\n\r\n')]));
  });
}

describe('the API example (jose)', () => {
  it('answers the claims of a JWT from a person’s sign-in (code flow with resource=), with whom they act for', async () => {
    const tokens = await codeFlowTokens('openid profile enterprise orders:read');
    const answer = await call(tokens.access_token);
    expect(answer.status, api!.output()).toBe(200);
    expect(JSON.parse(answer.body)).toEqual({ caller: { sub: tokens.claims()!.sub, client_id: site.clientId, scope: 'orders:read', enterprise_id: enterpriseId }, orders: [] });
    // A refreshed token is for the API again (the resource granted at sign-in).
    const refreshed = await oidc.refreshTokenGrant(site.config, tokens.refresh_token!);
    expect((await call(refreshed.access_token)).status).toBe(200);
  });

  it('answers the claims of a JWT from client_credentials with resource=', async () => {
    const tokens = await oidc.clientCredentialsGrant(site.config, { scope: 'orders:read', resource: orders.identifier });
    const answer = await call(tokens.access_token);
    expect(JSON.parse(answer.body)).toEqual({ caller: { sub: site.clientId, client_id: site.clientId, scope: 'orders:read', enterprise_id: null }, orders: [] });
  });

  it('refuses a request without a token, without an error code (RFC 6750)', async () => {
    expect(await call(undefined)).toEqual({ status: 401, challenge: `Bearer realm="${orders.identifier}"`, body: '' });
  });

  it('lets no page of an origin it does not list read its answers (CORS)', async () => {
    const good = (await oidc.clientCredentialsGrant(site.config, { scope: 'orders:read', resource: orders.identifier })).access_token;
    const res = await fetch(`${orders.identifier}/orders`, { headers: { authorization: `Bearer ${good}`, origin: 'https://evil.example' } });
    expect([res.status, res.headers.get('access-control-allow-origin'), res.headers.get('vary')]).toEqual([200, null, 'origin']);
    const preflight = await fetch(`${orders.identifier}/orders`, { method: 'OPTIONS', headers: { origin: 'https://evil.example', 'access-control-request-method': 'GET' } });
    expect([preflight.status, preflight.headers.get('access-control-allow-origin')]).toEqual([404, null]);
  });

  it('refuses a token for another window’s API (401 invalid_token)', async () => {
    const tokens = await oidc.clientCredentialsGrant(otherWindowSite.config, { scope: 'orders:read', resource: theirs.identifier });
    expect(await call(tokens.access_token)).toEqual(invalidToken(NOT_VALID));
  });

  it('refuses an expired token (401 invalid_token), judged by the API’s own clock', async () => {
    const tokens = await oidc.clientCredentialsGrant(site.config, { scope: 'orders:read', resource: orders.identifier });
    expect(tokens.expires_in).toBe(orders.accessTokenTtlSeconds);
    expect((await call(tokens.access_token)).status).toBe(200);
    // The API whose clock is the token's lifetime and a second ahead sees it expired.
    await eventually(async () => (await call(tokens.access_token, laterUrl)).status === 401);
    const answer = await call(tokens.access_token, laterUrl);
    expect(answer.challenge).toBe(invalidToken('the access token expired').challenge);
  });

  it('refuses a token without the route’s scope (403 insufficient_scope)', async () => {
    const machine = await oidc.clientCredentialsGrant(site.config, { scope: 'orders:write', resource: orders.identifier });
    const personal = await codeFlowTokens('openid orders:write');
    for (const token of [machine.access_token, personal.access_token]) {
      expect(await call(token)).toEqual({ status: 403, challenge: `Bearer realm="${orders.identifier}", error="insufficient_scope", error_description="this needs the scope orders:read"`, body: '' });
    }
  });

  it('refuses the window’s plain (opaque) access token and its ID token', async () => {
    const { tokens } = await site.signIn(browser(), { identifier: person.username, password: person.password });
    expect(tokens.access_token.split('.')).toHaveLength(1);
    expect(await call(tokens.access_token)).toEqual(invalidToken(NOT_VALID));
    // Signed by the provider, but an ID token (typ is not at+jwt, aud is the client).
    expect(await call(tokens.id_token)).toEqual(invalidToken(NOT_VALID));
  });

  it('refuses forged tokens with the right claims: unsigned, signed with another key under the provider’s kid, changed after signing', async () => {
    const good = (await oidc.clientCredentialsGrant(site.config, { scope: 'orders:read', resource: orders.identifier })).access_token;
    const header = jose.decodeProtectedHeader(good);
    const claims = jose.decodeJwt(good);
    const key = (await jose.generateKeyPair('RS256')).privateKey;
    const resigned = await new jose.SignJWT({ ...claims, scope: 'orders:read orders:write' }).setProtectedHeader({ alg: 'RS256', typ: 'at+jwt', kid: header.kid! }).sign(key);
    const unsigned = `${jose.base64url.encode(JSON.stringify({ alg: 'none', typ: 'at+jwt' }))}.${good.split('.')[1]}.`;
    const [h, , s] = good.split('.');
    const changed = `${h}.${jose.base64url.encode(JSON.stringify({ ...claims, sub: 'someone-else' }))}.${s}`;
    const hs256 = await new jose.SignJWT(claims).setProtectedHeader({ alg: 'HS256', typ: 'at+jwt', kid: header.kid! }).sign(new TextEncoder().encode('a shared secret of at least 32 bytes!!'));
    for (const token of [resigned, unsigned, changed, hs256]) expect(await call(token)).toEqual(invalidToken(NOT_VALID));
    expect((await call(good)).status).toBe(200);
  });

  it('answers the worst strings in the Authorization header with 401, never 500, and keeps serving', async () => {
    const good = (await oidc.clientCredentialsGrant(site.config, { scope: 'orders:read', resource: orders.identifier })).access_token;
    const fakeKid = (kid: string) => `${jose.base64url.encode(JSON.stringify({ alg: 'RS256', typ: 'at+jwt', kid }))}.${good.split('.')[1]}.${good.split('.')[2]}`;
    const values = [
      '',
      'Bearer',
      'Bearer ',
      'Bearer  x',
      'Basic dXNlcjpwYXNzd29yZA==',
      `Basic ${good}`,
      `Bearer ${good} extra`,
      `Bearer ${good}, Bearer ${good}`,
      'Bearer ====',
      'Bearer constructor',
      'Bearer __proto__',
      'Bearer toString',
      'Bearer a.b.c',
      'Bearer ...',
      `Bearer ${fakeKid('__proto__')}`,
      `Bearer ${fakeKid('constructor')}`,
      `Bearer ${'eyJ'.repeat(3000)}.${'a'.repeat(3000)}.${'b'.repeat(3000)}`,
      `Bearer ${"' OR '1'='1"}`,
      'Bearer <script>alert(1)</script>',
    ];
    for (const value of values) expect([value.slice(0, 40), await rawCall(Buffer.from(value))]).toEqual([value.slice(0, 40), 401]);
    // Bytes beyond ASCII reach the API (as latin1) and are refused by it; control
    // characters are refused by Node's HTTP parser before the API sees them (400).
    for (const bytes of [Buffer.from('Bearer 郑州'), Buffer.from([0x42, 0x65, 0x61, 0x72, 0x65, 0x72, 0x20, 0xff, 0xfe])]) expect(await rawCall(bytes)).toBe(401);
    for (const value of ['Bearer a\u0000b', 'Bearer a\u0001b', `Bearer ${good}\u007f`]) expect(await rawCall(Buffer.from(value))).toBe(400);
    expect((await call(good)).status).toBe(200);
    expect(api!.output()).not.toContain('Error');
    expect(server.errors).toEqual([]);
  });
});
