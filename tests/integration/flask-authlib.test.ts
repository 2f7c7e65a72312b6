import { spawn } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createClient, updateClient } from '../../src/windows/clients.ts';
import { browser } from '../helpers/browser.ts';
import { chinesePage, hasChromium, launchChromium } from '../helpers/chromium.ts';
import { anotherWindowForChromium, asksForPassword, exampleApi, EXAMPLES, expectedEnterprise, forgedLogoutTokens, missingTools, passThroughLogout, person, requireTools, setUpPerson, signOutAtAnotherWindow, startExample, startSameSiteServer, typePassword, type ExampleProcess } from '../helpers/examples.ts';
import { freePort } from '../helpers/processes.ts';
import type { TestServer } from '../helpers/server.ts';
import { eventually } from '../helpers/wait.ts';
import { windowSite, type WindowSite } from '../helpers/window-site.ts';

// docs/examples/flask-authlib/app.py, the guide's Flask site on Authlib, run by Debian's
// python3 (python3-flask, python3-authlib, python3-requests) against the real server.

let server: TestServer;
let site: ExampleProcess | undefined;
let other: WindowSite;
let base: string;
let clientId: string;
let enterpriseId: string;
let windowId: number;
let api: ExampleProcess | undefined;

const PYTHON = '/usr/bin/python3';
const TOOLS = { [PYTHON]: 'python3' };

const pythonModulesMissing = async () =>
  (await new Promise<number | null>((resolve) => spawn(PYTHON, ['-c', 'import flask, authlib, requests'], { stdio: 'ignore' }).once('close', resolve))) !== 0;

async function setUp() {
  requireTools(TOOLS);
  if (await pythonModulesMissing()) throw new Error('python3 cannot import flask, authlib and requests: apt-get install python3-flask python3-authlib python3-requests');
  server = await startSameSiteServer();
  const given = await setUpPerson(server);
  windowId = given.windowId;
  enterpriseId = given.enterprise.id;
  const port = await freePort();
  base = `http://127.0.0.1:${port}`;
  const created = await createClient(server.db, {
    windowId,
    name: 'Flask 示例',
    redirectUris: [`${base}/callback`],
    postLogoutRedirectUris: [`${base}/signed-out`],
    backchannelLogoutUri: `${base}/backchannel-logout`,
  });
  clientId = created.clientId;
  other = await windowSite(server, { windowId, name: 'other-window' });
  const started = await exampleApi(server, windowId);
  api = started.process;
  // Authlib refuses a token endpoint on plain http unless told it is a test.
  site = await startExample(
    PYTHON,
    [`${EXAMPLES}/flask-authlib/app.py`],
    { ISSUER: server.url, CLIENT_ID: created.clientId, CLIENT_SECRET: created.clientSecret!, BASE_URL: base, PORT: String(port), SESSION_SECRET: 'a-test-secret-of-at-least-32-characters', AUTHLIB_INSECURE_TRANSPORT: '1', API_IDENTIFIER: started.api.identifier },
    `${base}/`,
  );
}

async function tearDown() {
  await site?.stop();
  await api?.stop();
  await other?.close();
  await server?.close();
}

const me = async (you: ReturnType<typeof browser>) => {
  const res = await you.fetch(`${base}/me`, { redirect: 'manual' });
  return res.status === 200 ? ((await res.json()) as Record<string, unknown>) : undefined;
};

// Outside the describe block, so that a missing tool is a failed test, not skipped ones.
it('has its tools installed', async () => {
  expect(missingTools(TOOLS)).toEqual([]);
  expect(await pythonModulesMissing(), 'apt-get install python3-flask python3-authlib python3-requests').toBe(false);
});

describe('the Flask + Authlib example', () => {
  beforeAll(setUp);
  afterAll(tearDown);

  it('signs a person in and sees their claims, the enterprise among them', async () => {
    const you = browser();
    const login = await you.visit(`${base}/login`);
    const at = await typePassword(you, login);
    expect(at.kind === 'page' && at.url.href).toBe(`${base}/me`);
    const claims = (await me(you))!;
    expect(claims).toMatchObject({
      iss: server.url,
      name: person.displayName,
      preferred_username: person.username,
      email: person.email,
      phone_number: '+8613800138000',
      acr: 'urn:sme-passport:acr:password',
      amr: ['pwd'],
      enterprise: expectedEnterprise(enterpriseId),
    });
    expect(claims.sid).toEqual(expect.any(String));
    expect(site!.output()).not.toContain('Error');
  });

  it('refreshes its tokens with the refresh token bound to the sign-in session', async () => {
    const you = browser();
    await typePassword(you, await you.visit(`${base}/login`));
    const res = await you.fetch(`${base}/refresh`, { method: 'POST' });
    expect(res.status).toBe(200);
    expect(((await res.json()) as { expires_in: number }).expires_in).toBeGreaterThan(0);
  });

  it('calls the window’s API with its access token, a JWT for it (authorize_redirect(..., resource=)), before and after a refresh', async () => {
    const you = browser();
    await typePassword(you, await you.visit(`${base}/login`));
    const sub = (await me(you))!.sub;
    const expected = { caller: { sub, client_id: clientId, scope: 'orders:read', enterprise_id: enterpriseId }, orders: [] };
    const orders = async () => {
      const res = await you.fetch(`${base}/orders`);
      return [res.status, await res.json()];
    };
    expect(await orders()).toEqual([200, expected]);
    expect((await you.fetch(`${base}/refresh`, { method: 'POST' })).status).toBe(200);
    expect(await orders()).toEqual([200, expected]);
    expect(api!.output()).not.toContain('Error');
  });

  it('signs in without a password after another window (single sign-on)', async () => {
    const you = browser();
    await other.signIn(you, { identifier: person.username, password: person.password });
    const at = await you.visit(`${base}/login`);
    expect(asksForPassword(at)).toBe(false);
    expect((await me(you))?.preferred_username).toBe(person.username);
  });

  it('signs out through its /logout (RP-initiated, with id_token_hint) and back at its own page', async () => {
    const you = browser();
    await typePassword(you, await you.visit(`${base}/login`));
    const toProvider = await you.visit(`${base}/logout`, server.url);
    expect(toProvider.kind === 'redirect' && toProvider.to.searchParams.get('id_token_hint')).toEqual(expect.any(String));
    const at = await passThroughLogout(you, await you.visit(toProvider.kind === 'redirect' ? toProvider.to : '', `${base}/signed-out`), `${base}/signed-out`);
    expect(at.kind === 'redirect' && at.to.href).toBe(`${base}/signed-out`);
    expect(await me(you)).toBeUndefined();
    // The provider's session ended too: the next sign-in asks for the password.
    expect(asksForPassword(await you.visit(`${base}/login`))).toBe(true);
  });

  it('ends its session when the person signs out at another window (back-channel)', async () => {
    const you = browser();
    await typePassword(you, await you.visit(`${base}/login`));
    await signOutAtAnotherWindow(server, you, other);
    await eventually(async () => (await me(you)) === undefined);
  });

  it.skipIf(!hasChromium)('ends its session when the person signs out at another window, in chromium (front-channel), and only for its sid', async () => {
    // Front-channel instead of back-channel for this test: only the provider's page's frame can end it.
    await updateClient(server.db, clientId, { backchannelLogoutUri: null, frontchannelLogoutUri: `${base}/frontchannel-logout` });
    const another = await anotherWindowForChromium(server, windowId);
    const chromium = await launchChromium();
    try {
      const page = await chinesePage(chromium);
      const text = async (url: string) => (await page.goto(url))!.text();
      await page.goto(`${base}/login`);
      await page.fill('#identifier', person.username);
      await page.fill('#password', person.password);
      await page.click('button[type=submit]:not(.secondary)');
      await page.waitForURL(`${base}/me`);
      const sid = (JSON.parse(await text(`${base}/me`)) as { sid: string }).sid;

      const wrong: Record<string, string>[] = [{ iss: server.url, sid: 'not-its-sid' }, { iss: 'https://passport.example.gov.cn', sid }, { sid }, { iss: server.url }];
      for (const query of wrong) {
        await page.goto(`${base}/frontchannel-logout?${new URLSearchParams(query)}`);
        expect(await text(`${base}/`), JSON.stringify(query)).toBe('signed in');
      }

      const framed = page.waitForResponse((res) => res.url().startsWith(`${base}/frontchannel-logout?`));
      await another.signOut(page);
      expect(Object.fromEntries(new URL((await framed).url()).searchParams)).toEqual({ iss: server.url, sid });
      expect(await text(`${base}/`)).toBe('signed out');
      expect(site!.output()).not.toContain('Error');
    } finally {
      await chromium.close();
      await another.close();
      await updateClient(server.db, clientId, { backchannelLogoutUri: `${base}/backchannel-logout`, frontchannelLogoutUri: null });
    }
  });

  it('refuses a logout token that is not the provider’s, and keeps the session', async () => {
    const you = browser();
    await typePassword(you, await you.visit(`${base}/login`));
    const sid = String((await me(you))!.sid);
    for (const token of await forgedLogoutTokens(server.url, clientId, sid)) {
      const res = await fetch(`${base}/backchannel-logout`, { method: 'POST', body: new URLSearchParams({ logout_token: token }) });
      expect(res.status).toBe(400);
    }
    expect((await me(you))?.sid).toBe(sid);
    expect(server.errors).toEqual([]);
  });
});
