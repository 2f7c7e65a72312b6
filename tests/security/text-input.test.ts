import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createAccount } from '../../src/accounts/accounts.ts';
import { PASSWORD_POLICIES } from '../../src/accounts/password-policy.ts';
import { listWindows, type Window } from '../../src/windows/windows.ts';
import { adminToken, api, makeAdmin } from '../helpers/admin.ts';
import { browser, type Browser, type Visit } from '../helpers/browser.ts';
import { runCliInProcess } from '../helpers/cli-in-process.ts';
import { changedTables, snapshot } from '../helpers/rows.ts';
import { startTestServer, type TestServer } from '../helpers/server.ts';
import { windowSite, type WindowSite } from '../helpers/window-site.ts';

// Text PostgreSQL cannot store (NUL), control characters and broken UTF-16, wherever
// they come in: a 4xx that names the field, nothing written, nothing logged as a failure.

let server: TestServer;
let site: WindowSite;
let zhengzhou: Window;
let systemToken: string;
let auditToken: string;
let clientId: string;
const password = 'Anyang-Oracle-Bones-1899';
const NUL = 'a\u0000b';
// The rate-limit counters change with every request, and an admin API refusal of a
// change is itself put on record; nothing else may change.
const UNTOUCHED = ['rate_limits', 'audit_events'];

const alert = (v: Visit) => (v.kind === 'page' ? /role="alert">([^<]*)</.exec(v.html)?.[1] : undefined);
const statusOf = (v: Visit) => (v.kind === 'page' ? v.status : 0);

async function writesNothing<T>(work: () => Promise<T>): Promise<T> {
  const before = await snapshot(server.db, UNTOUCHED);
  const result = await work();
  expect(changedTables(before, await snapshot(server.db, UNTOUCHED))).toEqual([]);
  return result;
}

let person: Browser;

beforeAll(async () => {
  server = await startTestServer({ SIGN_IN_RATE_LIMIT: '1000/60' });
  zhengzhou = (await listWindows(server.db)).find((w) => w.region === '410100')!;
  site = await windowSite(server, { windowId: zhengzhou.id, name: 'text-input' });
  clientId = site.clientId;
  await createAccount(server.db, { username: 'lu.xun', displayName: '鲁迅', password }, PASSWORD_POLICIES.mlps);
  person = browser();
  await site.signIn(person, { identifier: 'lu.xun', password });
  systemToken = await adminToken(server, await makeAdmin(server, 'system.text', [{ role: 'system_admin' }, { role: 'security_admin' }]));
  auditToken = await adminToken(server, await makeAdmin(server, 'audit.text', [{ role: 'audit_admin' }]));
});

afterAll(async () => {
  await site?.close();
  await server?.close();
});

describe('text that PostgreSQL or a person cannot take', () => {
  it('answers a NUL byte in the sign-in identifier (no sign-in needed) with a 400 naming the field, and writes nothing', async () => {
    const b = browser();
    const { visit } = await site.authorize(b);
    const answer = await writesNothing(() => b.submit(visit, '/login', { identifier: NUL, password: 'whatever-it-is' }));
    expect(statusOf(answer)).toBe(400);
    expect(alert(answer)).toMatch(/^账号：不能含有控制字符/);
  });

  it('refuses a NUL byte in the account center name with a 400 naming the field, and changes nothing', async () => {
    const page = await person.visit(`${server.url}/account`);
    const answer = await writesNothing(() => person.submit(page, '/account/profile', { name: NUL }));
    expect(statusOf(answer)).toBe(400);
    expect(alert(answer)).toMatch(/^姓名：不能含有控制字符/);
  });

  it('refuses a NUL byte in a new enterprise’s name or industry with a 400 naming the field, and writes nothing', async () => {
    const page = await person.visit(`${server.url}/account/enterprises/new`);
    const fields = { uscc: '', type: 'team', region: '410100', name: '郑州创业团队', industry: '软件' };
    const labels = { name: '名称', industry: '行业' };
    for (const [field, value] of [['name', NUL], ['industry', NUL], ['name', 'team\u202Eevil']] as const) {
      const answer = await writesNothing(() => person.submit(page, '/account/enterprises', { ...fields, [field]: value }));
      expect(statusOf(answer)).toBe(400);
      expect(alert(answer)).toMatch(new RegExp(`^${labels[field]}：不能含有`));
    }
  });

  it('refuses a NUL byte or a lone surrogate in admin API bodies, queries and ids with a 400 naming the field, and writes nothing', async () => {
    const cases: Array<[token: string, method: string, path: string, body: unknown, field: string]> = [
      [systemToken, 'POST', '/windows', { kind: 'service', name: NUL }, 'name'],
      [systemToken, 'POST', '/windows', { kind: 'service', name: 'x\uD800y' }, 'name'],
      [systemToken, 'PATCH', `/windows/${zhengzhou.id}`, { name: NUL }, 'name'],
      [systemToken, 'POST', `/windows/${zhengzhou.id}/clients`, { name: NUL, redirectUris: ['https://rp.example.cn/cb'] }, 'name'],
      [systemToken, 'POST', `/windows/${zhengzhou.id}/clients`, { name: 'rp', redirectUris: ['https://rp.example.cn/cb\u0000'] }, 'redirectUris.0'],
      [systemToken, 'PATCH', `/clients/${clientId}`, { redirectUris: ['https://rp.example.cn/\u0000'] }, 'redirectUris.0'],
      [systemToken, 'GET', `/accounts?q=${encodeURIComponent(NUL)}`, undefined, 'q'],
      [systemToken, 'GET', `/clients/${encodeURIComponent(NUL)}`, undefined, 'clientId'],
      [systemToken, 'POST', `/keys/${encodeURIComponent(NUL)}/retire`, undefined, 'kid'],
      [systemToken, 'POST', '/administrators/grants', { account: NUL, role: 'window_admin', windowId: zhengzhou.id }, 'account'],
      [auditToken, 'GET', `/audit/events?actor=${encodeURIComponent(NUL)}`, undefined, 'actor'],
      [auditToken, 'GET', `/audit/export?from=2026-01-01&to=2026-02-01&event=${encodeURIComponent(NUL)}`, undefined, 'event'],
    ];
    for (const [token, method, path, body, field] of cases) {
      const answer = await writesNothing(() => api(server, token, method, path, body));
      expect({ method, path, status: answer.status, field: answer.body?.fields?.[0]?.field }).toEqual({ method, path, status: 400, field });
    }
  });

  it('answers a NUL byte in OpenID Connect parameters (nonce, login hint, code) with the error the protocol gives, and writes nothing', async () => {
    const b = browser();
    for (const params of [{ nonce: NUL }, { login_hint: NUL }] as Array<Record<string, string>>) {
      const { visit } = await writesNothing(() => site.authorize(b, params));
      expect(visit.kind).toBe('redirect');
      const back = visit.kind === 'redirect' ? visit.to.searchParams : new URLSearchParams();
      expect({ error: back.get('error'), description: back.get('error_description') }).toEqual({ error: 'invalid_request', description: expect.stringMatching(/must not contain control characters/) });
    }
    const token = await writesNothing(() =>
      fetch(`${server.url}/token`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: `Basic ${Buffer.from(`${site.clientId}:${site.clientSecret ?? ""}`).toString('base64')}` },
        body: `grant_type=authorization_code&code=a%00b&redirect_uri=${encodeURIComponent(site.redirectUri)}&code_verifier=${'x'.repeat(43)}`,
      }),
    );
    expect({ status: token.status, error: (await token.json()).error }).toEqual({ status: 400, error: 'invalid_grant' });
  });

  it('refuses a NUL byte in a command-line flag with exit code 1, naming the flag, and writes nothing', async () => {
    const cases: Array<[argv: string[], flag: string]> = [
      [['window', 'create', '--kind', 'service', '--name', NUL], '--name'],
      [['enterprise', 'find', NUL], '<query>'],
      [['enterprise', 'create', '--type', 'team', '--region', '410100', '--name', '团队', '--industry', NUL], '--industry'],
      [['account', 'enable', NUL], '<id-or-username>'],
      [['admin', 'grant', '--account', NUL, '--role', 'security_admin'], '--account'],
      [['keys', 'retire', '--kid', NUL], '--kid'],
      [['client', 'create', '--window', String(zhengzhou.id), '--name', 'rp', '--redirect-uri', `https://rp.example.cn/${NUL}`], '--redirect-uri'],
    ];
    for (const [argv, flag] of cases) {
      const { code, stdout, stderr } = await writesNothing(() => runCliInProcess(server.db, argv, { dir: server.dataDir }));
      expect({ argv, code, stdout }).toEqual({ argv, code: 1, stdout: '' });
      expect(stderr).toMatch(new RegExp(`^error: ${flag}: must not contain control characters`));
    }
  });

  it('logged no failure while refusing all of this', () => {
    expect(server.errors).toEqual([]);
  });
});

