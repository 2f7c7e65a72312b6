import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as oidc from 'openid-client';
import { createRemoteJWKSet, jwtVerify } from 'jose';
import { createAccount } from '../../src/accounts/accounts.ts';
import { PASSWORD_POLICIES } from '../../src/accounts/password-policy.ts';
import { listWindows } from '../../src/windows/windows.ts';
import { browser } from '../helpers/browser.ts';
import { startTestServer, type TestServer } from '../helpers/server.ts';
import { windowSite, type WindowSite } from '../helpers/window-site.ts';
import { eventually } from '../helpers/wait.ts';

const person = { username: 'zhang.wei', displayName: '张伟', phone: '13912345678', email: 'zhang.wei@example.cn', password: 'Song-of-Henan-1954' };

let server: TestServer;
let a: WindowSite;
let b: WindowSite;

beforeAll(async () => {
  server = await startTestServer();
  const windows = await listWindows(server.db);
  const zhengzhou = windows.find((w) => w.region === '410100')!;
  const luoyang = windows.find((w) => w.region === '410300')!;
  a = await windowSite(server, { windowId: zhengzhou.id, name: 'zhengzhou-site', backchannel: true });
  b = await windowSite(server, { windowId: luoyang.id, name: 'luoyang-site', backchannel: true });
  await createAccount(server.db, person, PASSWORD_POLICIES.mlps);
});

afterAll(async () => {
  await a?.close();
  await b?.close();
  await server?.close();
});

describe('sign in once, signed in at every window', () => {
  it('signs in at A with a password, at B without typing, and signs out everywhere from B', async () => {
    const you = browser();

    const atA = await a.signIn(you, { identifier: person.username, password: person.password });
    expect(atA.askedForPassword).toBe(true);
    expect(atA.loginPage).toContain('河南省中小企业公共服务平台网络');
    expect(atA.loginPage).toContain('郑州市综合窗口平台');
    expect(atA.claims.sub).toMatch(/^[0-9a-f-]{36}$/);
    expect(atA.claims.name).toBe('张伟');
    expect(atA.claims.preferred_username).toBe('zhang.wei');

    const atB = await b.signIn(you, undefined);
    expect(atB.askedForPassword).toBe(false);
    expect(atB.claims.sub).toBe(atA.claims.sub);

    const userinfo = await oidc.fetchUserInfo(b.config, atB.tokens.access_token, atB.claims.sub);
    expect(userinfo.name).toBe('张伟');

    // RP-initiated logout at B: the confirmation page, then back to B's post-logout URI.
    const endSession = oidc.buildEndSessionUrl(b.config, { id_token_hint: atB.tokens.id_token!, post_logout_redirect_uri: b.postLogoutUri, state: 'bye' });
    const confirm = await you.visit(endSession, b.postLogoutUri);
    expect(confirm.kind).toBe('page');
    const done = await you.submit(confirm, '/session/end/confirm', { logout: 'yes' }, b.postLogoutUri);
    expect(done.kind === 'redirect' && done.to.searchParams.get('state')).toBe('bye');

    // A hears of it through back-channel logout, with a logout token it can verify.
    const token = await eventually(() => a.logoutTokens[0]);
    const { payload } = await jwtVerify(token, createRemoteJWKSet(new URL(`${server.url}/jwks`)), { issuer: server.url, audience: a.clientId });
    expect(payload.sid).toBe(atA.claims.sid);
    expect(payload.sub).toBe(atA.claims.sub);
    expect(payload.events).toHaveProperty(['http://schemas.openid.net/event/backchannel-logout']);

    // Signing in at A again asks for the password.
    const again = await a.authorize(you);
    expect(again.visit.kind).toBe('page');
    expect(again.visit.kind === 'page' && again.visit.html).toContain('name="password"');
  });

  it('signs in with phone number or email as well, and refuses a wrong password with the same message as an unknown account', async () => {
    for (const identifier of ['+86 139 1234 5678', 'Zhang.Wei@Example.cn']) {
      const { askedForPassword, claims } = await a.signIn(browser(), { identifier, password: person.password });
      expect(askedForPassword).toBe(true);
      expect(claims.preferred_username).toBe('zhang.wei');
    }
    const messages = [];
    for (const identifier of [person.username, 'nobody-here']) {
      const you = browser();
      const { visit } = await a.authorize(you);
      const answer = await you.submit(visit, '/login', { identifier, password: 'Wrong-password-123' }, a.redirectUri);
      expect(answer.kind).toBe('page');
      if (answer.kind === 'page') {
        expect(answer.status).toBe(401);
        messages.push(answer.html.match(/role="alert">([^<]*)</)?.[1]);
      }
    }
    expect(messages[0]).toBeTruthy();
    expect(messages[0]).toBe(messages[1]);
  });

  it('rejects a login form without its CSRF token, and changes nothing', async () => {
    const you = browser();
    const { visit } = await a.authorize(you);
    const answer = await you.submit(visit, '/login', { identifier: person.username, password: person.password, csrf: 'forged' }, a.redirectUri);
    expect(answer.kind === 'page' && answer.status).toBe(403);
    const next = await a.authorize(you);
    expect(next.visit.kind === 'page' && next.visit.html).toContain('name="password"');
  });

  it('rejects a replayed authorization code and revokes what it issued', async () => {
    const you = browser();
    const { visit, checks } = await a.authorize(you);
    const callback = await you.submit(visit, '/login', { identifier: person.username, password: person.password }, a.redirectUri);
    const tokens = await a.redeem(callback, checks);
    await expect(a.redeem(callback, checks)).rejects.toMatchObject({ error: 'invalid_grant' });
    const introspected = await oidc.tokenIntrospection(a.config, tokens.access_token);
    expect(introspected.active).toBe(false);
  });

  it('lets exactly one of two parallel redemptions of one code succeed', async () => {
    const you = browser();
    const { visit, checks } = await a.authorize(you);
    const callback = await you.submit(visit, '/login', { identifier: person.username, password: person.password }, a.redirectUri);
    const results = await Promise.allSettled([a.redeem(callback, checks), a.redeem(callback, checks), a.redeem(callback, checks)]);
    expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
    for (const r of results.filter((r) => r.status === 'rejected')) expect((r as PromiseRejectedResult).reason).toMatchObject({ error: 'invalid_grant' });
  });

  it('rotates refresh tokens, and reuse of a rotated one revokes the grant', async () => {
    const you = browser();
    const first = await a.signIn(you, { identifier: person.username, password: person.password }, { scope: 'openid offline_access', prompt: 'consent' });
    const old = first.tokens.refresh_token!;
    expect(old).toBeTruthy();
    const rotated = await oidc.refreshTokenGrant(a.config, old);
    expect(rotated.refresh_token).toBeTruthy();
    expect(rotated.refresh_token).not.toBe(old);
    await expect(oidc.refreshTokenGrant(a.config, old)).rejects.toMatchObject({ error: 'invalid_grant' });
    await expect(oidc.refreshTokenGrant(a.config, rotated.refresh_token!)).rejects.toMatchObject({ error: 'invalid_grant' });
    expect((await oidc.tokenIntrospection(a.config, rotated.access_token)).active).toBe(false);
  });

  it('never shows a first-party window a consent screen, and always shows one to a third party', async () => {
    const windows = await listWindows(server.db);
    const third = await windowSite(server, { windowId: windows[0]!.id, name: 'service-org', thirdParty: true });
    try {
      const you = browser();
      await a.signIn(you, { identifier: person.username, password: person.password }, { scope: 'openid profile offline_access', prompt: 'consent' });
      const { visit, checks } = await third.authorize(you);
      expect(visit.kind).toBe('page');
      if (visit.kind !== 'page') return;
      expect(visit.html).toContain('/confirm');
      expect(visit.html).toContain('service-org');
      const callback = await you.submit(visit, '/confirm', {}, third.redirectUri);
      const tokens = await third.redeem(callback, checks);
      expect(tokens.claims()!.name).toBe('张伟');
    } finally {
      await third.close();
    }
  });

  it('requires PKCE from a public client', async () => {
    const windows = await listWindows(server.db);
    const spa = await windowSite(server, { windowId: windows[1]!.id, name: 'spa', authMethod: 'none', grantTypes: ['authorization_code'] });
    const you = browser();
    const url = new URL(`${server.url}/auth`);
    url.search = new URLSearchParams({ client_id: spa.clientId, response_type: 'code', scope: 'openid', redirect_uri: spa.redirectUri, state: 's1' }).toString();
    const visit = await you.visit(url, spa.redirectUri);
    expect(visit.kind).toBe('redirect');
    if (visit.kind === 'redirect') {
      expect(visit.to.searchParams.get('error')).toBe('invalid_request');
      expect(visit.to.searchParams.get('error_description')).toMatch(/PKCE/);
    }
    const ok = await spa.signIn(browser(), { identifier: person.username, password: person.password });
    expect(ok.claims.sub).toBeTruthy();
  });

  // The page shows the value that was sent (escaped), so an integrator sees the trailing
  // slash that made it fail; never the URIs registered.
  const shownAsSent = (html: string, value: string) => html.includes(`<code>${value.replaceAll('&', '&amp;').replaceAll('<', '&lt;').replaceAll('>', '&gt;').replaceAll('"', '&quot;').replaceAll("'", '&#39;')}</code>`);

  it('answers an unregistered redirect URI with an error page and no redirect, showing what was sent', async () => {
    for (const redirect of ['http://127.0.0.1:9/evil/callback', `${a.redirectUri}/`, `${a.redirectUri}?x=1&y="<b>"`]) {
      const res = await fetch(
        `${server.url}/auth?${new URLSearchParams({ client_id: a.clientId, response_type: 'code', scope: 'openid', redirect_uri: redirect, state: 's', nonce: 'n' })}`,
        { redirect: 'manual', headers: { accept: 'text/html' } },
      );
      expect(res.status).toBe(400);
      expect(res.headers.get('location')).toBeNull();
      const html = await res.text();
      expect(html).toContain('redirect_uri');
      expect(shownAsSent(html, redirect)).toBe(true);
      expect(html).not.toContain(`<code>${a.redirectUri}</code>`);
      expect(html).not.toContain('<b>');
      expect(html).not.toMatch(/at .*\.(js|ts):\d+/);
    }
  });

  it('answers an unregistered post_logout_redirect_uri with an error page showing what was sent', async () => {
    const you = browser();
    const { tokens } = await a.signIn(you, { identifier: person.username, password: person.password });
    const sent = `${a.postLogoutUri}/`;
    const res = await you.fetch(oidc.buildEndSessionUrl(a.config, { id_token_hint: tokens.id_token!, post_logout_redirect_uri: sent }), { redirect: 'manual', headers: { accept: 'text/html' } });
    expect(res.status).toBe(400);
    expect(res.headers.get('location')).toBeNull();
    const html = await res.text();
    expect(shownAsSent(html, sent)).toBe(true);
    expect(html).not.toContain(`<code>${a.postLogoutUri}</code>`);
  });

  it('gives a window back end client_credentials tokens it can introspect and revoke', async () => {
    const windows = await listWindows(server.db);
    const backend = await windowSite(server, { windowId: windows.find((w) => w.region === '410100')!.id, name: 'zz-backend', grantTypes: ['client_credentials'], redirectUris: [], postLogoutRedirectUris: [] });
    const token = await oidc.clientCredentialsGrant(backend.config);
    expect(token.token_type.toLowerCase()).toBe('bearer');
    const active = await oidc.tokenIntrospection(backend.config, token.access_token);
    expect(active).toMatchObject({ active: true, client_id: backend.clientId });

    // A's user token can be checked by the back end of the same window, not by another window's.
    const user = await a.signIn(browser(), { identifier: person.username, password: person.password });
    expect((await oidc.tokenIntrospection(backend.config, user.tokens.access_token)).active).toBe(true);
    expect((await oidc.tokenIntrospection(b.config, user.tokens.access_token)).active).toBe(false);

    // Revoking is for the token's own client: another client's attempt changes nothing.
    await oidc.tokenRevocation(backend.config, user.tokens.access_token);
    await oidc.tokenRevocation(b.config, token.access_token);
    expect((await oidc.tokenIntrospection(backend.config, user.tokens.access_token)).active).toBe(true);
    expect((await oidc.tokenIntrospection(backend.config, token.access_token)).active).toBe(true);
    await oidc.tokenRevocation(backend.config, token.access_token);
    expect((await oidc.tokenIntrospection(backend.config, token.access_token)).active).toBe(false);
  });

  it('refuses a wrong client secret', async () => {
    const wrong = await oidc.discovery(new URL(server.url), a.clientId, 'not-the-secret', undefined, { execute: [oidc.allowInsecureRequests] });
    await expect(oidc.clientCredentialsGrant(wrong)).rejects.toMatchObject({ error: 'invalid_client' });
  });

  it('logged no server errors', () => {
    expect(server.errors).toEqual([]);
  });
});
