import { spawn } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import * as jose from 'jose';
import * as oidc from 'openid-client';
import type { Page } from 'playwright-core';
import { createAccount } from '../../src/accounts/accounts.ts';
import { PASSWORD_POLICIES } from '../../src/accounts/password-policy.ts';
import { createEnterprise } from '../../src/enterprises/enterprises.ts';
import { addMember } from '../../src/enterprises/memberships.ts';
import { createApi, type Api } from '../../src/windows/apis.ts';
import { listWindows } from '../../src/windows/windows.ts';
import { createClient } from '../../src/windows/clients.ts';
import type { Browser, Visit } from './browser.ts';
import { logoutReceiver } from './logout-receiver.ts';
import { freePort, ROOT } from './processes.ts';
import { startTestServer, type TestServer } from './server.ts';
import { eventually } from './wait.ts';
import { relyingParty, type WindowSite } from './window-site.ts';

// The guide's examples (docs/examples/) run as real processes, each a window site that a
// person signs in at. What every relying-party test needs: a person who acts for an
// enterprise, the example as a process that is always stopped, a tool that must exist.

export const EXAMPLES = `${ROOT}docs/examples`;

export const person = { username: 'li.hua', password: 'Central-Plains-2014', displayName: '李华', phone: '13800138000', email: 'li.hua@example.cn' };

export const expectedEnterprise = (id: string) => ({ id, uscc: '91410000170001401D', name: '宇通客车股份有限公司', type: 'enterprise', region: '410100', status: 'verified', role: 'legal_rep' });

// The provider on 127.0.0.1, as the example sites are: same-site with them (ports do not
// count), so the frames of its front-channel logout page carry the sites' cookies, as a
// browser does for passport.example.gov.cn and www.example.gov.cn (not for another domain).
export async function startSameSiteServer(): Promise<TestServer> {
  const port = await freePort();
  return startTestServer({ PORT: String(port), ISSUER: `http://127.0.0.1:${port}` });
}

// One person, a member of one enterprise (chosen for them without asking), and the
// window (Zhengzhou) whose clients the tests register.
export async function setUpPerson(server: TestServer) {
  const account = await createAccount(server.db, { username: person.username, displayName: person.displayName, password: person.password, phone: person.phone, email: person.email }, PASSWORD_POLICIES.mlps);
  const enterprise = await createEnterprise(server.db, { uscc: '91410000170001401D', name: '宇通客车股份有限公司', type: 'enterprise', region: '410100', status: 'verified' });
  await addMember(server.db, { enterpriseId: enterprise.id, accountId: account.id, role: 'legal_rep' });
  const windowId = (await listWindows(server.db)).find((w) => w.region === '410100')!.id;
  return { account, enterprise, windowId };
}

// A test's tools (apache2, python3 and its modules, chromium): files, each with its
// package. .ci/run installs them and sets REQUIRE_TEST_TOOLS=1: there a missing one fails
// the file's "has its tools installed" test and its set-up. On a machine without them
// `npm test` skips the files that need them (as the browser tests skip without
// chromium) and says what to install.
export const TOOLS_REQUIRED = process.env.REQUIRE_TEST_TOOLS === '1';

export function toolsPresent(file: string, missing: string[]): boolean {
  if (missing.length > 0 && !TOOLS_REQUIRED) console.warn(`${file} skipped: ${missing.join('; ')}`);
  return missing.length === 0 || TOOLS_REQUIRED;
}

export const missingTools = (tools: Record<string, string>): string[] =>
  Object.entries(tools)
    .filter(([file]) => !fs.existsSync(file))
    .map(([file, pkg]) => `${file} is missing: apt-get install ${pkg}`);

export function requireTools(tools: Record<string, string>) {
  const missing = missingTools(tools);
  if (missing.length > 0) throw new Error(missing.join('\n'));
}

export type ExampleProcess = { output: () => string; stop(): Promise<void> };

// Starts a command and waits until readyUrl answers. `as`: a user to run it as (uid, gid).
// In a process group of its own: Apache stopping signals its whole group, which would
// otherwise be the test runner's, and so every process of that user in it (another
// test's PgBouncer, run as nobody as well, went down that way).
export async function startExample(command: string, args: string[], env: Record<string, string>, readyUrl: string, as: { uid?: number; gid?: number } = {}): Promise<ExampleProcess> {
  const child = spawn(command, args, { cwd: ROOT, env: { PATH: process.env.PATH ?? '', LANG: 'C.UTF-8', ...env }, stdio: ['ignore', 'pipe', 'pipe'], detached: true, ...as });
  let output = '';
  child.stdout.on('data', (d) => (output += d));
  child.stderr.on('data', (d) => (output += d));
  const closed = new Promise<void>((resolve) => child.once('close', () => resolve()));
  let exited = false;
  child.once('exit', () => (exited = true));
  const example: ExampleProcess = {
    output: () => output,
    stop: () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      return closed;
    },
  };
  try {
    await eventually(async () => {
      if (exited) throw new Error(`${command} exited with ${child.exitCode}:\n${output}`);
      return fetch(readyUrl, { redirect: 'manual' }).then(
        () => true,
        () => false,
      );
    });
  } catch (err) {
    await example.stop();
    throw new Error(`${command} did not start: ${(err as Error).message}\n${output}`);
  }
  return example;
}

// docs/examples/api-jose/server.js as a process: the window's API (scopes orders:read
// and orders:write) that a site calls with its access token. Its identifier is its own
// address. `clockAheadSeconds`: the process's clock runs that much ahead
// (tests/helpers/clock-ahead.ts); `corsOrigins`: the single-page sites that call it.
export async function startApiExample(issuer: string, identifier: string, port: number, options: { clockAheadSeconds?: number; corsOrigins?: string[] } = {}): Promise<ExampleProcess> {
  const { clockAheadSeconds, corsOrigins } = options;
  const env = {
    ISSUER: issuer,
    API_IDENTIFIER: identifier,
    PORT: String(port),
    ...(clockAheadSeconds && { CLOCK_AHEAD_SECONDS: String(clockAheadSeconds) }),
    ...(corsOrigins && { CORS_ORIGINS: corsOrigins.join(' ') }),
  };
  const preload = clockAheadSeconds ? ['--import', `${ROOT}tests/helpers/clock-ahead.ts`] : [];
  return startExample(process.execPath, [...preload, `${EXAMPLES}/api-jose/server.js`], env, `http://127.0.0.1:${port}/`);
}

// The API registered for a window, on a port of its own (not yet listening).
export async function registerExampleApi(server: TestServer, windowId: number, options: { accessTokenTtlSeconds?: number } = {}): Promise<{ api: Api; port: number }> {
  const port = await freePort();
  const api = await createApi(server.db, { windowId, identifier: `http://127.0.0.1:${port}`, name: '订单服务', scopes: ['orders:read', 'orders:write'], ...options });
  return { api, port };
}

// The API registered for a window and running.
export async function exampleApi(server: TestServer, windowId: number, options: { accessTokenTtlSeconds?: number } = {}): Promise<{ api: Api; process: ExampleProcess }> {
  const { api, port } = await registerExampleApi(server, windowId, options);
  return { api, process: await startApiExample(server.url, api.identifier, port) };
}

// The provider's sign-out page for a site that sent the ID token of this session: it
// must be the one that submits itself (no question to the person); this presses its
// button as its script does in a browser.
export async function passThroughLogout(you: Browser, at: Visit, stopAt: string): Promise<Visit> {
  if (at.kind !== 'page' || !at.html.includes('data-auto-submit')) throw new Error(`expected the self-submitting sign-out page, got ${at.kind === 'page' ? `a page (${at.status}):\n${at.html.slice(0, 1500)}` : `a redirect to ${at.to.href}`}`);
  return you.submit(at, '/session/end/confirm', { logout: 'yes' }, stopAt);
}

// The person, signed in at a site in this browser, signs in at another window (single
// sign-on) and signs out there, with that window's ID token: the provider's session ends.
export async function signOutAtAnotherWindow(server: Pick<TestServer, 'url'>, you: Browser, other: WindowSite): Promise<void> {
  const { tokens } = await other.signIn(you, undefined);
  const end = new URL(`${server.url}/session/end`);
  end.search = new URLSearchParams({ id_token_hint: tokens.id_token!, post_logout_redirect_uri: other.postLogoutUri }).toString();
  await passThroughLogout(you, await you.visit(end, other.postLogoutUri), other.postLogoutUri);
}

// Another window for chromium, whose addresses answer (a logout receiver): in chromium
// the provider's sign-out page loads the front-channel logout URIs in its frames.
export async function anotherWindowForChromium(server: Pick<TestServer, 'url' | 'db'>, windowId: number) {
  const site = await logoutReceiver();
  const redirectUri = `${site.origin}/callback`;
  const postLogoutUri = `${site.origin}/signed-out`;
  const created = await createClient(server.db, { windowId, name: 'another window', redirectUris: [redirectUri], postLogoutRedirectUris: [postLogoutUri] });
  const rp = await relyingParty(server, { clientId: created.clientId, clientSecret: created.clientSecret, redirectUri });
  return {
    // The person, signed in at a site in this page, signs in here (single sign-on) and
    // signs out with this window's ID token.
    async signOut(page: Page): Promise<void> {
      const checks = { pkceCodeVerifier: oidc.randomPKCECodeVerifier(), expectedState: oidc.randomState(), expectedNonce: oidc.randomNonce() };
      const authorize = oidc.buildAuthorizationUrl(rp.config, {
        redirect_uri: redirectUri,
        scope: 'openid',
        code_challenge: await oidc.calculatePKCECodeChallenge(checks.pkceCodeVerifier),
        code_challenge_method: 'S256',
        state: checks.expectedState,
        nonce: checks.expectedNonce,
      });
      await page.goto(authorize.href);
      await page.waitForURL(`${redirectUri}?**`);
      const tokens = await oidc.authorizationCodeGrant(rp.config, new URL(page.url()), checks);
      const end = new URL(`${server.url}/session/end`);
      end.search = new URLSearchParams({ id_token_hint: tokens.id_token!, post_logout_redirect_uri: postLogoutUri }).toString();
      // The ID token of this session: the sign-out page confirms itself, shows its frames, then goes on.
      await page.goto(end.href);
      await page.waitForURL(postLogoutUri);
    },
    close: () => site.close(),
  };
}

export const asksForPassword = (at: Visit) => at.kind === 'page' && at.html.includes('name="password"');

// The password step of the provider's login page, ending where `stopAt` begins.
export async function typePassword(you: Browser, at: Visit, stopAt = '\0'): Promise<Visit> {
  if (!asksForPassword(at)) throw new Error(`expected the login page, got ${at.kind === 'page' ? `a page (${at.status}):\n${at.html.slice(0, 1500)}` : `a redirect to ${at.to.href}`}`);
  return you.submit(at, '/login', { identifier: person.username, password: person.password }, stopAt);
}

// Logout tokens a site must refuse, for a real sid and audience: one signed with a key
// that is not the provider's, and the same claims unsigned (alg none).
export async function forgedLogoutTokens(issuer: string, audience: string, sid: string): Promise<string[]> {
  const key = (await jose.generateKeyPair('RS256')).privateKey;
  const forged = await new jose.SignJWT({ sid, events: { 'http://schemas.openid.net/event/backchannel-logout': {} } })
    .setProtectedHeader({ alg: 'RS256', typ: 'logout+jwt' })
    .setIssuer(issuer)
    .setAudience(audience)
    .setIssuedAt()
    .setJti(crypto.randomUUID())
    .sign(key);
  const unsigned = `${jose.base64url.encode(JSON.stringify({ alg: 'none', typ: 'logout+jwt' }))}.${forged.split('.')[1]}.`;
  return [forged, unsigned];
}
