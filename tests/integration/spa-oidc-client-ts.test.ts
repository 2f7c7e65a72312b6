import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createClient } from '../../src/windows/clients.ts';
import { chinesePage, launchChromium } from '../helpers/chromium.ts';
import { anotherWindowForChromium, EXAMPLES, expectedEnterprise, missingTools, person, registerExampleApi, requireTools, toolsPresent, setUpPerson, startApiExample, startExample, startSameSiteServer, type ExampleProcess } from '../helpers/examples.ts';
import { freePort } from '../helpers/processes.ts';
import type { TestServer } from '../helpers/server.ts';

// docs/examples/spa-oidc-client-ts: a single-page site with oidc-client-ts (a public
// client with PKCE) in Debian's chromium, two of them on two origins for single sign-on,
// same-site with the provider (127.0.0.1) for front-channel logout.

const TOOLS = { [process.env.CHROMIUM_PATH ?? '/usr/bin/chromium']: 'chromium' };

let server: TestServer;
let chromium: Browser | undefined;
const sites: ExampleProcess[] = [];
let a: string;
let b: string;
let enterpriseId: string;
let another: Awaited<ReturnType<typeof anotherWindowForChromium>>;
let apiIdentifier: string;

// A site of its own, which calls the window's API (apiIdentifier).
async function spaSite(windowId: number) {
  const port = await freePort();
  const origin = `http://127.0.0.1:${port}/`;
  const created = await createClient(server.db, {
    windowId,
    name: `单页应用 ${port}`,
    redirectUris: [origin],
    postLogoutRedirectUris: [origin],
    frontchannelLogoutUri: `${origin}frontchannel.html`,
    authMethod: 'none',
  });
  sites.push(await startExample(process.execPath, [`${EXAMPLES}/spa-oidc-client-ts/serve.js`], { ISSUER: server.url, CLIENT_ID: created.clientId, PORT: String(port), API_IDENTIFIER: apiIdentifier }, origin));
  return origin;
}

async function setUp() {
  requireTools(TOOLS);
  server = await startSameSiteServer();
  const { windowId, enterprise } = await setUpPerson(server);
  enterpriseId = enterprise.id;
  const { api, port } = await registerExampleApi(server, windowId);
  apiIdentifier = api.identifier;
  a = await spaSite(windowId);
  b = await spaSite(windowId);
  another = await anotherWindowForChromium(server, windowId);
  // The API lets the two sites' pages read its answers (CORS); their origins have no slash.
  sites.push(await startApiExample(server.url, apiIdentifier, port, { corsOrigins: [a, b].map((site) => new URL(site).origin) }));
  chromium = await launchChromium();
}

async function tearDown() {
  await chromium?.close();
  for (const site of sites) await site.stop();
  await another?.close();
  await server?.close();
}

const status = (page: Page) => page.locator('#status');

// What the page's "调用 API" button gets from the window's API.
async function callApi(page: Page) {
  const result = page.locator('#api');
  await page.evaluate(() => delete document.getElementById('api')!.dataset.status);
  await page.click('#orders');
  await expect.poll(() => result.getAttribute('data-status')).toBe('200');
  return JSON.parse((await result.textContent())!);
}

async function startSignIn(page: Page, site: string) {
  await page.goto(site);
  await page.click('#login');
  await page.waitForURL((url) => !url.href.startsWith(site) || url.searchParams.has('code'));
}

async function typePassword(page: Page, site: string) {
  await page.fill('#identifier', person.username);
  await page.fill('#password', person.password);
  await page.click('button[type=submit]:not(.secondary)');
  await page.waitForURL(site);
}

// Returns the URL of the provider's end-session request.
async function signOut(page: Page, site: string) {
  const answered = page.waitForResponse((res) => res.url().startsWith(`${server.url}/session/end?`));
  await page.click('#logout');
  const answer = await answered;
  // signoutRedirect sends the ID token of this session: the provider's page presses its
  // own button (no click from the person) and comes back.
  await page.waitForURL(site);
  return answer.url();
}

// Outside the describe block, so that under .ci/run a missing tool is a failed test, not
// skipped ones.
const present = toolsPresent(import.meta.filename, missingTools(TOOLS));
it.runIf(present)('has its tools installed', () => expect(missingTools(TOOLS)).toEqual([]));

describe.runIf(present)('a single-page site with oidc-client-ts, in chromium', () => {
  beforeAll(setUp);
  afterAll(tearDown);

  let page: Page;

  it('signs a person in with PKCE and shows their claims, the enterprise among them', async () => {
    page = await chinesePage(chromium!);
    await startSignIn(page, a);
    await typePassword(page, a);
    await expect.poll(() => status(page).textContent()).toBe('已登录');
    const claims = JSON.parse((await page.locator('#claims').textContent())!);
    expect(claims).toMatchObject({ name: person.displayName, phone_number: '+8613800138000', acr: 'urn:sme-passport:acr:password', amr: ['pwd'], enterprise: expectedEnterprise(enterpriseId) });
  });

  it('calls the window’s API with its access token, a JWT for it (the resource setting)', async () => {
    const sub = JSON.parse((await page.locator('#claims').textContent())!).sub;
    expect(await callApi(page)).toEqual({ caller: { sub, client_id: expect.any(String), scope: 'orders:read', enterprise_id: enterpriseId }, orders: [] });
  });

  it('refreshes its tokens with the refresh token of a public client', async () => {
    const tokenRequest = page.waitForRequest((req) => req.url() === `${server.url}/token` && (req.postData() ?? '').includes('grant_type=refresh_token'));
    await page.click('#refresh');
    expect((await (await tokenRequest).response())?.status()).toBe(200);
    await expect.poll(() => status(page).getAttribute('data-refreshed')).toBe('yes');
    expect(await status(page).textContent()).toBe('已登录');
    // The new access token is for the API again.
    expect((await callApi(page)).caller.scope).toBe('orders:read');
  });

  it('signs in at a second site without a password (single sign-on)', async () => {
    await page.goto(b);
    await page.click('#login');
    await page.waitForURL(b);
    await expect.poll(() => status(page).textContent()).toBe('已登录');
  });

  it('signs out through signoutRedirect (RP-initiated, with id_token_hint)', async () => {
    await page.goto(a);
    await expect.poll(() => status(page).textContent()).toBe('已登录');
    const endSession = new URL(await signOut(page, a));
    expect(endSession.searchParams.get('id_token_hint')).toEqual(expect.any(String));
    await expect.poll(() => status(page).textContent()).toBe('未登录');
    // The provider's session ended too: the next sign-in asks for the password.
    await startSignIn(page, a);
    await page.locator('#password').waitFor();
    expect(server.errors).toEqual([]);
  });

  it('forgets the person who signs out at another window in the same tab (front-channel)', async () => {
    await typePassword(page, a);
    await expect.poll(() => status(page).textContent()).toBe('已登录');
    const sid = (JSON.parse((await page.locator('#claims').textContent())!) as { sid: string }).sid;
    const framed = page.waitForResponse((res) => res.url().startsWith(`${a}frontchannel.html?`));
    await another.signOut(page);
    expect(Object.fromEntries(new URL((await framed).url()).searchParams)).toEqual({ iss: server.url, sid });
    await page.goto(a);
    await expect.poll(() => status(page).textContent()).toBe('未登录');
  });

  it('signs out its page open in another tab when the person signs out at another window (front-channel)', async () => {
    // Two tabs of one browser (one context: one cookie jar).
    const context = await chromium!.newContext({ locale: 'zh-CN' });
    try {
      const site = await context.newPage();
      await startSignIn(site, a);
      await typePassword(site, a);
      await expect.poll(() => status(site).textContent()).toBe('已登录');
      await another.signOut(await context.newPage());
      // Without a reload: the frame in the other tab told this one.
      await expect.poll(() => status(site).textContent()).toBe('未登录');
      expect(await site.locator('#claims').textContent()).toBe('');
      expect(server.errors).toEqual([]);
    } finally {
      await context.close();
    }
  });
});
