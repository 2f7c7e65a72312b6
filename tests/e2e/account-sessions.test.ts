import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as oidc from 'openid-client';
import { createRemoteJWKSet, jwtVerify } from 'jose';
import { createAccount } from '../../src/accounts/accounts.ts';
import { PASSWORD_POLICIES } from '../../src/accounts/password-policy.ts';
import { listWindows } from '../../src/windows/windows.ts';
import { browser, type Visit } from '../helpers/browser.ts';
import { startTestServer, type TestServer } from '../helpers/server.ts';
import { windowSite, type WindowSite } from '../helpers/window-site.ts';
import { eventually } from '../helpers/wait.ts';

// The account center's sessions and sites: sign out one device, revoke a site, sign out
// everywhere; the windows hear of it by back-channel logout.

let server: TestServer;
let a: WindowSite;
let b: WindowSite;
const password = 'Anyang-Oracle-Bones-1899';
const html = (v: Visit) => (v.kind === 'page' ? v.html : `redirect to ${v.to.href}`);

beforeAll(async () => {
  server = await startTestServer();
  const windows = await listWindows(server.db);
  a = await windowSite(server, { windowId: windows[5]!.id, name: 'a-site', backchannel: true });
  b = await windowSite(server, { windowId: windows[6]!.id, name: 'b-site', backchannel: true });
  await createAccount(server.db, { username: 'xu.jing', displayName: '徐静', password }, PASSWORD_POLICIES.mlps);
});

afterAll(async () => {
  await a?.close();
  await b?.close();
  await server?.close();
});

const sidOf = async (token: string, site: WindowSite) =>
  (await jwtVerify(token, createRemoteJWKSet(new URL(`${server.url}/jwks`)), { issuer: server.url, audience: site.clientId })).payload.sid;

describe('sessions and sites in the account center', () => {
  it('lists both devices, signs out the other one, revokes a site, and signs out everywhere', async () => {
    const laptop = browser();
    const phone = browser();
    const atA = await a.signIn(laptop, { identifier: 'xu.jing', password }, { scope: 'openid offline_access', prompt: 'consent' });
    const atB = await b.signIn(laptop, undefined);
    const phoneAtA = await a.signIn(phone, { identifier: 'xu.jing', password });

    const page = await laptop.visit(`${server.url}/account`);
    expect(html(page)).toContain('当前设备');
    expect((html(page).match(/\/account\/sessions\/[^/]+\/end/g) ?? []).length).toBe(2);
    expect(html(page)).toContain('a-site');
    expect(html(page)).toContain('b-site');

    // Sign the phone out from the laptop: window A hears of the phone's session only.
    const otherDevice = html(page).split('<li>').find((item) => item.includes('/end"') && !item.includes('当前设备'))!;
    const before = a.logoutTokens.length;
    const afterPhone = await laptop.submit(page, /action="([^"]+\/end)"/.exec(otherDevice)![1]!);
    expect(await sidOf(await eventually(() => a.logoutTokens[before]), a)).toBe(phoneAtA.claims.sid);
    expect((await a.authorize(phone)).visit.kind).toBe('page');
    expect((html(afterPhone).match(/\/account\/sessions\/[^/]+\/end/g) ?? []).length).toBe(1);

    // Revoke what site A was granted: its refresh token stops working.
    const grants = html(afterPhone).split('<li>').filter((item) => item.includes('/revoke"'));
    const aGrant = grants.find((item) => item.includes('<strong>a-site</strong>'))!;
    expect(aGrant).toContain('长期访问');
    const afterRevoke = await laptop.submit(afterPhone, /action="(\/account\/grants\/[^"]+\/revoke)"/.exec(aGrant)![1]!);
    await expect(oidc.refreshTokenGrant(a.config, atA.tokens.refresh_token!)).rejects.toMatchObject({ error: 'invalid_grant' });
    expect(html(afterRevoke)).not.toMatch(/<strong>a-site<\/strong>/);

    // Sign out everywhere: both windows are told, and the account center asks for a password.
    const [beforeA, beforeB] = [a.logoutTokens.length, b.logoutTokens.length];
    await laptop.submit(afterRevoke, '/account/sessions/end-all');
    expect(await sidOf(await eventually(() => a.logoutTokens[beforeA]), a)).toBe(atA.claims.sid);
    expect(await sidOf(await eventually(() => b.logoutTokens[beforeB]), b)).toBe(atB.claims.sid);
    expect(html(await laptop.visit(`${server.url}/account`))).toContain('name="password"');
    expect(server.errors).toEqual([]);
  });
});
