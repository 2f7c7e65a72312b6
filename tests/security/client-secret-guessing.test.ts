import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLIENT_AUTH_ROUTES } from '../../src/oidc/client-auth-limits.ts';
import { flushPendingCounts } from '../../src/audit/pending-counts.ts';
import { purgeExpired } from '../../src/purge.ts';
import { createClient } from '../../src/windows/clients.ts';
import { seedWindowRegistry } from '../../src/windows/seed.ts';
import { listWindows } from '../../src/windows/windows.ts';
import { onPostgres, testDatabase, type TestDatabase } from '../helpers/database.ts';
import { freePort, startNode, type Node } from '../helpers/processes.ts';
import { startTestServer, type TestServer } from '../helpers/server.ts';
import { windowSite, type WindowSite } from '../helpers/window-site.ts';

// Guessing a window's client secret at the endpoints where clients authenticate (token,
// introspection, revocation, pushed authorization requests). The server trusts X-Forwarded-For here (TRUST_PROXY), so the test can speak
// from many addresses, as a guesser with many machines would. Limits are small so the
// test reaches them: 5 failures per address, 12 per client, in 300 s.

const PER_IP = 5;
const PER_CLIENT = 12;
const basic = (id: string, secret: string) => `Basic ${Buffer.from(`${encodeURIComponent(id)}:${encodeURIComponent(secret)}`).toString('base64')}`;

describe('guessing client secrets', () => {
  let server: TestServer;
  let backend: WindowSite;
  let other: WindowSite;
  let windowId: number;

  beforeAll(async () => {
    server = await startTestServer({ TRUST_PROXY: 'true', CLIENT_AUTH_FAILURES_PER_IP: `${PER_IP}/300`, CLIENT_AUTH_FAILURES_PER_CLIENT: `${PER_CLIENT}/300` });
    windowId = (await listWindows(server.db))[3]!.id;
    const service = { grantTypes: ['client_credentials' as const], redirectUris: [], postLogoutRedirectUris: [] };
    backend = await windowSite(server, { windowId, name: 'guessed-backend', ...service });
    other = await windowSite(server, { windowId, name: 'other-backend', ...service });
  });
  afterAll(() => server?.close());

  async function post(path: string, from: string, clientId: string, secret: string, body: Record<string, string>) {
    const res = await fetch(`${server.url}${path}`, {
      method: 'POST',
      headers: { authorization: basic(clientId, secret), 'content-type': 'application/x-www-form-urlencoded', 'x-forwarded-for': from },
      body: new URLSearchParams(body),
    });
    return { status: res.status, retryAfter: res.headers.get('retry-after'), body: (await res.json()) as { error?: string; error_description?: string; access_token?: string } };
  }
  const token = (from: string, site: WindowSite, secret: string) => post('/token', from, site.clientId, secret, { grant_type: 'client_credentials' });

  it('never counts successes: a window server may authenticate as often as it likes', async () => {
    for (let i = 0; i < 3 * PER_CLIENT; i++) expect((await token('198.51.100.1', backend, backend.clientSecret!)).status).toBe(200);
    expect(await server.db('rate_limits').where('key', 'like', 'client-auth%').pluck('key')).toEqual([]);
  });

  it(`answers invalid_client ${PER_IP} times to one address, then 429 with Retry-After to everything it sends, the right secret included, at all three endpoints`, async () => {
    const guesser = '203.0.113.7';
    for (let i = 0; i < PER_IP; i++) {
      const wrong = await token(guesser, backend, `guess-${i}`);
      expect(wrong.status).toBe(401);
      expect(wrong.body.error).toBe('invalid_client');
    }
    const limited = await token(guesser, backend, 'guess-next');
    expect(limited.status).toBe(429);
    expect(Number(limited.retryAfter)).toBeGreaterThanOrEqual(1);
    expect(Number(limited.retryAfter)).toBeLessThanOrEqual(300);
    expect(limited.body).toEqual({ error: 'invalid_client', error_description: expect.stringMatching(/too many failed client authentications from this address; try again in \d+ s/) });

    const issued = await token('198.51.100.1', backend, backend.clientSecret!);
    expect(issued.status).toBe(200);
    const right = [
      await token(guesser, backend, backend.clientSecret!),
      await post('/token/introspection', guesser, backend.clientId, backend.clientSecret!, { token: issued.body.access_token! }),
      await post('/token/revocation', guesser, backend.clientId, backend.clientSecret!, { token: issued.body.access_token! }),
      await token(guesser, other, other.clientSecret!),
    ];
    expect(right.map((r) => r.status)).toEqual([429, 429, 429, 429]);
    expect(right.every((r) => Number(r.retryAfter) >= 1)).toBe(true);
    // The token is still valid: the refused revocation did nothing.
    const still = await post('/token/introspection', '198.51.100.1', backend.clientId, backend.clientSecret!, { token: issued.body.access_token! });
    expect(still.body).toMatchObject({ active: true });
    expect(server.errors).toEqual([]);
  });

  it(`refuses a client whose secret is guessed from many addresses once ${PER_CLIENT} have failed, whatever the address and endpoint, and leaves other clients alone`, async () => {
    // The first address here already failed above: new addresses, one failure each.
    const failedBefore = Number((await server.db('rate_limits').where({ key: `client-auth-client:${backend.clientId}` }).first('hits'))?.hits ?? 0);
    for (let i = failedBefore; i < PER_CLIENT; i++) expect((await token(`192.0.2.${i + 1}`, backend, `spread-guess-${i}`)).status).toBe(401);
    const limited = await token('192.0.2.200', backend, 'spread-guess-next');
    expect(limited.status).toBe(429);
    expect(limited.body.error_description).toMatch(/from this client/);
    expect((await token('192.0.2.201', backend, backend.clientSecret!)).status).toBe(429);
    const pushed = await post('/request', '192.0.2.202', backend.clientId, backend.clientSecret!, { client_id: backend.clientId, response_type: 'code', scope: 'openid' });
    expect(pushed.status).toBe(429);
    expect(Number(pushed.retryAfter)).toBeGreaterThanOrEqual(1);
    expect(pushed.body.error_description).toMatch(/from this client/);
    expect((await token('192.0.2.201', other, other.clientSecret!)).status).toBe(200);
  });

  it('puts every failure and refusal on the audit trail, per client, address and minute, and reaching a limit at once', async () => {
    const limits = await server.db('audit_events').where({ event: 'client_auth.limited' }).orderBy('id').select('actor_id', 'actor_ip', 'target', 'reason', 'window_id');
    expect(limits).toEqual([
      { actor_id: backend.clientId, actor_ip: '203.0.113.7', target: `client:${backend.clientId}`, reason: 'per address', window_id: windowId },
      { actor_id: backend.clientId, actor_ip: `192.0.2.${PER_CLIENT}`, target: `client:${backend.clientId}`, reason: 'per client', window_id: windowId },
    ]);

    await flushPendingCounts(server.db);
    const pending = await server.db('audit_client_auth_counts').orderBy(['ip', 'client_id', 'reason']).select('client_id', 'ip', 'reason', 'count');
    const total = (reason: string) => pending.filter((r) => r.reason === reason).reduce((n, r) => n + Number(r.count), 0);
    // Wrong secrets: as many as the client's limit (the guessing address's included);
    // refusals: 1 + 4 from the guessing address, 3 for the guessed client.
    expect(total('invalid_client')).toBe(PER_CLIENT);
    expect(total('limited')).toBe(1 + 4 + 3);
    expect(pending.find((r) => r.ip === '203.0.113.7' && r.reason === 'invalid_client')).toMatchObject({ client_id: backend.clientId, count: PER_IP });

    // The current minute is not rolled up: move the counts into the past, then purge.
    await server.db('audit_client_auth_counts').update({ minute: server.db.raw("minute - interval '2 minutes'") });
    const from = Number((await server.db('audit_events').max('id as id').first())?.id ?? 0);
    await purgeExpired(server.db);
    const rolled = await server.db('audit_events').where('id', '>', from).where({ event: 'client_auth' }).select('actor_type', 'actor_id', 'actor_ip', 'target', 'outcome', 'reason', 'after');
    expect(rolled).toHaveLength(pending.length);
    expect(rolled.every((r) => r.outcome === 'failure')).toBe(true);
    expect(rolled.filter((r) => r.reason === 'invalid_client').reduce((n, r) => n + r.after.count, 0)).toBe(PER_CLIENT);
    expect(rolled.filter((r) => r.reason === 'limited').reduce((n, r) => n + r.after.count, 0)).toBe(1 + 4 + 3);
    // Refused before the client was known: on record as someone unknown, from that address.
    expect(rolled).toContainEqual(expect.objectContaining({ actor_type: 'system', actor_id: 'anonymous', actor_ip: '203.0.113.7', target: null, reason: 'limited' }));
    expect(await server.db('audit_client_auth_counts').pluck('client_id')).toEqual([]);
    expect(server.errors).toEqual([]);
  });
});

// Every endpoint at which the server authenticates clients, as its discovery document
// announces them: failures at any of them count against the address, and a limited
// address is refused at all of them, however it spells the path (the provider's routes
// match whatever the case, with or without a trailing slash).
describe('guessing client secrets at every endpoint that authenticates clients', () => {
  let server: TestServer;
  let site: WindowSite;
  let endpoints: { name: string; path: string }[];
  let accessToken: string;

  beforeAll(async () => {
    server = await startTestServer({ TRUST_PROXY: 'true', CLIENT_AUTH_FAILURES_PER_IP: `${PER_IP}/300`, CLIENT_AUTH_FAILURES_PER_CLIENT: '1000/300' });
    const windowId = (await listWindows(server.db))[2]!.id;
    site = await windowSite(server, { windowId, name: 'every-endpoint', grantTypes: ['authorization_code', 'client_credentials'] });
    const discovery = (await (await fetch(`${server.url}/.well-known/openid-configuration`)).json()) as Record<string, unknown>;
    endpoints = Object.keys(CLIENT_AUTH_ROUTES).filter((name) => typeof discovery[`${name}_endpoint`] === 'string').map((name) => ({ name, path: new URL(discovery[`${name}_endpoint`] as string).pathname }));
    accessToken = ((await send('/token', '198.51.100.2', site.clientSecret!, { grant_type: 'client_credentials' })).body as { access_token: string }).access_token;
  });
  afterAll(async () => {
    await site?.close();
    await server?.close();
  });

  async function send(path: string, from: string, secret: string, body: Record<string, string>) {
    const res = await fetch(`${server.url}${path}`, {
      method: 'POST',
      headers: { authorization: basic(site.clientId, secret), 'content-type': 'application/x-www-form-urlencoded', 'x-forwarded-for': from },
      body: new URLSearchParams(body),
    });
    // The revocation endpoint answers a revocation with no body.
    const text = await res.text();
    return { status: res.status, retryAfter: res.headers.get('retry-after'), body: (text ? JSON.parse(text) : {}) as Record<string, unknown> };
  }
  // A request each endpoint grants with the right secret.
  const requestAt = (name: string): Record<string, string> => {
    const requests: Record<string, Record<string, string>> = {
      token: { grant_type: 'client_credentials' },
      introspection: { token: accessToken },
      revocation: { token: 'not-a-token-of-this-server' },
      pushed_authorization_request: { client_id: site.clientId, response_type: 'code', scope: 'openid', redirect_uri: site.redirectUri, code_challenge: 'E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM', code_challenge_method: 'S256' },
    };
    const request = requests[name];
    if (!request) throw new Error(`no request for the ${name} endpoint: add one`);
    return request;
  };
  const spellings = (path: string) => [path, path.toUpperCase(), `${path}/`];

  it('authenticates clients at the token, introspection, revocation and pushed authorization request endpoints', () => {
    expect(endpoints.map((e) => e.name)).toEqual(['token', 'introspection', 'revocation', 'pushed_authorization_request']);
  });

  it('counts failed client authentications at each of those endpoints against the address', async () => {
    for (const [i, { name, path }] of endpoints.entries()) {
      const guesser = `203.0.113.${60 + i}`;
      for (let n = 0; n < PER_IP; n++) expect({ name, status: (await send(path, guesser, `guess-${n}`, requestAt(name))).status }).toEqual({ name, status: 401 });
      expect({ name, status: (await send('/token', guesser, site.clientSecret!, requestAt('token'))).status }).toEqual({ name, status: 429 });
    }
  });

  it('refuses a limited address at each of those endpoints, however the path is spelled, the right secret included, and answers the same requests from elsewhere', async () => {
    const guesser = '203.0.113.90';
    for (let n = 0; n < PER_IP; n++) expect((await send('/token', guesser, `guess-${n}`, requestAt('token'))).status).toBe(401);
    for (const { name, path } of endpoints) {
      for (const spelled of spellings(path)) {
        const elsewhere = await send(spelled, '198.51.100.3', site.clientSecret!, requestAt(name));
        expect({ spelled, status: elsewhere.status, problem: elsewhere.body.error_description }).toEqual({ spelled, problem: undefined, status: name === 'pushed_authorization_request' ? 201 : 200 });
        const refused = await send(spelled, guesser, site.clientSecret!, requestAt(name));
        expect({ spelled, status: refused.status, error: refused.body.error }).toEqual({ spelled, status: 429, error: 'invalid_client' });
        expect(Number(refused.retryAfter)).toBeGreaterThanOrEqual(1);
      }
    }
    expect(server.errors).toEqual([]);
  });
});

// Two server processes on one PostgreSQL database: the failures add up across them.
describe.skipIf(!onPostgres())('guessing client secrets on two nodes', () => {
  let database: TestDatabase;
  let dataDir: string;
  let ports: number[] = [];
  let nodes: Node[] = [];
  let client: { clientId: string; clientSecret: string | undefined };

  beforeAll(async () => {
    database = await testDatabase();
    dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'sme-passport-client-auth-'));
    await seedWindowRegistry(database.db);
    const [first] = await listWindows(database.db);
    client = await createClient(database.db, { windowId: first!.id, name: 'two-node-backend', grantTypes: ['client_credentials'], redirectUris: [], postLogoutRedirectUris: [] });
    ports = [await freePort(), await freePort()];
    const env = { DATABASE_URL: database.url!, ISSUER: `http://localhost:${ports[0]}`, MASTER_KEY: crypto.randomBytes(32).toString('base64'), DATA_DIR: dataDir, CLIENT_AUTH_FAILURES_PER_IP: `${PER_IP}/300` };
    nodes = await Promise.all(ports.map((port) => startNode({ ...env, PORT: String(port) })));
  });

  afterAll(async () => {
    await Promise.all(nodes.map((n) => n.stop()));
    await database?.close();
    if (dataDir) fs.rmSync(dataDir, { recursive: true, force: true });
  });

  const tokenAt = async (i: number, secret: string) => {
    const res = await fetch(`http://127.0.0.1:${ports[i % 2]}/token`, {
      method: 'POST',
      headers: { authorization: basic(client.clientId, secret), 'content-type': 'application/x-www-form-urlencoded' },
      body: 'grant_type=client_credentials',
    });
    await res.body?.cancel();
    return res.status;
  };

  it(`refuses an address on both nodes once its ${PER_IP} failures, spread over them, are used up`, async () => {
    const wrong = [];
    for (let i = 0; i < PER_IP; i++) wrong.push(await tokenAt(i, `guess-${i}`));
    expect(wrong).toEqual(Array(PER_IP).fill(401));
    expect([await tokenAt(0, 'guess-next'), await tokenAt(1, 'guess-next')]).toEqual([429, 429]);
    expect([await tokenAt(0, client.clientSecret!), await tokenAt(1, client.clientSecret!)]).toEqual([429, 429]);
  });
});
