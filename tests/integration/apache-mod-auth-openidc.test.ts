import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createClient, updateClient } from '../../src/windows/clients.ts';
import { browser, type Browser } from '../helpers/browser.ts';
import { chinesePage, hasChromium, launchChromium } from '../helpers/chromium.ts';
import { anotherWindowForChromium, asksForPassword, exampleApi, EXAMPLES, expectedEnterprise, forgedLogoutTokens, missingTools, passThroughLogout, person, requireTools, toolsPresent, setUpPerson, startExample, startSameSiteServer, typePassword, type ExampleProcess } from '../helpers/examples.ts';
import { freePort } from '../helpers/processes.ts';
import type { TestServer } from '../helpers/server.ts';
import { eventually } from '../helpers/wait.ts';
import { windowSite, type WindowSite } from '../helpers/window-site.ts';

// docs/examples/apache/sme-passport.conf in Debian's Apache with its mod_auth_openidc, as
// an unprivileged foreground process with a configuration of its own in a temp dir.

const APACHE = '/usr/sbin/apache2';
const MODULES = '/usr/lib/apache2/modules';
// claims.cgi is a Python script.
const TOOLS = { [APACHE]: 'apache2', [`${MODULES}/mod_auth_openidc.so`]: 'libapache2-mod-auth-openidc', '/usr/bin/python3': 'python3' };

// Apache started by root would switch to a user of its own; the test runs it as nobody.
const asRoot = process.getuid?.() === 0;
const NOBODY = { uid: 65534, gid: 65534 };

let server: TestServer;
let apache: ExampleProcess | undefined;
let other: WindowSite;
let base: string;
let clientId: string;
let dir: string;
let enterpriseId: string;
let windowId: number;
let api: ExampleProcess | undefined;

function apacheConfig(port: number) {
  const site = path.join(dir, 'site');
  fs.mkdirSync(site);
  for (const file of ['sme-passport.conf', 'claims.cgi', 'orders.cgi', 'signed-out.html']) fs.copyFileSync(`${EXAMPLES}/apache/${file}`, path.join(site, file));
  for (const script of ['claims.cgi', 'orders.cgi']) fs.chmodSync(path.join(site, script), 0o755);
  const modules = ['mpm_prefork', 'authn_core', 'authz_core', 'authz_user', 'alias', 'cgi', 'env'].map((m) => `LoadModule ${m}_module ${MODULES}/mod_${m}.so`);
  fs.writeFileSync(
    path.join(dir, 'apache2.conf'),
    [
      `ServerRoot ${dir}`,
      'ServerName 127.0.0.1',
      `Listen 127.0.0.1:${port}`,
      `PidFile ${dir}/apache2.pid`,
      `DefaultRuntimeDir ${dir}`,
      `Mutex file:${dir} default`,
      `ErrorLog ${dir}/error.log`,
      'LogLevel warn auth_openidc:info',
      ...modules,
      `LoadModule auth_openidc_module ${MODULES}/mod_auth_openidc.so`,
      'StartServers 2',
      `DocumentRoot ${site}`,
      `Include ${site}/sme-passport.conf`,
      // The test's browser is Node's fetch, which always says Sec-Fetch-Mode: cors, where
      // mod_auth_openidc answers 401 instead of sending the person to sign in. A real
      // browser navigating says "navigate"; here only XMLHttpRequest is told apart.
      '<Location /protected/>',
      `    OIDCUnAuthAction 401 "%{HTTP:X-Requested-With} == 'XMLHttpRequest'"`,
      '</Location>',
    ].join('\n'),
  );
  if (asRoot) for (const p of [dir, site, ...fs.readdirSync(site).map((f) => path.join(site, f))]) fs.chownSync(p, NOBODY.uid, NOBODY.gid);
}

async function setUp() {
  requireTools(TOOLS);
  server = await startSameSiteServer();
  const given = await setUpPerson(server);
  windowId = given.windowId;
  enterpriseId = given.enterprise.id;
  const port = await freePort();
  base = `http://127.0.0.1:${port}`;
  const created = await createClient(server.db, {
    windowId,
    name: 'Apache 示例',
    redirectUris: [`${base}/protected/redirect_uri`],
    postLogoutRedirectUris: [`${base}/signed-out.html`],
    backchannelLogoutUri: `${base}/protected/redirect_uri?logout=backchannel`,
    frontchannelLogoutUri: `${base}/protected/redirect_uri?logout=get`,
  });
  clientId = created.clientId;
  other = await windowSite(server, { windowId, name: 'other-window' });
  const started = await exampleApi(server, windowId);
  api = started.process;
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sme-passport-apache-'));
  fs.chmodSync(dir, 0o755);
  apacheConfig(port);
  const env = { OIDC_ISSUER: server.url, OIDC_CLIENT_ID: created.clientId, OIDC_CLIENT_SECRET: created.clientSecret!, OIDC_PASSPHRASE: 'a-test-passphrase-of-32-characters!', SITE_URL: base, SITE_DIR: path.join(dir, 'site'), API_IDENTIFIER: started.api.identifier };
  try {
    apache = await startExample(APACHE, ['-DFOREGROUND', '-f', path.join(dir, 'apache2.conf')], env, `${base}/signed-out.html`, asRoot ? NOBODY : {});
  } catch (err) {
    throw new Error(`${(err as Error).message}\n${fs.existsSync(`${dir}/error.log`) ? fs.readFileSync(`${dir}/error.log`, 'utf8') : ''}`);
  }
}

async function tearDown() {
  await apache?.stop();
  await api?.stop();
  await other?.close();
  await server?.close();
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
}

const errorLog = () => fs.readFileSync(`${dir}/error.log`, 'utf8');

const claimsAt = async (you: Browser) => {
  const res = await you.fetch(`${base}/protected/claims`, { redirect: 'manual' });
  return res.status === 200 ? ((await res.json()) as { remote_user: string; claims: Record<string, string> }) : undefined;
};

const info = async (you: Browser) => (await (await you.fetch(`${base}/protected/redirect_uri?info=json`, { redirect: 'manual' })).json()) as { access_token: string };

// Outside the describe block, so that under .ci/run a missing tool is a failed test, not
// skipped ones.
const present = toolsPresent(import.meta.filename, missingTools(TOOLS));
it.runIf(present)('has its tools installed', () => expect(missingTools(TOOLS)).toEqual([]));

describe.runIf(present)('Apache with mod_auth_openidc', () => {
  beforeAll(setUp);
  afterAll(tearDown);

  it('signs a person in and passes the claims to the application, the enterprise among them', async () => {
    const you = browser();
    const at = await typePassword(you, await you.visit(`${base}/protected/claims`));
    expect(at.kind === 'page' && at.url.href, errorLog()).toBe(`${base}/protected/claims`);
    const seen = (await claimsAt(you))!;
    expect(seen.remote_user).toBe(person.username);
    expect(seen.claims).toMatchObject({ name: person.displayName, phone_number: '+8613800138000', email: person.email, acr: 'urn:sme-passport:acr:password', amr: 'pwd' });
    expect(JSON.parse(seen.claims.enterprise!)).toEqual(expectedEnterprise(enterpriseId));
  });

  it('refreshes the access token (its refresh hook)', async () => {
    const you = browser();
    await typePassword(you, await you.visit(`${base}/protected/claims`));
    const before = (await info(you)).access_token;
    const back = `${base}/signed-out.html`;
    const res = await you.fetch(`${base}/protected/redirect_uri?refresh=${encodeURIComponent(back)}&access_token=${encodeURIComponent(before)}`, { redirect: 'manual' });
    expect(res.headers.get('location'), errorLog()).toBe(back);
    expect((await info(you)).access_token).not.toBe(before);
  });

  it('calls the window’s API with its access token, a JWT for it (OIDCAuthRequestParams resource=), before and after a refresh', async () => {
    const you = browser();
    await typePassword(you, await you.visit(`${base}/protected/claims`));
    const sub = (await claimsAt(you))!.claims.sub;
    const expected = { caller: { sub, client_id: clientId, scope: 'orders:read', enterprise_id: enterpriseId }, orders: [] };
    const orders = async () => {
      const res = await you.fetch(`${base}/protected/orders`, { redirect: 'manual' });
      return [res.status, await res.text()];
    };
    expect(await orders(), errorLog()).toEqual([200, JSON.stringify(expected)]);
    const before = (await info(you)).access_token;
    const back = `${base}/signed-out.html`;
    await you.fetch(`${base}/protected/redirect_uri?refresh=${encodeURIComponent(back)}&access_token=${encodeURIComponent(before)}`, { redirect: 'manual' });
    expect((await info(you)).access_token).not.toBe(before);
    expect(await orders(), errorLog()).toEqual([200, JSON.stringify(expected)]);
    expect(api!.output()).not.toContain('Error');
  });

  it('signs in without a password after another window (single sign-on)', async () => {
    const you = browser();
    await other.signIn(you, { identifier: person.username, password: person.password });
    const at = await you.visit(`${base}/protected/claims`);
    expect(asksForPassword(at)).toBe(false);
    expect((await claimsAt(you))?.remote_user).toBe(person.username);
  });

  it('signs out through ?logout= (RP-initiated, with id_token_hint)', async () => {
    const you = browser();
    await typePassword(you, await you.visit(`${base}/protected/claims`));
    const back = `${base}/signed-out.html`;
    const toProvider = await you.visit(`${base}/protected/redirect_uri?logout=${encodeURIComponent(back)}`, server.url);
    expect(toProvider.kind === 'redirect' && toProvider.to.searchParams.get('id_token_hint')).toEqual(expect.any(String));
    const at = await passThroughLogout(you, await you.visit(toProvider.kind === 'redirect' ? toProvider.to : '', back), back);
    // The site registered a front-channel URI too: the provider's page frames it and goes
    // on by its script (in chromium below); here, its link.
    expect(at.kind === 'page' && at.html).toContain(`<a id="continue" href="${back}">`);
    expect(await claimsAt(you)).toBeUndefined();
    expect(asksForPassword(await you.visit(`${base}/protected/claims`))).toBe(true);
  });

  it('ends its session when the person signs out at another window (back-channel)', async () => {
    const you = browser();
    await typePassword(you, await you.visit(`${base}/protected/claims`));
    const { tokens } = await other.signIn(you, undefined);
    const end = new URL(`${server.url}/session/end`);
    end.search = new URLSearchParams({ id_token_hint: tokens.id_token!, post_logout_redirect_uri: other.postLogoutUri }).toString();
    await passThroughLogout(you, await you.visit(end, other.postLogoutUri), other.postLogoutUri);
    await eventually(async () => (await claimsAt(you)) === undefined);
    expect(server.errors).toEqual([]);
  });

  it.skipIf(!hasChromium)('ends its session when the person signs out at another window, in chromium (front-channel)', async () => {
    // Without its back-channel for this test: only the provider's page's frame can end it.
    await updateClient(server.db, clientId, { backchannelLogoutUri: null });
    const another = await anotherWindowForChromium(server, windowId);
    const chromium = await launchChromium();
    try {
      const page = await chinesePage(chromium);
      await page.goto(`${base}/protected/claims`);
      await page.fill('#identifier', person.username);
      await page.fill('#password', person.password);
      await page.click('button[type=submit]:not(.secondary)');
      await page.waitForURL(`${base}/protected/claims`);
      const sid = (JSON.parse(await page.evaluate(() => document.body.innerText)) as { claims: { sid: string } }).claims.sid;

      const framed = page.waitForResponse((res) => res.url().startsWith(`${base}/protected/redirect_uri?logout=get&`));
      await another.signOut(page);
      const frame = await framed;
      expect(Object.fromEntries(new URL(frame.url()).searchParams)).toEqual({ logout: 'get', iss: server.url, sid });
      expect(frame.status(), errorLog()).toBe(200);

      // Its protected page asks for sign-in again.
      await page.goto(`${base}/protected/claims`);
      await page.locator('#password').waitFor();
      expect(server.errors).toEqual([]);
    } finally {
      await chromium.close();
      await another.close();
      await updateClient(server.db, clientId, { backchannelLogoutUri: `${base}/protected/redirect_uri?logout=backchannel` });
    }
  });

  it('refuses a logout token that is not the provider’s, and keeps the session', async () => {
    const you = browser();
    await typePassword(you, await you.visit(`${base}/protected/claims`));
    const sid = (await claimsAt(you))!.claims.sid!;
    for (const token of await forgedLogoutTokens(server.url, clientId, sid)) {
      const res = await fetch(`${base}/protected/redirect_uri?logout=backchannel`, { method: 'POST', body: new URLSearchParams({ logout_token: token }) });
      expect(res.status).toBe(400);
    }
    expect((await claimsAt(you))?.claims.sid).toBe(sid);
  });
});
