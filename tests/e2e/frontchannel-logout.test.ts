import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Browser as Chromium } from 'playwright-core';
import * as oidc from 'openid-client';
import { createAccount } from '../../src/accounts/accounts.ts';
import { PASSWORD_POLICIES } from '../../src/accounts/password-policy.ts';
import { InputError } from '../../src/errors.ts';
import { createClient, getClient, updateClient } from '../../src/windows/clients.ts';
import { listWindows, type Window } from '../../src/windows/windows.ts';
import { adminToken, api, makeAdmin } from '../helpers/admin.ts';
import { browser } from '../helpers/browser.ts';
import { chinesePage, hasChromium, launchChromium } from '../helpers/chromium.ts';
import { runCliInProcess } from '../helpers/cli-in-process.ts';
import { logoutReceiver, type LogoutReceiver } from '../helpers/logout-receiver.ts';
import { startTestServer, type TestServer } from '../helpers/server.ts';
import { eventually } from '../helpers/wait.ts';
import { relyingParty, type RelyingParty } from '../helpers/window-site.ts';

// Front-Channel Logout 1.0: the sign-out page loads each ended window's
// frontchannel_logout_uri (with iss and sid) in hidden frames, then goes on to the
// post_logout_redirect_uri. A window may register either channel, or both.

const password = 'Yellow-River-Bridge-7';

let server: TestServer;
let windows: Window[];
let receiver: LogoutReceiver;
let rp: RelyingParty;
let postLogoutUri: string;
let dir: string;
let people = 0;

beforeAll(async () => {
  server = await startTestServer({ SIGN_IN_RATE_LIMIT: '1000/60' });
  windows = await listWindows(server.db);
  receiver = await logoutReceiver();
  const redirectUri = `${receiver.origin}/callback`;
  postLogoutUri = `${receiver.origin}/signed-out`;
  const created = await createClient(server.db, {
    windowId: windows[0]!.id,
    name: 'both channels',
    redirectUris: [redirectUri],
    postLogoutRedirectUris: [postLogoutUri],
    backchannelLogoutUri: receiver.backchannelUri,
    frontchannelLogoutUri: receiver.frontchannelUri,
  });
  rp = await relyingParty(server, { clientId: created.clientId, clientSecret: created.clientSecret, redirectUri });
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sme-passport-frontchannel-'));
});

afterAll(async () => {
  await receiver?.close();
  await server?.close();
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

const newPerson = async () => {
  const username = `front.${++people}`;
  await createAccount(server.db, { username, displayName: username, password }, PASSWORD_POLICIES.asvs);
  return username;
};
const frontchannelRequests = () => receiver.received.filter((r) => r.path === '/frontchannel-logout');

describe('front-channel logout', () => {
  it('is announced in discovery', async () => {
    const discovery = await (await fetch(`${server.url}/.well-known/openid-configuration`)).json();
    expect(discovery).toMatchObject({ frontchannel_logout_supported: true, frontchannel_logout_session_supported: true, backchannel_logout_supported: true });
  });

  it('shows a page that frames the window, with a link on to the post-logout URI for browsers without script', async () => {
    const username = await newPerson();
    const you = browser();
    const { tokens, claims } = await rp.signIn(you, { identifier: username, password });
    const endSession = oidc.buildEndSessionUrl(rp.config, { id_token_hint: tokens.id_token!, post_logout_redirect_uri: postLogoutUri, state: 'bye' });
    const confirm = await you.visit(endSession, postLogoutUri);
    const page = await you.submit(confirm, '/session/end/confirm', { logout: 'yes' }, postLogoutUri);
    if (page.kind !== 'page') throw new Error(`expected the front-channel page, went to ${page.to.href}`);
    expect(page.status).toBe(200);
    const frame = new URL(receiver.frontchannelUri);
    frame.searchParams.set('iss', server.url);
    frame.searchParams.set('sid', claims.sid as string);
    expect(page.html).toContain(`<iframe src="${frame.href.replaceAll('&', '&amp;')}" hidden`);
    expect(page.html).toContain(`<a id="continue" href="${postLogoutUri}?state=bye">`);
    expect(page.html).toContain('<script src="/assets/frontchannel-logout.js"></script>');
    // The session is over all the same.
    expect((await rp.authorize(you)).visit.kind === 'page').toBe(true);
    const script = await fetch(`${server.url}/assets/frontchannel-logout.js`);
    expect(script.headers.get('content-type')).toMatch(/^application\/javascript/);
    expect(await script.text()).toContain("getElementById('continue')");
    await eventually(() => receiver.accepted(claims.sid as string).length === 1);
  });

  it.skipIf(!hasChromium)('in a browser, loads the window with iss and sid, then lands on the post-logout URI', async () => {
    const username = await newPerson();
    const chromium: Chromium = await launchChromium();
    try {
      const page = await chinesePage(chromium);
      const verifier = oidc.randomPKCECodeVerifier();
      const checks = { pkceCodeVerifier: verifier, expectedState: oidc.randomState(), expectedNonce: oidc.randomNonce() };
      const authorize = oidc.buildAuthorizationUrl(rp.config, {
        redirect_uri: rp.redirectUri,
        scope: 'openid profile',
        code_challenge: await oidc.calculatePKCECodeChallenge(verifier),
        code_challenge_method: 'S256',
        state: checks.expectedState,
        nonce: checks.expectedNonce,
      });
      await page.goto(authorize.href);
      await page.fill('#identifier', username);
      await page.fill('#password', password);
      await page.click('button[type=submit]:not(.secondary)');
      await page.waitForURL(`${rp.redirectUri}?**`);
      const tokens = await oidc.authorizationCodeGrant(rp.config, new URL(page.url()), checks);
      const sid = tokens.claims()!.sid as string;

      const before = frontchannelRequests().length;
      // The ID token of this session: the sign-out page confirms itself (assets/auto-submit.js).
      const confirmed = page.waitForResponse((r) => r.url().includes('/session/end/confirm') && r.request().method() === 'POST');
      await page.goto(oidc.buildEndSessionUrl(rp.config, { id_token_hint: tokens.id_token!, post_logout_redirect_uri: postLogoutUri, state: 'bye' }).href);
      const policy = (await confirmed).headers()['content-security-policy'];
      expect(policy).toContain(`frame-src ${receiver.origin}`);
      expect(policy).toContain("script-src 'self'");
      await page.waitForURL(`${postLogoutUri}?state=bye`);

      const requests = frontchannelRequests().slice(before);
      expect(requests.map((r) => Object.fromEntries(r.query))).toEqual([{ from: 'passport', iss: server.url, sid }]);
      await eventually(() => receiver.accepted(sid).length === 1);
      expect(server.errors).toEqual([]);
    } finally {
      await chromium.close();
    }
  });

  it('refuses a front-channel URI the back-channel would refuse, wherever it is registered, naming the value', async () => {
    const windowId = windows[1]!.id;
    const bad = [
      'javascript:alert(1)',
      'http://window.example.gov.cn/logout',
      'https://window.example.gov.cn/logout#top',
      'https://user:secret@window.example.gov.cn/logout',
      '__proto__',
      'constructor',
      `https://window.example.gov.cn/${'a'.repeat(2100)}`,
      'https://window.example.gov.cn/\u0000logout',
    ];
    for (const uri of bad) {
      const refused = await createClient(server.db, { windowId, name: 'bad', redirectUris: ['https://window.example.gov.cn/cb'], frontchannelLogoutUri: uri }).then(
        () => undefined,
        (err: unknown) => err,
      );
      expect(refused, uri).toBeInstanceOf(InputError);
      expect((refused as Error).message, uri).toMatch(/frontchannelLogoutUri/);
    }
    expect(Number(((await server.db('clients').where({ name: 'bad' }).count({ n: '*' }).first()) as { n: string | number }).n)).toBe(0);

    const cli = await runCliInProcess(server.db, ['client', 'create', '--window', String(windowId), '--name', 'cli', '--redirect-uri', 'https://window.example.gov.cn/cb', '--frontchannel-logout-uri', 'http://window.example.gov.cn/x', '--json'], { dir });
    expect({ code: cli.code, stderr: cli.stderr }).toEqual({ code: 1, stderr: expect.stringMatching(/--frontchannel-logout-uri.*must use https/) });
    const ok = await runCliInProcess(server.db, ['client', 'create', '--window', String(windowId), '--name', 'cli', '--redirect-uri', 'https://window.example.gov.cn/cb', '--frontchannel-logout-uri', 'https://window.example.gov.cn/fc?a=1', '--json'], { dir });
    expect(ok.stderr).toBe('');
    const clientId = JSON.parse(ok.stdout).client_id as string;
    expect(await getClient(server.db, clientId)).toMatchObject({ frontchannelLogoutUri: 'https://window.example.gov.cn/fc?a=1' });

    const admin = await makeAdmin(server, 'front.admin', [{ role: 'window_admin', windowId }]);
    const token = await adminToken(server, admin);
    expect(await api(server, token, 'PATCH', `/clients/${encodeURIComponent(clientId)}`, { frontchannelLogoutUri: 'https://window.example.gov.cn/fc#x' })).toMatchObject({ status: 400 });
    expect(await api(server, token, 'PATCH', `/clients/${encodeURIComponent(clientId)}`, { frontchannelLogoutUri: null })).toMatchObject({ status: 200 });
    expect((await getClient(server.db, clientId))!.frontchannelLogoutUri).toBeUndefined();
    await updateClient(server.db, clientId, { frontchannelLogoutUri: 'https://window.example.gov.cn/fc' });
    expect(await api(server, token, 'GET', `/clients/${encodeURIComponent(clientId)}`)).toMatchObject({ status: 200, body: { frontchannelLogoutUri: 'https://window.example.gov.cn/fc' } });
  });
});
