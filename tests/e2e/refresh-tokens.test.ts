import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as oidc from 'openid-client';
import { createAccount, setAccountStatus } from '../../src/accounts/accounts.ts';
import { PASSWORD_POLICIES } from '../../src/accounts/password-policy.ts';
import { listWindows, type Window } from '../../src/windows/windows.ts';
import { browser, type Browser } from '../helpers/browser.ts';
import { startTestServer, type TestServer } from '../helpers/server.ts';
import { eventually } from '../helpers/wait.ts';
import { windowSite, type WindowSite } from '../helpers/window-site.ts';

// Issue 12, item 2: sessions that follow the person. A first-party window gets a
// refresh token on every code flow, bound to the sign-in session: it stops when the
// person signs out anywhere, when the session times out, when the account is disabled.
// offline_access with prompt=consent gives one that outlives the session.

const password = 'Shaolin-Temple-495';
let server: TestServer;
let windows: Window[];
let a: WindowSite;
let b: WindowSite;
let noRefresh: WindowSite;
let third: WindowSite;
let counter = 0;

beforeAll(async () => {
  server = await startTestServer();
  windows = await listWindows(server.db);
  a = await windowSite(server, { windowId: windows[0]!.id, name: 'refresh-a' });
  b = await windowSite(server, { windowId: windows[1]!.id, name: 'refresh-b' });
  noRefresh = await windowSite(server, { windowId: windows[1]!.id, name: 'refresh-none', grantTypes: ['authorization_code'] });
  third = await windowSite(server, { windowId: windows[2]!.id, name: 'refresh-third', thirdParty: true });
});

afterAll(async () => {
  for (const site of [a, b, noRefresh, third]) await site?.close();
  await server?.close();
});

async function person() {
  const username = `refresh.${++counter}`;
  const account = await createAccount(server.db, { username, displayName: username, password }, PASSWORD_POLICIES.mlps);
  return { account, you: browser(), credentials: { identifier: username, password } };
}

const refusedAt = (site: WindowSite, refreshToken: string) => expect(oidc.refreshTokenGrant(site.config, refreshToken)).rejects.toMatchObject({ error: 'invalid_grant' });

async function signOutAt(site: WindowSite, you: Browser, idToken: string) {
  const page = await you.visit(oidc.buildEndSessionUrl(site.config, { id_token_hint: idToken, post_logout_redirect_uri: site.postLogoutUri }), site.postLogoutUri);
  const done = await you.submit(page, '/session/end/confirm', { logout: 'yes' }, site.postLogoutUri);
  expect(done.kind).toBe('redirect');
}

// A third party's sign-in: the password (unless signed in), the consent page, the code.
async function consentedAtThird(you: Browser, credentials: { identifier: string; password: string }, params: Record<string, string>) {
  const { visit, checks } = await third.authorize(you, params);
  const consent = visit.kind === 'page' && visit.html.includes('name="password"') ? await you.submit(visit, '/login', credentials) : visit;
  expect(consent.kind === 'page' && consent.html).toContain('/confirm');
  return third.redeem(await you.submit(consent, '/confirm', {}, third.redirectUri), checks);
}

describe('a first-party window', () => {
  it('gets a refresh token from a plain code flow, which rotates and keeps the session', async () => {
    const { you, credentials } = await person();
    const { tokens, claims } = await a.signIn(you, credentials);
    expect(tokens.refresh_token).toBeTruthy();
    const next = await oidc.refreshTokenGrant(a.config, tokens.refresh_token!);
    expect(next.refresh_token).toBeTruthy();
    expect(next.refresh_token).not.toBe(tokens.refresh_token);
    expect(next.claims()!.sid).toBe(claims.sid);
    expect((await oidc.fetchUserInfo(a.config, next.access_token, claims.sub)).sub).toBe(claims.sub);
  });

  it('gets none when its client may not use the refresh_token grant', async () => {
    const { you, credentials } = await person();
    expect((await noRefresh.signIn(you, credentials)).tokens.refresh_token).toBeUndefined();
  });

  it('loses it when the person signs out at another window, and an offline_access one survives', async () => {
    const { you, credentials } = await person();
    const atA = await a.signIn(you, credentials);
    const offline = await a.signIn(you, undefined, { scope: 'openid offline_access', prompt: 'consent' });
    const atB = await b.signIn(you, undefined);
    expect(offline.tokens.refresh_token).toBeTruthy();
    await signOutAt(b, you, atB.tokens.id_token!);
    await refusedAt(a, atA.tokens.refresh_token!);
    await refusedAt(b, atB.tokens.refresh_token!);
    expect((await oidc.tokenIntrospection(a.config, atA.tokens.access_token)).active).toBe(false);
    const kept = await oidc.refreshTokenGrant(a.config, offline.tokens.refresh_token!);
    expect(kept.access_token).toBeTruthy();
  });

  it('loses it when the account is disabled, even before anything else ends the session', async () => {
    const { account, you, credentials } = await person();
    const { tokens } = await a.signIn(you, credentials);
    await setAccountStatus(server.db, account.id, 'disabled');
    await refusedAt(a, tokens.refresh_token!);
  });

  it("cannot be used by another window's client, nor twice at once", async () => {
    const { you, credentials } = await person();
    const { tokens } = await a.signIn(you, credentials);
    await refusedAt(b, tokens.refresh_token!);
    const results = await Promise.allSettled(Array.from({ length: 5 }, () => oidc.refreshTokenGrant(a.config, tokens.refresh_token!)));
    expect(results.filter((r) => r.status === 'fulfilled').length).toBeLessThanOrEqual(1);
    for (const r of results.filter((r) => r.status === 'rejected')) expect((r as PromiseRejectedResult).reason).toMatchObject({ error: 'invalid_grant' });
  });
});

describe('a third-party window', () => {
  it('gets a refresh token only with offline_access and prompt=consent, and it outlives the sign-out', async () => {
    const { you, credentials } = await person();
    expect((await consentedAtThird(you, credentials, {})).refresh_token).toBeUndefined();
    // Without prompt=consent the library drops offline_access (OIDC Core 11).
    expect((await consentedAtThird(browser(), credentials, { scope: 'openid offline_access' })).refresh_token).toBeUndefined();
    const offline = await consentedAtThird(browser(), credentials, { scope: 'openid offline_access', prompt: 'consent' });
    expect(offline.refresh_token).toBeTruthy();
    await signOutAt(third, you, (await consentedAtThird(you, credentials, { prompt: 'consent' })).id_token!);
    expect((await oidc.refreshTokenGrant(third.config, offline.refresh_token!)).access_token).toBeTruthy();
  });
});

describe('when the session times out', () => {
  it('the session-bound refresh token stops, the offline one does not', async () => {
    const short = await startTestServer({ SESSION_IDLE_TIMEOUT: '2' });
    try {
      const [w] = await listWindows(short.db);
      const site = await windowSite(short, { windowId: w!.id, name: 'refresh-timeout' });
      const account = await createAccount(short.db, { username: 'refresh.timeout', displayName: 'timeout', password }, PASSWORD_POLICIES.mlps);
      const you = browser();
      const bound = await site.signIn(you, { identifier: 'refresh.timeout', password });
      const offline = await site.signIn(you, undefined, { scope: 'openid offline_access', prompt: 'consent' });
      // Not by trying the refresh token (a success would rotate it): until the session's
      // own expiry has passed.
      const live = () => short.db('oidc_artifacts').where({ model: 'Session' }).whereRaw("payload->>'accountId' = ?", [account.id]).whereRaw('expires_at > now()').first();
      await eventually(async () => (await live()) === undefined);
      await refusedAt(site, bound.tokens.refresh_token!);
      expect((await oidc.refreshTokenGrant(site.config, offline.tokens.refresh_token!)).access_token).toBeTruthy();
      await site.close();
    } finally {
      await short.close();
    }
  });
});
