import { generate } from 'otplib';
import * as oidc from 'openid-client';
import { createAccount, type Account } from '../../src/accounts/accounts.ts';
import { grantRole, type AdminRole } from '../../src/accounts/admin-roles.ts';
import { PASSWORD_POLICIES } from '../../src/accounts/password-policy.ts';
import { confirmEnrolment, startEnrolment } from '../../src/accounts/totp.ts';
import { ADMIN_CONSOLE_CLIENT_ID, adminConsoleSecret, adminConsoleUris } from '../../src/admin/console-client.ts';
import { ADMIN_API_PATH } from '../../src/admin/api/token.ts';
import { browser, type Browser, type Visit } from './browser.ts';
import type { TestServer } from './server.ts';

// Administrators for tests: a person with roles and an enrolled authenticator, and
// their access token for the admin API, got the way the console gets it (the code flow
// of the console's client, with password and TOTP at the provider's login).

export type TestAdmin = { account: Account; password: string; totpSecret: string };

// A test server, or any node: where it answers, its database and its master key.
type Target = Pick<TestServer, 'url' | 'db' | 'masterKey'>;

const PASSWORD = 'Zhongyuan-Admin-2014';
const now = () => Math.floor(Date.now() / 1000);

export async function makeAdmin(server: Pick<Target, 'db' | 'masterKey'>, username: string, roles: Array<{ role: AdminRole; windowId?: number }>): Promise<TestAdmin> {
  const account = await createAccount(server.db, { username, displayName: username, password: PASSWORD }, PASSWORD_POLICIES.mlps);
  for (const r of roles) await grantRole(server.db, { accountId: account.id, ...r });
  const masterKey = Buffer.from(server.masterKey, 'base64');
  const enrolment = await startEnrolment(masterKey, account);
  await confirmEnrolment(server.db, masterKey, account.id, enrolment.sealed, await generate({ secret: enrolment.secret }));
  return { account, password: PASSWORD, totpSecret: enrolment.secret };
}

// The enrolment used this time step's code; a sign-in uses the next one (each code
// counts once).
export async function signInAtProvider(b: Browser, start: Visit, admin: TestAdmin, stopAt: string): Promise<Visit> {
  const mfa = await b.submit(start, '/login', { identifier: admin.account.username, password: admin.password }, stopAt);
  return b.submit(mfa, '/mfa', { code: await generate({ secret: admin.totpSecret, epoch: now() + 30 }) }, stopAt);
}

export async function adminToken(server: Pick<Target, 'url' | 'masterKey'>, admin: TestAdmin): Promise<string> {
  const uris = adminConsoleUris(server.url);
  const config = await oidc.discovery(new URL(server.url), ADMIN_CONSOLE_CLIENT_ID, adminConsoleSecret(Buffer.from(server.masterKey, 'base64')), undefined, {
    execute: [oidc.allowInsecureRequests],
  });
  const verifier = oidc.randomPKCECodeVerifier();
  const state = oidc.randomState();
  const url = oidc.buildAuthorizationUrl(config, {
    redirect_uri: uris.redirect,
    scope: 'openid admin',
    code_challenge: await oidc.calculatePKCECodeChallenge(verifier),
    code_challenge_method: 'S256',
    state,
  });
  const b = browser();
  const back = await signInAtProvider(b, await b.visit(url, uris.redirect), admin, uris.redirect);
  if (back.kind !== 'redirect') throw new Error(`expected the way back to the console, got a page:\n${back.html.slice(0, 1500)}`);
  const tokens = await oidc.authorizationCodeGrant(config, back.to, { pkceCodeVerifier: verifier, expectedState: state });
  return tokens.access_token;
}

export type ApiAnswer = { status: number; body: any };

export async function api(server: Pick<Target, 'url'>, token: string | undefined, method: string, path: string, body?: unknown): Promise<ApiAnswer> {
  const res = await fetch(`${server.url}${ADMIN_API_PATH}${path}`, {
    method,
    headers: { ...(token && { authorization: `Bearer ${token}` }), ...(body !== undefined && { 'content-type': 'application/json' }) },
    ...(body !== undefined && { body: JSON.stringify(body) }),
  });
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) : undefined };
}
