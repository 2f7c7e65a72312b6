import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as oidc from 'openid-client';
import { createAccount } from '../../src/accounts/accounts.ts';
import { PASSWORD_POLICIES } from '../../src/accounts/password-policy.ts';
import { listWindows } from '../../src/windows/windows.ts';
import { makeAdmin, signInAtProvider, type TestAdmin } from '../helpers/admin.ts';
import { browser, type Browser } from '../helpers/browser.ts';
import { startTestServer, type TestServer } from '../helpers/server.ts';
import { windowSite, type WindowSite } from '../helpers/window-site.ts';

// Issue 12, item 5: errors an integrator can act on. A redirect URI that matches
// nothing: the page shows what was sent to anyone, and what is registered only to an
// administrator of that window signed in here (or to anyone in development). A refused
// code or refresh token: the token endpoint's error names the parameter.

const person = { username: 'sun.errors', displayName: '孙', password: 'Song-of-Henan-1956' };

let server: TestServer;
let a: WindowSite;
let b: WindowSite;
let ownAdmin: TestAdmin;
let otherAdmin: TestAdmin;

beforeAll(async () => {
  server = await startTestServer();
  const windows = await listWindows(server.db);
  a = await windowSite(server, { windowId: windows[0]!.id, name: 'errors-a' });
  b = await windowSite(server, { windowId: windows[1]!.id, name: 'errors-b', grantTypes: ['authorization_code', 'refresh_token'] });
  ownAdmin = await makeAdmin(server, 'errors.own.admin', [{ role: 'window_admin', windowId: windows[0]!.id }]);
  otherAdmin = await makeAdmin(server, 'errors.other.admin', [{ role: 'window_admin', windowId: windows[1]!.id }]);
  await createAccount(server.db, person, PASSWORD_POLICIES.mlps);
});

afterAll(async () => {
  await a?.close();
  await b?.close();
  await server?.close();
});

const escaped = (value: string) => value.replaceAll('&', '&amp;').replaceAll('<', '&lt;').replaceAll('>', '&gt;').replaceAll('"', '&quot;').replaceAll("'", '&#39;');

async function badRedirectPage(you: Browser | undefined, site: WindowSite, sent: string, base = server.url) {
  const url = `${base}/auth?${new URLSearchParams({ client_id: site.clientId, response_type: 'code', scope: 'openid', redirect_uri: sent, state: 's', nonce: 'n' })}`;
  const res = await (you ? you.fetch : fetch)(url, { redirect: 'manual', headers: { accept: 'text/html' } });
  expect(res.status).toBe(400);
  expect(res.headers.get('location')).toBeNull();
  const html = await res.text();
  expect(html).toContain(`<code>${escaped(sent)}</code>`);
  return html;
}

// Each TOTP code counts once, so each administrator signs in once in this file.
const sessions = new Map<TestAdmin, Browser>();
async function signedInAs(admin: TestAdmin) {
  const known = sessions.get(admin);
  if (known) return known;
  const you = browser();
  sessions.set(admin, you);
  const { visit } = await a.authorize(you);
  const back = await signInAtProvider(you, visit, admin, a.redirectUri);
  expect(back.kind).toBe('redirect');
  return you;
}

describe('a redirect_uri that matches nothing', () => {
  it("shows the registered URIs to an administrator of the client's window, signed in here", async () => {
    const html = await badRedirectPage(await signedInAs(ownAdmin), a, `${a.redirectUri}/`);
    expect(html).toContain(`<li><code>${escaped(a.redirectUri)}</code></li>`);
    expect(html).toContain('仅向该窗口的管理员显示');
  });

  it("hides them from another window's administrator, a signed-in person and a stranger", async () => {
    const person1 = browser();
    await a.signIn(person1, { identifier: person.username, password: person.password });
    for (const you of [await signedInAs(otherAdmin), person1, undefined]) {
      const html = await badRedirectPage(you, a, `${a.redirectUri}/`);
      expect(html).not.toContain(`<code>${escaped(a.redirectUri)}</code>`);
      expect(html).not.toContain('仅向该窗口的管理员显示');
    }
  });

  it("shows the post_logout_redirect_uri values to the window's administrator only", async () => {
    const own = await signedInAs(ownAdmin);
    const tokens = await a.signIn(own, undefined);
    const url = oidc.buildEndSessionUrl(a.config, { id_token_hint: tokens.tokens.id_token!, post_logout_redirect_uri: 'https://a.example/out' });
    const shown = await (await own.fetch(url, { redirect: 'manual', headers: { accept: 'text/html' } })).text();
    expect(shown).toContain(`<li><code>${escaped(a.postLogoutUri)}</code></li>`);

    const you = browser();
    const theirs = await a.signIn(you, { identifier: person.username, password: person.password });
    const hidden = await (await you.fetch(oidc.buildEndSessionUrl(a.config, { id_token_hint: theirs.tokens.id_token!, post_logout_redirect_uri: 'https://a.example/out' }), { headers: { accept: 'text/html' } })).text();
    expect(hidden).toContain('<code>https://a.example/out</code>');
    expect(hidden).not.toContain(`<code>${escaped(a.postLogoutUri)}</code>`);
  });

  it('shows them to anyone in development, escaped', async () => {
    const dev = await startTestServer({ NODE_ENV: 'development' });
    try {
      const [w] = await listWindows(dev.db);
      const site = await windowSite(dev, { windowId: w!.id, name: 'errors-dev', redirectUris: ['http://127.0.0.1:9/cb?a=1&b="x"'] });
      const html = await badRedirectPage(undefined, site, '<script>alert(1)</script>', dev.url);
      expect(html).toContain(`<li><code>${escaped('http://127.0.0.1:9/cb?a=1&b="x"')}</code></li>`);
      expect(html).not.toContain('<script>alert(1)</script>');
    } finally {
      await dev.close();
    }
  });
});

describe("the token endpoint's errors name the parameter", () => {
  async function codeFor(site: WindowSite) {
    const you = browser();
    const { visit, checks } = await site.authorize(you);
    const back = await you.submit(visit, '/login', { identifier: person.username, password: person.password }, site.redirectUri);
    if (back.kind !== 'redirect') throw new Error('expected a code');
    return { code: back.to.searchParams.get('code')!, checks };
  }

  async function token(site: WindowSite, params: Record<string, string>) {
    const res = await fetch(`${server.url}/token`, {
      method: 'POST',
      headers: { authorization: `Basic ${Buffer.from(`${site.clientId}:${site.clientSecret}`).toString('base64')}`, 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams(params),
    });
    return { status: res.status, body: (await res.json()) as { error: string; error_description: string } };
  }

  it('says which of code, redirect_uri and code_verifier was wrong', async () => {
    const wrongUri = await codeFor(a);
    expect(await token(a, { grant_type: 'authorization_code', code: wrongUri.code, redirect_uri: `${a.redirectUri}/`, code_verifier: wrongUri.checks.pkceCodeVerifier })).toEqual({
      status: 400,
      body: { error: 'invalid_grant', error_description: 'redirect_uri is not the one the authorization request used' },
    });
    const wrongVerifier = await codeFor(a);
    const verifier = await token(a, { grant_type: 'authorization_code', code: wrongVerifier.code, redirect_uri: a.redirectUri, code_verifier: oidc.randomPKCECodeVerifier() });
    expect(verifier.body.error_description).toBe('code_verifier does not match the code_challenge of the authorization request');
    const noVerifier = await codeFor(a);
    expect((await token(a, { grant_type: 'authorization_code', code: noVerifier.code, redirect_uri: a.redirectUri })).body.error_description).toMatch(/^code_verifier is missing/);

    const used = await codeFor(a);
    const redeem = { grant_type: 'authorization_code', code: used.code, redirect_uri: a.redirectUri, code_verifier: used.checks.pkceCodeVerifier };
    expect((await token(a, redeem)).status).toBe(200);
    expect((await token(a, redeem)).body.error_description).toMatch(/^code (is unknown|was already used)/);
    for (const code of ['no-such-code', 'constructor', '__proto__', 'x'.repeat(5000)]) {
      expect((await token(a, { ...redeem, code })).body).toEqual({ error: 'invalid_grant', error_description: 'code is unknown, already used, or was issued to another client' });
    }
  });

  it("answers another client's code as an unknown one", async () => {
    const theirs = await codeFor(b);
    const answer = await token(a, { grant_type: 'authorization_code', code: theirs.code, redirect_uri: b.redirectUri, code_verifier: theirs.checks.pkceCodeVerifier });
    expect(answer.body).toEqual({ error: 'invalid_grant', error_description: 'code is unknown, already used, or was issued to another client' });
  });

  it('says an old refresh token was already used', async () => {
    const { tokens } = await b.signIn(browser(), { identifier: person.username, password: person.password }, { scope: 'openid offline_access', prompt: 'consent' });
    expect(tokens.refresh_token).toBeTruthy();
    expect((await token(b, { grant_type: 'refresh_token', refresh_token: tokens.refresh_token! })).status).toBe(200);
    expect((await token(b, { grant_type: 'refresh_token', refresh_token: tokens.refresh_token! })).body.error_description).toMatch(/^refresh_token was already used/);
    expect((await token(b, { grant_type: 'refresh_token', refresh_token: 'nope' })).body.error_description).toBe('refresh_token is unknown, revoked, ended with its sign-in session, or was issued to another client');
  });

  it('logged no server errors', () => {
    expect(server.errors).toEqual([]);
  });
});
