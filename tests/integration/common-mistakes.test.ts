import * as oidc from 'openid-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createClient } from '../../src/windows/clients.ts';
import { browser } from '../helpers/browser.ts';
import { person, setUpPerson, signOutAtAnotherWindow } from '../helpers/examples.ts';
import { startTestServer, type TestServer } from '../helpers/server.ts';
import { windowSite, type WindowSite } from '../helpers/window-site.ts';

// The usual mistakes of a window site (docs/integration.zh-CN.md, "常见错误") and the
// answer each gets from the real server, as the guide quotes them.

let server: TestServer;
let site: WindowSite;
let windowId: number;

beforeAll(async () => {
  server = await startTestServer();
  ({ windowId } = await setUpPerson(server));
  site = await windowSite(server, { windowId, name: 'mistakes', scopes: ['openid', 'profile'] });
});

afterAll(async () => {
  await site?.close();
  await server?.close();
});

const authorize = (params: Record<string, string>) =>
  fetch(`${server.url}/auth?${new URLSearchParams({ client_id: site.clientId, response_type: 'code', scope: 'openid', redirect_uri: site.redirectUri, state: 's', nonce: 'n', ...params })}`, {
    redirect: 'manual',
    headers: { accept: 'text/html' },
  });

const errorBack = (res: Response) => {
  const location = res.headers.get('location');
  const url = location ? new URL(location) : undefined;
  return url && { error: url.searchParams.get('error'), error_description: url.searchParams.get('error_description') };
};

describe('the usual mistakes', () => {
  it('a redirect_uri with a trailing slash, or http for https: an error page showing the value sent, no redirect', async () => {
    for (const sent of [`${site.redirectUri}/`, site.redirectUri.replace('http:', 'https:')]) {
      const res = await authorize({ redirect_uri: sent });
      expect(res.status).toBe(400);
      expect(res.headers.get('location')).toBeNull();
      const html = await res.text();
      expect(html).toContain(`<code>${sent}</code>`);
      expect(html).toContain('invalid_redirect_uri');
    }
  });

  it('registering http for a site that is not this machine is refused', async () => {
    await expect(createClient(server.db, { windowId, name: 'x', redirectUris: ['http://www.example-window.cn/callback'] })).rejects.toThrow('"http://www.example-window.cn/callback" must use https (http is allowed only for localhost and loopback addresses)');
  });

  it('a public client without PKCE: invalid_request back at the site', async () => {
    const spa = await windowSite(server, { windowId, name: 'spa', authMethod: 'none' });
    const res = await fetch(`${server.url}/auth?${new URLSearchParams({ client_id: spa.clientId, response_type: 'code', scope: 'openid', redirect_uri: spa.redirectUri, state: 's' })}`, { redirect: 'manual' });
    expect(errorBack(res)).toEqual({ error: 'invalid_request', error_description: 'Authorization Server policy requires PKCE to be used for this request' });
  });

  it('a scope the client may not ask for: invalid_scope back at the site', async () => {
    const res = await authorize({ scope: 'openid enterprise' });
    expect(errorBack(res)).toEqual({ error: 'invalid_scope', error_description: 'requested scope is not allowed' });
  });

  it('a wrong client secret: invalid_client at the token endpoint', async () => {
    const wrong = await oidc.discovery(new URL(server.url), site.clientId, 'not-the-secret', undefined, { execute: [oidc.allowInsecureRequests] });
    const you = browser();
    const { visit, checks } = await site.authorize(you);
    const callback = await you.submit(visit, '/login', { identifier: person.username, password: person.password }, site.redirectUri);
    if (callback.kind !== 'redirect') throw new Error('expected a redirect');
    await expect(oidc.authorizationCodeGrant(wrong, callback.to, checks)).rejects.toMatchObject({ error: 'invalid_client', status: 401 });
  });

  // A sign-in at the site up to the code in its callback URL.
  const callbackOf = async (you: ReturnType<typeof browser>) => {
    const { visit, checks } = await site.authorize(you);
    const callback = await you.submit(visit, '/login', { identifier: person.username, password: person.password }, site.redirectUri);
    if (callback.kind !== 'redirect') throw new Error('expected a redirect');
    return { callback, url: callback.to, checks };
  };

  it('a code used twice: invalid_grant naming the code', async () => {
    const { callback, checks } = await callbackOf(browser());
    await site.redeem(callback, checks);
    await expect(site.redeem(callback, checks)).rejects.toMatchObject({ error: 'invalid_grant', error_description: 'code was already used; the tokens it gave are revoked' });
  });

  it('a redirect_uri at the token endpoint other than the one the sign-in began with: invalid_grant naming it', async () => {
    const { url, checks } = await callbackOf(browser());
    url.pathname += '/';
    await expect(oidc.authorizationCodeGrant(site.config, url, checks)).rejects.toMatchObject({ error: 'invalid_grant', error_description: 'redirect_uri is not the one the authorization request used' });
  });

  it("another sign-in's code_verifier: invalid_grant naming it", async () => {
    const { url, checks } = await callbackOf(browser());
    await expect(oidc.authorizationCodeGrant(site.config, url, { ...checks, pkceCodeVerifier: oidc.randomPKCECodeVerifier() })).rejects.toMatchObject({
      error: 'invalid_grant',
      error_description: 'code_verifier does not match the code_challenge of the authorization request',
    });
  });

  it('a refresh token used again after it rotated: invalid_grant naming it', async () => {
    const { callback, checks } = await callbackOf(browser());
    const tokens = await site.redeem(callback, checks);
    await oidc.refreshTokenGrant(site.config, tokens.refresh_token!);
    await expect(oidc.refreshTokenGrant(site.config, tokens.refresh_token!)).rejects.toMatchObject({
      error: 'invalid_grant',
      error_description: 'refresh_token was already used (rotation: use the newest one); the grant is revoked',
    });
  });

  it('a refresh after the person signed out at another window: invalid_grant, the refresh token ended with the session', async () => {
    const you = browser();
    const { callback, checks } = await callbackOf(you);
    const tokens = await site.redeem(callback, checks);
    const other = await windowSite(server, { windowId, name: 'mistakes-other' });
    await signOutAtAnotherWindow(server, you, other);
    await expect(oidc.refreshTokenGrant(site.config, tokens.refresh_token!)).rejects.toMatchObject({
      error: 'invalid_grant',
      error_description: 'refresh_token is unknown, revoked, ended with its sign-in session, or was issued to another client',
    });
  });

  it('a clock more than an hour fast: the ID token has "expired"', async () => {
    const you = browser();
    const { visit, checks } = await site.authorize(you);
    const callback = await you.submit(visit, '/login', { identifier: person.username, password: person.password }, site.redirectUri);
    if (callback.kind !== 'redirect') throw new Error('expected a redirect');
    const fast = await oidc.discovery(new URL(server.url), site.clientId, { client_secret: site.clientSecret!, [oidc.clockSkew]: 3700 }, undefined, { execute: [oidc.allowInsecureRequests] });
    await expect(oidc.authorizationCodeGrant(fast, callback.to, checks)).rejects.toMatchObject({
      message: 'JWT timestamp claim value failed validation',
      cause: { message: 'unexpected JWT "exp" (expiration time) claim value, expiration is past current timestamp' },
    });
  });

  it('an unknown client_id: an error page, no redirect', async () => {
    const res = await authorize({ client_id: 'no-such-client' });
    expect(res.status).toBe(400);
    expect(res.headers.get('location')).toBeNull();
    expect(await res.text()).toContain('invalid_client');
    expect(server.errors).toEqual([]);
  });
});
