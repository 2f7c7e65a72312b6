import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as oidc from 'openid-client';
import { decodeProtectedHeader } from 'jose';
import { createAccount } from '../../src/accounts/accounts.ts';
import { PASSWORD_POLICIES } from '../../src/accounts/password-policy.ts';
import { createClient } from '../../src/windows/clients.ts';
import { seedWindowRegistry } from '../../src/windows/seed.ts';
import { listWindows } from '../../src/windows/windows.ts';
import { migrate } from '../../src/db/migrate.ts';
import { browser } from '../helpers/browser.ts';
import { onPostgres, testDatabase, type TestDatabase } from '../helpers/database.ts';
import { freePort, runCli, startNode, type Node } from '../helpers/processes.ts';
import { eventually } from '../helpers/wait.ts';
import { adminToken, api, makeAdmin } from '../helpers/admin.ts';

// Two server processes on one PostgreSQL database, behind one issuer: whatever one
// node knows, the other must too. (An embedded database belongs to one process.)
describe.skipIf(!onPostgres())('two nodes on one database', () => {
  const person = { username: 'li.na', displayName: '李娜', password: 'Yellow-River-Bridge-7' };
  const redirectUri = 'http://127.0.0.1:9/two-nodes/callback';
  let database: TestDatabase;
  let dataDir: string;
  let ports: number[] = [];
  let nodes: Node[] = [];
  let client: { clientId: string; clientSecret: string | undefined };
  let env: Record<string, string>;

  beforeAll(async () => {
    database = await testDatabase();
    dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'sme-passport-nodes-'));
    await migrate(database);
    await seedWindowRegistry(database.db);
    const [first] = await listWindows(database.db);
    client = await createClient(database.db, { windowId: first!.id, name: 'two-nodes', redirectUris: [redirectUri] });
    await createAccount(database.db, person, PASSWORD_POLICIES.mlps);
    ports = [await freePort(), await freePort()];
    env = { DATABASE_URL: database.url!, ISSUER: `http://localhost:${ports[0]}`, MASTER_KEY: crypto.randomBytes(32).toString('base64'), DATA_DIR: dataDir, KEYS_REFRESH_SECONDS: '1', SIGN_IN_RATE_LIMIT: '10000/60' };
    nodes = await Promise.all(ports.map((port) => startNode({ ...env, PORT: String(port) })));
  });

  afterAll(async () => {
    await Promise.all(nodes.map((n) => n.stop()));
    await database?.close();
    fs.rmSync(dataDir, { recursive: true, force: true });
  });

  const onNode = (url: URL | string, i: number) => Object.assign(new URL(url), { port: String(ports[i]) });

  // An openid-client configuration whose requests go to node i; the issuer is the same.
  async function viaNode(i: number) {
    const config = await oidc.discovery(new URL(nodes[0]!.url), client.clientId, client.clientSecret, undefined, { execute: [oidc.allowInsecureRequests] });
    config[oidc.customFetch] = (url, options) => fetch(onNode(url, i), options as RequestInit);
    return config;
  }

  it('keeps a sign-in made on node 1 valid on node 2, and lets one code be redeemed once across both', async () => {
    expect(nodes.map((n) => n.url)).toEqual([`http://localhost:${ports[0]}`, `http://localhost:${ports[0]}`]);
    const you = browser();
    const config = await viaNode(0);
    const authorize = async (i: number) => {
      const verifier = oidc.randomPKCECodeVerifier();
      const state = oidc.randomState();
      const url = oidc.buildAuthorizationUrl(config, {
        redirect_uri: redirectUri,
        scope: 'openid profile',
        code_challenge: await oidc.calculatePKCECodeChallenge(verifier),
        code_challenge_method: 'S256',
        state,
      });
      return { visit: await you.visit(onNode(url, i), redirectUri), checks: { pkceCodeVerifier: verifier, expectedState: state } };
    };

    const first = await authorize(0);
    expect(first.visit.kind === 'page' && first.visit.url.port).toBe(String(ports[0]));
    const back = await you.submit(first.visit, '/login', { identifier: person.username, password: person.password }, redirectUri);
    expect(back.kind).toBe('redirect');

    // Node 2 knows the session: no password asked.
    const second = await authorize(1);
    expect(second.visit.kind).toBe('redirect');
    if (second.visit.kind !== 'redirect') return;

    // The same code at both nodes at once: exactly one wins.
    const results = await Promise.allSettled([
      oidc.authorizationCodeGrant(await viaNode(0), second.visit.to, second.checks),
      oidc.authorizationCodeGrant(await viaNode(1), second.visit.to, second.checks),
    ]);
    const won = results.filter((r) => r.status === 'fulfilled');
    expect(won).toHaveLength(1);
    expect(won[0]!.value.claims()!.preferred_username).toBe('li.na');
    const lost = results.find((r) => r.status === 'rejected');
    expect(lost?.reason).toMatchObject({ error: 'invalid_grant' });
  });

  it('serves a rotated key set from both nodes without a restart', async () => {
    const jwks = async (i: number) => ((await (await fetch(`http://127.0.0.1:${ports[i]}/jwks`)).json()) as { keys: Array<{ kid: string }> }).keys.map((k) => k.kid);
    const signInKid = async (i: number) => {
      const you = browser();
      const config = await viaNode(i);
      const verifier = oidc.randomPKCECodeVerifier();
      const url = oidc.buildAuthorizationUrl(config, { redirect_uri: redirectUri, scope: 'openid', code_challenge: await oidc.calculatePKCECodeChallenge(verifier), code_challenge_method: 'S256', state: 's' });
      const page = await you.visit(onNode(url, i), redirectUri);
      const back = await you.submit(page, '/login', { identifier: person.username, password: person.password }, redirectUri);
      if (back.kind !== 'redirect') throw new Error('sign-in failed');
      const tokens = await oidc.authorizationCodeGrant(config, back.to, { pkceCodeVerifier: verifier, expectedState: 's' });
      return decodeProtectedHeader(tokens.id_token!).kid;
    };
    const oldKid = await signInKid(0);
    const rotated = await runCli(['keys', 'rotate', '--delay', '5', '--json'], env);
    expect(rotated.stderr).toBe('');
    const made: Array<{ kid: string; alg: string }> = JSON.parse(rotated.stdout).keys;
    const newRs = made.find((k) => k.alg === 'RS256')!.kid;
    await eventually(async () => (await jwks(0)).includes(newRs) && (await jwks(1)).includes(newRs), { every: 100 });
    expect((await jwks(0)).sort()).toEqual((await jwks(1)).sort());
    expect(await signInKid(1)).toBe(oldKid);
    // Each node notices the activation at its own next look (KEYS_REFRESH_SECONDS=1).
    for (const i of [0, 1]) await eventually(async () => (await signInKid(i)) === newRs, { every: 200 });
  });

  it('locks an account after 5 failures spread over both nodes', async () => {
    await createAccount(database.db, { username: 'spread.out', displayName: '分散', password: person.password }, PASSWORD_POLICIES.mlps);
    const config = await viaNode(0);
    const attempt = async (i: number, pw: string) => {
      const you = browser();
      const url = oidc.buildAuthorizationUrl(config, { redirect_uri: redirectUri, scope: 'openid', code_challenge: await oidc.calculatePKCECodeChallenge(oidc.randomPKCECodeVerifier()), code_challenge_method: 'S256', state: 's' });
      const page = await you.visit(onNode(url, i), redirectUri);
      return you.submit(page, '/login', { identifier: 'spread.out', password: pw }, redirectUri);
    };
    const alert = (v: Awaited<ReturnType<typeof attempt>>) => (v.kind === 'page' ? /role="alert">([^<]*)</.exec(v.html)?.[1] : 'signed in');
    for (const i of [0, 1, 0, 1]) expect(alert(await attempt(i, 'Wrong-password-9'))).toBe('账号或密码不正确。');
    expect(alert(await attempt(0, 'Wrong-password-9'))).toMatch(/锁定/);
    expect(alert(await attempt(1, person.password))).toMatch(/锁定/);
  });

  it('stops a disabled window’s clients at once on both nodes, and takes a rotated secret on both', async () => {
    const target = { url: nodes[0]!.url, db: database.db, masterKey: env.MASTER_KEY! };
    const token = await adminToken(target, await makeAdmin(target, 'nodes.admin', [{ role: 'system_admin' }]));
    const window = (await api(target, token, 'POST', '/windows', { kind: 'service', name: '两节点服务机构' })).body as { id: number };
    const made = await api(target, token, 'POST', `/windows/${window.id}/clients`, { name: 'service back end', grantTypes: ['client_credentials'] });
    expect(made.status).toBe(201);
    const tokenAt = async (i: number, secret: string) => {
      const config = await oidc.discovery(new URL(nodes[0]!.url), made.body.clientId, secret, undefined, { execute: [oidc.allowInsecureRequests] });
      config[oidc.customFetch] = (url, options) => fetch(onNode(url, i), options as RequestInit);
      return oidc.clientCredentialsGrant(config, { scope: 'openid' }).then(
        () => 'issued',
        (err: { error?: string }) => err.error,
      );
    };
    expect([await tokenAt(0, made.body.clientSecret), await tokenAt(1, made.body.clientSecret)]).toEqual(['issued', 'issued']);

    // Rotated through node 2: the new secret works on node 1 at once, the old one still does.
    const viaNode2 = { url: `http://127.0.0.1:${ports[1]}` };
    const rotated = await api(viaNode2, token, 'POST', `/clients/${made.body.clientId}/secret`, { graceSeconds: 3600 });
    expect(rotated.status).toBe(200);
    expect([await tokenAt(0, rotated.body.clientSecret), await tokenAt(0, made.body.clientSecret)]).toEqual(['issued', 'issued']);

    expect((await api(target, token, 'POST', `/windows/${window.id}/disable`)).status).toBe(200);
    expect([await tokenAt(0, rotated.body.clientSecret), await tokenAt(1, rotated.body.clientSecret)]).toEqual(['invalid_client', 'invalid_client']);
    expect((await api(viaNode2, token, 'POST', `/windows/${window.id}/enable`)).status).toBe(200);
    expect([await tokenAt(0, rotated.body.clientSecret), await tokenAt(1, rotated.body.clientSecret)]).toEqual(['issued', 'issued']);
  });
});
