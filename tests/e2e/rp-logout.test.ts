import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as oidc from 'openid-client';
import type { Browser as Chromium } from 'playwright-core';
import { createAccount } from '../../src/accounts/accounts.ts';
import { PASSWORD_POLICIES } from '../../src/accounts/password-policy.ts';
import { listWindows } from '../../src/windows/windows.ts';
import { browser, type Visit } from '../helpers/browser.ts';
import { chinesePage, hasChromium, launchChromium } from '../helpers/chromium.ts';
import { startTestServer, type TestServer } from '../helpers/server.ts';
import { windowSite, type WindowSite } from '../helpers/window-site.ts';

// Issue 12, item 3: RP-initiated logout with an id_token_hint the asking window got in
// this very session signs the person out without a confirmation click. Anything less
// (no hint, an earlier session's token, another person's, a client this session never
// signed in to) keeps the confirmation, so no other page can sign the person out.

const zhou = { username: 'zhou.rp', displayName: '周', password: 'Song-of-Henan-1954' };
const qian = { username: 'qian.rp', displayName: '钱', password: 'Song-of-Henan-1955' };

let server: TestServer;
let a: WindowSite; // takes back-channel logout
let b: WindowSite; // does not

beforeAll(async () => {
  server = await startTestServer();
  const windows = await listWindows(server.db);
  a = await windowSite(server, { windowId: windows[0]!.id, name: 'rp-logout-a', backchannel: true });
  b = await windowSite(server, { windowId: windows[1]!.id, name: 'rp-logout-b' });
  await createAccount(server.db, zhou, PASSWORD_POLICIES.mlps);
  await createAccount(server.db, qian, PASSWORD_POLICIES.mlps);
});

afterAll(async () => {
  await a?.close();
  await b?.close();
  await server?.close();
});

const signs = (page: Visit) => {
  if (page.kind !== 'page') throw new Error(`expected the sign-out page, got a redirect to ${page.to}`);
  return { auto: page.html.includes('data-auto-submit') && page.html.includes('src="/assets/auto-submit.js"'), asks: page.html.includes('要退出统一身份认证吗') };
};

const endSessionUrl = (site: WindowSite, params: Record<string, string>) => oidc.buildEndSessionUrl(site.config, { post_logout_redirect_uri: site.postLogoutUri, ...params });

describe('RP-initiated logout', () => {
  it('needs no click with an ID token from this session, for every client, with or without back-channel logout', async () => {
    for (const site of [a, b]) {
      const you = browser();
      const { tokens } = await site.signIn(you, { identifier: zhou.username, password: zhou.password });
      expect(tokens.claims()!.sid).toEqual(expect.any(String));
      const page = await you.visit(endSessionUrl(site, { id_token_hint: tokens.id_token!, state: 'bye' }), site.postLogoutUri);
      expect(signs(page)).toEqual({ auto: true, asks: false });
      // What the script presses: the form's "yes", which ends the whole session.
      const done = await you.submit(page, '/session/end/confirm', { logout: 'yes' }, site.postLogoutUri);
      expect(done.kind === 'redirect' && done.to.searchParams.get('state')).toBe('bye');
      const again = await site.authorize(you);
      expect(again.visit.kind === 'page' && again.visit.html).toContain('name="password"');
    }
  });

  it('keeps the confirmation without a hint, or with the client named only by client_id', async () => {
    const you = browser();
    await a.signIn(you, { identifier: zhou.username, password: zhou.password });
    expect(signs(await you.visit(`${server.url}/session/end`))).toEqual({ auto: false, asks: true });
    expect(signs(await you.visit(endSessionUrl(a, { client_id: a.clientId }), a.postLogoutUri))).toEqual({ auto: false, asks: true });
  });

  it('keeps the confirmation for an ID token of an earlier session of the same person', async () => {
    const you = browser();
    const first = await a.signIn(you, { identifier: zhou.username, password: zhou.password });
    const out = await you.visit(endSessionUrl(a, { id_token_hint: first.tokens.id_token! }), a.postLogoutUri);
    await you.submit(out, '/session/end/confirm', { logout: 'yes' }, a.postLogoutUri);
    const second = await a.signIn(you, { identifier: zhou.username, password: zhou.password });
    expect(second.claims.sid).not.toBe(first.claims.sid);
    expect(signs(await you.visit(endSessionUrl(a, { id_token_hint: first.tokens.id_token! }), a.postLogoutUri))).toEqual({ auto: false, asks: true });
    expect(signs(await you.visit(endSessionUrl(a, { id_token_hint: second.tokens.id_token! }), a.postLogoutUri)).auto).toBe(true);
  });

  it("keeps the confirmation for another person's ID token, even from a live session", async () => {
    const theirs = await a.signIn(browser(), { identifier: qian.username, password: qian.password });
    const you = browser();
    await a.signIn(you, { identifier: zhou.username, password: zhou.password });
    expect(signs(await you.visit(endSessionUrl(a, { id_token_hint: theirs.tokens.id_token! }), a.postLogoutUri))).toEqual({ auto: false, asks: true });
  });

  it('keeps the confirmation for a window this session never signed in to', async () => {
    const elsewhere = await b.signIn(browser(), { identifier: zhou.username, password: zhou.password });
    const you = browser();
    await a.signIn(you, { identifier: zhou.username, password: zhou.password });
    expect(signs(await you.visit(endSessionUrl(b, { id_token_hint: elsewhere.tokens.id_token! }), b.postLogoutUri))).toEqual({ auto: false, asks: true });
  });

  it('refuses a hint for one client with another client_id, a forged hint and a broken one, and changes nothing', async () => {
    const you = browser();
    const atA = await a.signIn(you, { identifier: zhou.username, password: zhou.password });
    const [header, payload] = atA.tokens.id_token!.split('.');
    const forged = `${header}.${payload}.${Buffer.from('not the signature').toString('base64url')}`;
    const refused: Array<Record<string, string>> = [
      { id_token_hint: atA.tokens.id_token!, client_id: b.clientId },
      { id_token_hint: forged },
      { id_token_hint: 'constructor' },
      { id_token_hint: '__proto__.e30.' },
    ];
    for (const params of refused) {
      const page = await you.visit(oidc.buildEndSessionUrl(a.config, params));
      expect(page.kind === 'page' && page.status).toBe(400);
      expect(signs(page).auto).toBe(false);
    }
    const still = await a.authorize(you);
    expect(still.visit.kind).toBe('redirect');
  });

  it('serves the script from this server with a script content type, and nothing else under /assets', async () => {
    const script = await fetch(`${server.url}/assets/auto-submit.js`);
    expect(script.status).toBe(200);
    expect(script.headers.get('content-type')).toMatch(/^application\/javascript/);
    expect(script.headers.get('x-content-type-options')).toBe('nosniff');
    expect(await script.text()).toContain('data-auto-submit');
    for (const name of ['nope.js', '..%2Fpackage.json', '__proto__', 'constructor', '%2E%2E%2Fsrc%2Fmain.ts']) {
      expect((await fetch(`${server.url}/assets/${name}`)).status).toBe(404);
    }
  });
});

describe.skipIf(!hasChromium)('RP-initiated logout in a browser', () => {
  let chromium: Chromium;
  beforeAll(async () => {
    chromium = await launchChromium();
  });
  afterAll(async () => {
    await chromium?.close();
  });

  it('goes from the window to its post-logout page without a click', async () => {
    const you = browser();
    const { tokens } = await b.signIn(you, { identifier: zhou.username, password: zhou.password });
    const page = await chinesePage(chromium);
    try {
      // The session cookie of the cookie-jar sign-in, handed to chromium.
      const cookies = await you.jar.getCookies(server.url);
      await page.context().addCookies(cookies.map((c) => ({ name: c.key, value: c.value, url: server.url })));
      const landed = page.waitForRequest((request) => request.url().startsWith(b.postLogoutUri));
      await page.goto(endSessionUrl(b, { id_token_hint: tokens.id_token!, state: 'quick' }).href).catch(() => undefined);
      expect(new URL((await landed).url()).searchParams.get('state')).toBe('quick');
      const again = await b.authorize(you);
      expect(again.visit.kind === 'page' && again.visit.html).toContain('name="password"');
    } finally {
      await page.close();
    }
  });
});
