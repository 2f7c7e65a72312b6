import type Router from '@koa/router';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApp } from '../../src/app.ts';
import { loadConfig } from '../../src/config.ts';
import { ADMIN_API_PATH } from '../../src/admin/api/token.ts';
import { createEnterprise, type Enterprise } from '../../src/enterprises/enterprises.ts';
import { addMember } from '../../src/enterprises/memberships.ts';
import { createAccount } from '../../src/accounts/accounts.ts';
import { PASSWORD_POLICIES } from '../../src/accounts/password-policy.ts';
import { listKeys, loadKeys } from '../../src/oidc/keys.ts';
import { listWindows } from '../../src/windows/windows.ts';
import { createApi } from '../../src/windows/apis.ts';
import { makeAdmin, signInAtProvider, type TestAdmin } from '../helpers/admin.ts';
import { browser, type Browser, type Visit } from '../helpers/browser.ts';
import { startTestServer, type TestServer } from '../helpers/server.ts';
import { windowSite, type WindowSite } from '../helpers/window-site.ts';

// Every POST route of our own pages, without a CSRF token and with a valid token of
// another browser (another csrf cookie): 403, and nothing changed. The list is read from
// the routers the app mounts (src/app.ts), so a new POST route that skips the check
// fails here. Out of this list: the JSON admin API (Bearer tokens, no cookies, so no
// CSRF), the provider's own endpoints (oidc-provider's, mounted as one app; its forms
// carry their own xsrf token), and the demo sites' back-channel receiver
// (server-to-server, only with DEMO=true).

let server: TestServer;
let site: WindowSite;
let admin: TestAdmin;
let you: Browser;
let other: Browser;
let enterprise: Enterprise;
let values: Record<string, string>;
const password = 'Erqi-Memorial-Tower-1971';

const asPage = (v: Visit) => {
  if (v.kind !== 'page') throw new Error(`expected a page, got a redirect to ${v.to.href}`);
  return v;
};
const csrfOf = (html: string) => /name="csrf" value="([^"]+)"/.exec(html)![1]!;

// The routers src/app.ts mounts, as koa-router marks its middleware; the admin API's is
// left out (see above).
async function pageRouters(): Promise<Router[]> {
  const masterKey = Buffer.from(server.masterKey, 'base64');
  const config = loadConfig({ NODE_ENV: 'test', PORT: '0', MASTER_KEY: server.masterKey, DEMO: 'false' });
  const { app } = createApp({
    issuer: server.url,
    db: server.db,
    keys: await loadKeys(server.db, masterKey),
    trustProxy: false,
    security: config.security,
    masterKey,
    selfUrl: server.url,
    keyRotationDelaySeconds: 0,
    messages: { codeKey: Buffer.alloc(32), sender: { send: async () => {}, channels: new Set() } },
    outboxPage: true,
    logger: { error: () => {}, info: () => {} },
    production: false,
    development: false,
    metricsToken: undefined,
  });
  const routers = app.middleware.map((m) => (m as { router?: Router }).router).filter((r): r is Router => r !== undefined);
  return [...new Set(routers)].filter((r) => r.opts.prefix !== ADMIN_API_PATH);
}

const routes = (routers: Router[]) =>
  routers.flatMap((r) => r.stack.filter((layer) => layer.methods.length > 0).map((layer) => ({ methods: layer.methods, path: String(layer.path) })));

// A concrete path for a route: real ids, so a route that skipped the check would act.
const concrete = (path: string) => path.replace(/:(\w+)/g, (_m, name: string) => values[name] ?? `no-value-for-${name}`);

// Everything a page's POST could change (not rate-limit counters, which count the refused request too).
async function snapshot() {
  const tables = ['accounts', 'acting_enterprises', 'admin_roles', 'clients', 'enterprises', 'keys', 'memberships', 'outbox', 'password_history', 'recovery_codes', 'totp_factors', 'verification_codes', 'window_apis', 'windows'];
  const rows: Record<string, unknown[]> = {};
  for (const table of tables) rows[table] = await server.db(table).select('*').orderByRaw('1');
  rows.artifacts = await server.db('oidc_artifacts').whereIn('model', ['Session', 'Grant', 'AccessToken', 'RefreshToken', 'AuthorizationCode', 'Interaction']).orderBy('id').select('model', 'id', 'consumed_at');
  rows.audit = await server.db('audit_events').whereNot({ event: 'sign_in' }).orderBy('id').select('id');
  return rows;
}

beforeAll(async () => {
  server = await startTestServer({ SIGN_IN_RATE_LIMIT: '10000/60', REGISTER_RATE_LIMIT: '10000/60', CODE_RATE_LIMIT: '10000/60' });
  const windows = await listWindows(server.db);
  site = await windowSite(server, { windowId: windows[0]!.id, name: 'csrf' });
  admin = await makeAdmin(server, 'csrf.admin', [{ role: 'system_admin' }]);
  enterprise = await createEnterprise(server.db, { name: '郑州防伪科技有限公司', type: 'team', region: '410100' });
  await addMember(server.db, { enterpriseId: enterprise.id, accountId: admin.account.id, role: 'legal_rep' });
  const operator = await createAccount(server.db, { username: 'csrf.operator', displayName: '操作员', password }, PASSWORD_POLICIES.mlps);
  await addMember(server.db, { enterpriseId: enterprise.id, accountId: operator.id, role: 'operator' });

  // This browser: signed in to the console (and so at the provider and the account
  // center), with an interaction open.
  you = browser();
  const home = asPage(await signInAtProvider(you, await you.visit(`${server.url}/admin`), admin, '\0'));
  expect(home.url.pathname).toBe('/admin');
  const { visit } = await site.authorize(you, { prompt: 'login' });
  const uid = /\/interaction\/([^/?]+)/.exec(asPage(visit).url.pathname)![1]!;
  const client = await server.db('clients').where({ window_id: windows[0]!.id }).first('client_id');
  const [key] = await listKeys(server.db);
  values = {
    uid,
    windowId: String(windows[0]!.id),
    clientId: client.client_id,
    kid: key!.kid,
    id: enterprise.id,
    enterpriseId: enterprise.id,
    accountId: operator.id,
    apiId: String((await createApi(server.db, { windowId: windows[0]!.id, identifier: 'https://csrf.example.cn/api', name: 'csrf', scopes: ['csrf:read'] })).id),
  };

  // Another browser, with a csrf cookie and token of its own.
  other = browser();
  expect(csrfOf(asPage(await other.visit(`${server.url}/register`)).html)).not.toBe(csrfOf(home.html));
});

afterAll(async () => {
  await server?.close();
});

// What each route would be sent if the form were genuine.
const FIELDS: Record<string, string> = {
  identifier: 'csrf.operator',
  password,
  new_password: 'Another-Strong-Pass-2026',
  confirm_password: 'Another-Strong-Pass-2026',
  name: 'forged',
  contact: '13800000000',
  code: '123456',
  enterprise: '',
  kind: 'comprehensive',
  status: 'verified',
  role: 'audit_admin',
  account: 'csrf.operator',
};

describe('CSRF on every POST route of our pages', () => {
  it('finds the POST routes of every page router, and no PUT, PATCH or DELETE among them', async () => {
    const all = routes(await pageRouters());
    const posts = all.filter((r) => r.methods.includes('POST')).map((r) => r.path);
    for (const prefix of ['/interaction/:uid', '/account/', '/register', '/reset', '/admin/']) expect(posts.some((p) => p.startsWith(prefix)), prefix).toBe(true);
    expect(posts).toContain('/admin/logout');
    expect(all.filter((r) => r.methods.some((m) => ['PUT', 'PATCH', 'DELETE'].includes(m)))).toEqual([]);
  });

  it('refuses each of them without a token and with another browser’s token: 403, nothing changed', async () => {
    const posts = routes(await pageRouters()).filter((r) => r.methods.includes('POST'));
    expect(posts.length).toBeGreaterThan(30);
    const foreign = csrfOf(asPage(await other.visit(`${server.url}/reset`)).html);
    const answers: Array<{ path: string; token: string; status: number }> = [];
    const before = await snapshot();
    for (const route of posts) {
      const path = concrete(route.path);
      expect(path).not.toContain('no-value-for-');
      for (const [token, extra] of [['none', {}], ['foreign', { csrf: foreign }]] as const) {
        const res = await you.fetch(`${server.url}${path}`, {
          method: 'POST',
          redirect: 'manual',
          headers: { 'content-type': 'application/x-www-form-urlencoded' },
          body: new URLSearchParams({ ...FIELDS, ...extra }),
        });
        await res.body?.cancel();
        answers.push({ path: route.path, token, status: res.status });
      }
    }
    expect(answers.filter((a) => a.status !== 403)).toEqual([]);
    expect(await snapshot()).toEqual(before);
    // The browser is still signed in: nothing above ended its session either.
    const still = await you.fetch(`${server.url}/admin`, { redirect: 'manual' });
    expect(still.status).toBe(200);
    await still.body?.cancel();
    expect(server.errors).toEqual([]);
  });
});
