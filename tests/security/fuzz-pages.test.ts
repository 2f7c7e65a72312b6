import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createAccount } from '../../src/accounts/accounts.ts';
import { PASSWORD_POLICIES } from '../../src/accounts/password-policy.ts';
import { createEnterprise } from '../../src/enterprises/enterprises.ts';
import { addMember } from '../../src/enterprises/memberships.ts';
import { completeUscc } from '../../src/enterprises/uscc.ts';
import { createClient } from '../../src/windows/clients.ts';
import { createApi } from '../../src/windows/apis.ts';
import { createWindow } from '../../src/windows/windows.ts';
import { makeAdmin, signInAtProvider } from '../helpers/admin.ts';
import { browser, formOf, type Browser, type Visit } from '../helpers/browser.ts';
import { formBody, fuzzOptions, fuzzRuns, hostileText, percentEncode, reflectsRaw, tally } from '../helpers/fuzz.ts';
import { changedTables, snapshot, type Snapshot } from '../helpers/rows.ts';
import { startTestServer, type TestServer } from '../helpers/server.ts';
import { windowSite, type WindowSite } from '../helpers/window-site.ts';

// Every form field, query field and path id of the pages: sign-in steps, registration,
// password reset, the account center and the admin console, as a browser sends them
// (cookies, CSRF token, urlencoded bodies with any bytes). Properties: never a 5xx,
// never a hostile value back raw in HTML, and a refused request (400) changes no row.

const RUNS = fuzzRuns(12);
const record = tally('pages');
// Rate-limit counters change with every request; the admin API's record of a refused
// change is on the audit trail by design.
const UNTOUCHED = ['rate_limits', 'audit_events'];
const PASSWORD = 'Shangqiu-Ancient-City-1';

let server: TestServer;
let site: WindowSite;
const ids = {} as Record<'window' | 'client' | 'api' | 'enterprise', string>;
const who = {} as Record<'visitor' | 'person' | 'admin' | 'auditor', { b: Browser; csrf: string }>;
let interaction: string;

type Target = {
  name: string;
  as: keyof typeof who;
  method: 'GET' | 'POST';
  // The path, with the fuzzed value when the target is a path id.
  path: (value: string) => string;
  // Form fields (POST) or query fields (GET), with their valid values.
  fields?: Record<string, string>;
  // Fresh valid values a case needs before it is sent (a one-time code).
  prepare?: () => Promise<Record<string, string>>;
};

const form = (name: string, as: Target['as'], path: string, fields: Record<string, string>): Target => ({ name, as, method: 'POST', path: () => path, fields });
const query = (name: string, as: Target['as'], path: string, fields: Record<string, string>): Target => ({ name, as, method: 'GET', path: () => path, fields });
const pathId = (name: string, as: Target['as'], method: Target['method'], path: (value: string) => string): Target => ({ name, as, method, path });

// Built once the server is up (ids are known then); expanded to one fuzz target per field.
const targets = (): Target[] => [
  form('sign-in', 'visitor', `/interaction/${interaction}/login`, { identifier: 'fuzz.person', password: 'not-the-password' }),
  form('expired password', 'visitor', `/interaction/${interaction}/password`, { identifier: 'fuzz.person', password: 'not-the-password', new_password: 'Brand-New-2026-x', confirm_password: 'Brand-New-2026-x' }),
  form('second factor', 'visitor', `/interaction/${interaction}/mfa`, { code: '123456' }),
  form('enrolment in sign-in', 'visitor', `/interaction/${interaction}/mfa-enrol`, { password: 'not-the-password', sealed: 'x', code: '123456' }),
  form('acting enterprise in sign-in', 'visitor', `/interaction/${interaction}/select`, { enterprise: '' }),
  pathId('interaction id', 'visitor', 'GET', (v) => `/interaction/${percentEncode(v)}`),
  pathId('interaction id (sign-in)', 'visitor', 'POST', (v) => `/interaction/${percentEncode(v)}/login`),
  query('authorization request', 'visitor', '/auth', {
    client_id: site.clientId,
    redirect_uri: site.redirectUri,
    response_type: 'code',
    scope: 'openid profile',
    state: 'state-1',
    nonce: 'nonce-1',
    code_challenge: 'E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM',
    code_challenge_method: 'S256',
    login_hint: 'fuzz.person',
    prompt: 'login',
  }),
  query('home', 'visitor', '/', { lang: 'en' }),
  form('registration code', 'visitor', '/register/code', { contact: 'fuzz.new@example.cn' }),
  form('registration', 'visitor', '/register', { contact: 'fuzz.new@example.cn', username: 'fuzz.new', name: '新人', password: PASSWORD, confirm_password: PASSWORD, code: '123456', interaction: '' }),
  // With a code that is right, so every other field reaches the account it would create.
  { ...form('registration with its code', 'visitor', '/register', { username: 'fuzz.new', name: '新人', password: PASSWORD, confirm_password: PASSWORD, interaction: '' }), prepare: registrationCode },
  query('registration page', 'visitor', '/register', { interaction: interaction }),
  form('reset code', 'visitor', '/reset/code', { contact: 'fuzz.person@example.cn' }),
  form('reset', 'visitor', '/reset', { contact: 'fuzz.person@example.cn', password: PASSWORD, confirm_password: PASSWORD, code: '123456' }),
  query('account center callback', 'visitor', '/account/callback', { state: 'x', error: 'access_denied' }),

  form('account name', 'person', '/account/profile', { name: '模糊测试人' }),
  form('account password', 'person', '/account/password', { password: PASSWORD, new_password: 'Zhoukou-Fuxi-Temple-2', confirm_password: 'Zhoukou-Fuxi-Temple-3' }),
  form('contact code', 'person', '/account/contact/code', { contact: 'fuzz.person.new@example.cn' }),
  form('contact', 'person', '/account/contact', { contact: 'fuzz.person.new@example.cn', code: '123456' }),
  form('authenticator enrolment', 'person', '/account/mfa', { password: 'not-the-password', sealed: 'x', code: '123456' }),
  form('acting enterprise', 'person', '/account/acting', { enterprise: ids.enterprise }),
  form('new enterprise', 'person', '/account/enterprises', { uscc: '', name: '模糊测试团队', type: 'team', region: '410100', industry: '软件' }),
  form('enterprise operator', 'person', `/account/enterprises/${ids.enterprise}/operators`, { identifier: 'nobody.here' }),
  pathId('session id', 'person', 'POST', (v) => `/account/sessions/${percentEncode(v)}/end`),
  pathId('grant id', 'person', 'POST', (v) => `/account/grants/${percentEncode(v)}/revoke`),
  pathId('enterprise id', 'person', 'GET', (v) => `/account/enterprises/${percentEncode(v)}`),
  pathId('operator id', 'person', 'POST', (v) => `/account/enterprises/${ids.enterprise}/operators/${percentEncode(v)}/remove`),

  form('console: new window', 'admin', '/admin/windows', { kind: 'service', name: '模糊机构', region: '', cluster: '', directlyAdministered: '' }),
  form('console: window', 'admin', `/admin/windows/${ids.window}`, { name: '模糊测试服务机构', region: '', cluster: '' }),
  form('console: new client', 'admin', `/admin/windows/${ids.window}/clients`, {
    name: 'rp',
    redirectUris: 'https://rp.example.cn/cb',
    postLogoutRedirectUris: '',
    grantTypes: 'authorization_code',
    scopes: 'openid',
    thirdParty: '',
    authMethod: 'client_secret_basic',
    backchannelLogoutUri: '',
    jwksUri: '',
    jwks: '',
  }),
  form('console: client', 'admin', `/admin/clients/${ids.client}`, { name: 'rp', redirectUris: 'https://rp.example.cn/cb', postLogoutRedirectUris: '', grantTypes: 'authorization_code', scopes: 'openid', authMethod: 'client_secret_basic', jwksUri: '', jwks: '' }),
  form('console: new API', 'admin', `/admin/windows/${ids.window}/apis`, { identifier: 'https://fuzz.example.cn/api', name: '模糊接口', scopes: 'fuzz:read fuzz:write', accessTokenTtlSeconds: '600', otherWindows: '', apiForm: 'new' }),
  form('console: API', 'admin', `/admin/apis/${ids.api}`, { name: '模糊接口', scopes: 'fuzz:read', accessTokenTtlSeconds: '900', otherWindows: 'on', apiForm: ids.api, windowId: ids.window }),
  pathId('console: API id', 'admin', 'POST', (v) => `/admin/apis/${percentEncode(v)}`),
  form('console: client secret', 'admin', `/admin/clients/${ids.client}/secret`, { graceHours: '1', confirm: 'yes' }),
  query('console: client secret confirmation', 'admin', `/admin/clients/${ids.client}/secret`, { graceHours: '1' }),
  form('console: enterprise status', 'admin', `/admin/enterprises/${ids.enterprise}/status`, { status: 'pending', windowId: ids.window }),
  form('console: grant', 'admin', '/admin/administrators/grants', { account: 'nobody.here', role: 'window_admin', windowId: ids.window }),
  form('console: revocation', 'admin', '/admin/administrators/revocations', { account: 'nobody.here', role: 'window_admin', windowId: ids.window, confirm: 'yes' }),
  query('console: revocation confirmation', 'admin', '/admin/administrators/revocations', { account: 'fuzz.admin', role: 'security_admin', windowId: '' }),
  query('console: account search', 'admin', '/admin/accounts', { q: 'fuzz.person' }),
  pathId('console: account id', 'admin', 'GET', (v) => `/admin/accounts/${percentEncode(v)}`),
  pathId('console: account id (disable)', 'admin', 'POST', (v) => `/admin/accounts/${percentEncode(v)}/disable`),
  form('console: key rotation', 'admin', '/admin/keys/rotations', { delaySeconds: '86400' }),
  query('console: figures', 'admin', '/admin/figures', { year: '2026' }),
  query('console: window figures', 'admin', `/admin/windows/${ids.window}/figures`, { year: '2026' }),
  pathId('console: window id', 'admin', 'GET', (v) => `/admin/windows/${percentEncode(v)}`),
  pathId('console: client id', 'admin', 'GET', (v) => `/admin/clients/${percentEncode(v)}`),
  pathId('console: key id', 'admin', 'POST', (v) => `/admin/keys/${percentEncode(v)}/retire`),
  pathId('console: key id (confirmation)', 'admin', 'GET', (v) => `/admin/keys/${percentEncode(v)}/retire`),
  query('console: audit trail', 'auditor', '/admin/audit', { event: 'sign_in', actor: 'cli:root', windowId: ids.window, outcome: 'success', limit: '5' }),
  query('console: audit export', 'auditor', '/admin/audit/export', { from: '2026-01-01', to: '2026-02-01', format: 'jsonl', event: 'sign_in', actor: 'cli:root', windowId: ids.window, outcome: 'success' }),
];

// A registration code for a new address, as the outbox has it, and a new username.
let registrations = 0;
async function registrationCode(): Promise<Record<string, string>> {
  const contact = `fuzz.new.${++registrations}@example.cn`;
  const sent = await send(form('registration code', 'visitor', '/register/code', { contact }), undefined, '');
  await sent.body?.cancel();
  const message = await server.db('outbox').where({ destination: contact }).orderBy('id', 'desc').first('body');
  return { contact, username: `fuzz.new${registrations}`, code: /(\d{6})/.exec(message?.body ?? '')?.[1] ?? '' };
}

// A page's CSRF token (pages with only GET forms have none).
const csrfOf = (v: Visit) => (v.kind === 'page' && v.html.includes('name="csrf"') ? (formOf(v.html, '').fields.csrf ?? '') : '');

async function send(t: Target, field: string | undefined, value: string, prepared: Record<string, string> = {}) {
  const { b, csrf } = who[t.as];
  const fields = { ...t.fields, ...prepared, ...(field && { [field]: value }) };
  const path = t.path(value);
  if (t.method === 'GET') {
    const search = t.fields ? formBody(fields) : '';
    return b.fetch(`${server.url}${path}${search ? `?${search}` : ''}`, { redirect: 'manual' });
  }
  return b.fetch(`${server.url}${path}`, {
    method: 'POST',
    redirect: 'manual',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: formBody({ csrf, ...fields }),
  });
}

beforeAll(async () => {
  server = await startTestServer({ SIGN_IN_RATE_LIMIT: '100000/60', CODE_RATE_LIMIT: '100000/60', REGISTER_RATE_LIMIT: '100000/60' });
  const window = await createWindow(server.db, { kind: 'service', name: '模糊测试服务机构' });
  ids.window = String(window.id);
  ids.client = (await createClient(server.db, { windowId: window.id, name: 'fuzzed', redirectUris: ['https://rp.example.cn/cb'] })).clientId;
  ids.api = String((await createApi(server.db, { windowId: window.id, identifier: 'https://fuzzed.example.cn/api', name: 'fuzzed', scopes: ['fuzz:read'] })).id);
  site = await windowSite(server, { windowId: window.id, name: 'fuzz-pages' });
  const person = await createAccount(server.db, { username: 'fuzz.person', displayName: '测试', email: 'fuzz.person@example.cn', password: PASSWORD }, PASSWORD_POLICIES.mlps);
  const enterprise = await createEnterprise(server.db, { uscc: completeUscc('9141010000077701'), name: '模糊测试公司', type: 'enterprise', region: '410100' });
  await addMember(server.db, { enterpriseId: enterprise.id, accountId: person.id, role: 'legal_rep' });
  ids.enterprise = enterprise.id;

  const visitor = browser();
  const { visit } = await site.authorize(visitor);
  interaction = visit.kind === 'page' ? visit.url.pathname.split('/')[2]! : '';
  who.visitor = { b: visitor, csrf: csrfOf(visit) };

  const personal = browser();
  await site.signIn(personal, { identifier: 'fuzz.person', password: PASSWORD });
  who.person = { b: personal, csrf: csrfOf(await personal.visit(`${server.url}/account`)) };

  for (const [name, roles] of [['admin', [{ role: 'system_admin' }, { role: 'security_admin' }]], ['auditor', [{ role: 'audit_admin' }]]] as const) {
    const b = browser();
    await signInAtProvider(b, await b.visit(`${server.url}/admin`), await makeAdmin(server, `fuzz.${name}`, [...roles]), '\0');
    who[name] = { b, csrf: csrfOf(await b.visit(`${server.url}/admin/${name === 'admin' ? 'windows' : 'audit'}`)) };
  }
});

afterAll(async () => {
  await site?.close();
  await server?.close();
});

describe('fuzzing the pages', () => {
  it('signed in everyone the targets need', () => {
    expect(interaction).toMatch(/^[\w-]{10,}$/);
    for (const w of [who.visitor, who.person, who.admin]) expect(w.csrf).not.toBe('');
  });

  // One target per field of each form and query, and one per path id.
  const cases = () => targets().flatMap((t) => (t.fields ? Object.keys(t.fields).map((f) => ({ t, field: f as string | undefined })) : [{ t, field: undefined }]));
  it('covers every field', () => expect(cases().length).toBeGreaterThan(80));

  // One test over every target (the targets need the server's ids), which tries them
  // all and then reports every failing one with its counterexample and seed.
  it('never answers 5xx, never reflects a value raw, and a refusal writes nothing, for any field of any page', { timeout: 900_000 }, async () => {
    const failures: string[] = [];
    for (const { t, field } of cases()) {
      const name = `${t.name}${field ? ` ${field}` : ''}`;
      let rows: Snapshot = await snapshot(server.db, UNTOUCHED);
      const details = await fc.check(
        fc.asyncProperty(hostileText(), async (value) => {
          const prepared = t.prepare ? await t.prepare() : {};
          if (t.prepare) rows = await snapshot(server.db, UNTOUCHED);
          const before = rows;
          const res = await send(t, field, value, prepared);
          const body = await res.text();
          record(name, res.status);
          if (res.status >= 500) throw new Error(`${t.method} answered ${res.status}`);
          if (res.headers.get('content-type')?.includes('html')) expect(reflectsRaw(body), 'a value came back raw').toBeUndefined();
          rows = await snapshot(server.db, UNTOUCHED);
          if (res.status === 400) expect(changedTables(before, rows), 'answered 400 but wrote').toEqual([]);
        }),
        fuzzOptions(name, RUNS),
      );
      if (details.failed) failures.push(`${name}: ${fc.defaultReportMessage(details)}`);
    }
    expect(failures).toEqual([]);
  });

  it('logged no failure while being fuzzed', () => {
    expect(server.errors).toEqual([]);
  });
});
