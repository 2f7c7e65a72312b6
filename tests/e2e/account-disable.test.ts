import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as oidc from 'openid-client';
import { createRemoteJWKSet, jwtVerify } from 'jose';
import { createAccount, setAccountStatus } from '../../src/accounts/accounts.ts';
import { PASSWORD_POLICIES } from '../../src/accounts/password-policy.ts';
import { loadConfig } from '../../src/config.ts';
import { endSessionsOf } from '../../src/oidc/sessions.ts';
import { standaloneProvider } from '../../src/oidc/standalone.ts';
import { listWindows } from '../../src/windows/windows.ts';
import { browser } from '../helpers/browser.ts';
import { onPostgres } from '../helpers/database.ts';
import { runCli } from '../helpers/processes.ts';
import { startTestServer, type TestServer } from '../helpers/server.ts';
import { windowSite, type WindowSite } from '../helpers/window-site.ts';
import { eventually } from '../helpers/wait.ts';

// Disabling an account ends its sessions, revokes its tokens (offline ones too) and
// tells every window it used, by back-channel logout.

let server: TestServer;
let a: WindowSite;
let b: WindowSite;
const password = 'Kaifeng-Iron-Pagoda-1049';

beforeAll(async () => {
  server = await startTestServer();
  const windows = await listWindows(server.db);
  a = await windowSite(server, { windowId: windows[3]!.id, name: 'a', backchannel: true });
  b = await windowSite(server, { windowId: windows[4]!.id, name: 'b', backchannel: true });
});

afterAll(async () => {
  await a?.close();
  await b?.close();
  await server?.close();
});

async function signedInEverywhere(username: string) {
  await createAccount(server.db, { username, displayName: username, password }, PASSWORD_POLICIES.mlps);
  const you = browser();
  const atA = await a.signIn(you, { identifier: username, password }, { scope: 'openid offline_access', prompt: 'consent' });
  const atB = await b.signIn(you, undefined);
  return { you, atA, atB };
}

async function expectShutOut(username: string, s: Awaited<ReturnType<typeof signedInEverywhere>>, before: { a: number; b: number }) {
  const jwks = createRemoteJWKSet(new URL(`${server.url}/jwks`));
  const tokenA = await eventually(() => a.logoutTokens[before.a]);
  const tokenB = await eventually(() => b.logoutTokens[before.b]);
  expect((await jwtVerify(tokenA, jwks, { issuer: server.url, audience: a.clientId })).payload.sid).toBe(s.atA.claims.sid);
  expect((await jwtVerify(tokenB, jwks, { issuer: server.url, audience: b.clientId })).payload.sid).toBe(s.atB.claims.sid);
  await expect(oidc.refreshTokenGrant(a.config, s.atA.tokens.refresh_token!)).rejects.toMatchObject({ error: 'invalid_grant' });
  expect((await oidc.tokenIntrospection(b.config, s.atB.tokens.access_token)).active).toBe(false);
  const again = await a.authorize(s.you);
  expect(again.visit.kind === 'page' && again.visit.html).toContain('name="password"');
  const denied = await s.you.submit(again.visit, '/login', { identifier: username, password }, a.redirectUri);
  expect(denied.kind === 'page' && denied.status).toBe(401);
}

describe('disabling an account', () => {
  it('ends its sessions, revokes its tokens and notifies both windows', async () => {
    const s = await signedInEverywhere('ding.yi');
    const before = { a: a.logoutTokens.length, b: b.logoutTokens.length };
    const provider = await standaloneProvider(server.db, loadConfig({ ISSUER: server.url, MASTER_KEY: server.masterKey, DATA_DIR: '/nonexistent' }), { error: () => {}, info: () => {} });
    await setAccountStatus(server.db, s.atA.claims.sub, 'disabled');
    expect(await endSessionsOf(provider, server.db, s.atA.claims.sub, { everything: true })).toEqual({ sessions: 1, notified: 2 });
    await expectShutOut('ding.yi', s, before);
  });

  it.skipIf(!onPostgres())('does the same from the command line', async () => {
    const s = await signedInEverywhere('ding.er');
    const before = { a: a.logoutTokens.length, b: b.logoutTokens.length };
    const r = await runCli(['account', 'disable', 'ding.er', '--json'], { DATABASE_URL: server.database.url!, ISSUER: server.url, MASTER_KEY: server.masterKey });
    expect(r.stderr).toBe('');
    expect(JSON.parse(r.stdout)).toMatchObject({ status: 'disabled', sessions_ended: 1, windows_notified: 2 });
    await expectShutOut('ding.er', s, before);
    expect(JSON.parse((await runCli(['account', 'enable', 'ding.er', '--json'], { DATABASE_URL: server.database.url!, MASTER_KEY: server.masterKey })).stdout)).toMatchObject({ status: 'active' });
    expect((await a.signIn(browser(), { identifier: 'ding.er', password })).claims.preferred_username).toBe('ding.er');
    expect(server.errors).toEqual([]);
  });
});
