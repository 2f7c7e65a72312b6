import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { signInWithPassword } from '../src/accounts/accounts.ts';
import { rolesOf } from '../src/accounts/admin-roles.ts';
import { PASSWORD_POLICIES } from '../src/accounts/password-policy.ts';
import type { Db } from '../src/db/connect.ts';
import { listWindows } from '../src/windows/windows.ts';
import { browser, type Visit } from './helpers/browser.ts';
import { expectRefused, runCliInProcess } from './helpers/cli-in-process.ts';
import { onPostgres, testDatabase, type TestDatabase } from './helpers/database.ts';
import { runCli, startNode } from './helpers/processes.ts';
import { startTestServer, type TestServer } from './helpers/server.ts';
import { eventually } from './helpers/wait.ts';
import { windowSite } from './helpers/window-site.ts';

// `sme-passport admin bootstrap`: the province's first three administrators, one per
// duty, each with a one-time password that opens one sign-in, where the person sets
// their own password and enrols an authenticator.

let server: TestServer;
let fresh: TestDatabase;
let dir: string;

const rules = { lockout: { threshold: 1000, seconds: 60 }, passwords: PASSWORD_POLICIES.asvs };
const provinceRoles = async (db: Db) => db('admin_roles').whereIn('role', ['system_admin', 'security_admin', 'audit_admin']).orderBy('id').select('role');
const accounts = async (db: Db) => Number((await db('accounts').count({ n: '*' }))[0]!.n);

const refused = expectRefused;

beforeAll(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sme-passport-bootstrap-'));
  server = await startTestServer();
  fresh = await testDatabase();
});

afterAll(async () => {
  await server?.close();
  await fresh?.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

describe('sme-passport admin bootstrap', () => {
  const cli = (db: Db, args: string[]) => runCliInProcess(db, ['admin', 'bootstrap', ...args], { dir });

  it('refuses bad flags, naming the flag, and writes nothing', async () => {
    const db = fresh.db;
    const before = await accounts(db);
    const trail = Number((await db('audit_events').count({ n: '*' }))[0]!.n);
    for (const bad of ['__proto__', '<script>', 'x'.repeat(300), 'x'.repeat(5000), '1abc', 'a\u0000b', 'ab', '13800138000', 'a@b.cn']) {
      refused(await cli(db, ['--security-admin', bad]), /^error: --security-admin: /);
    }
    refused(await cli(db, ['--security-admin', 'constructor', '--system-admin-phone', '12345']), /^error: --system-admin-phone: must be a mainland mobile number/);
    refused(await cli(db, ['--audit-admin-email', 'not-an-email']), /^error: --audit-admin-email: must be an email address/);
    refused(await cli(db, ['--system-admin-name', '']), /^error: --system-admin-name: must not be empty/);
    refused(await cli(db, ['--security-admin-name', '<script>\u202e']), /^error: --security-admin-name: must not contain text direction overrides/);
    refused(await cli(db, ['--system-admin', 'same.person', '--audit-admin', 'Same.Person']), /^error: --audit-admin: is the username of the system_admin as well/);
    refused(await cli(db, ['--security-admin', 'sysadmin']), /^error: --security-admin: is the username of the system_admin as well/);
    // An existing account's username: refused inside the transaction, nothing kept.
    await db('accounts').insert({ username: 'taken.name', display_name: '已有', password_hash: 'x' });
    refused(await cli(db, ['--audit-admin', 'taken.name']), /^error: --audit-admin: is already used by another account; nothing was created/);
    expect(await accounts(db)).toBe(before + 1);
    expect(await provinceRoles(db)).toEqual([]);
    expect(Number((await db('audit_events').count({ n: '*' }))[0]!.n)).toBe(trail);
    expect((await runCliInProcess(db, ['admin', 'bootstrap', '--password', 'x'], { dir })).code).toBe(2);
  });

  it('two bootstraps at once make one set; the other is refused', async () => {
    const db = fresh.db;
    const [a, b] = await Promise.all([cli(db, ['--json']), cli(db, ['--system-admin', 'other.sys', '--security-admin', 'other.sec', '--audit-admin', 'other.audit', '--json'])]);
    expect([a.code, b.code].sort()).toEqual([0, 1]);
    const lost = a.code === 1 ? a : b;
    refused(lost, /^error: the province has administrators already \(.*system_admin.*\); nothing was created/);
    expect((await provinceRoles(db)).map((r) => r.role)).toEqual(['system_admin', 'security_admin', 'audit_admin']);
  });

  let made: Array<{ role: string; id: string; username: string; one_time_password: string }>;

  it('creates the three administrators, one account each, with the right roles, on record', async () => {
    const r = await cli(server.db, ['--system-admin', 'sys.wang', '--security-admin', 'constructor', '--security-admin-name', '安全管理员李', '--security-admin-phone', '13900000001', '--audit-admin-email', 'Audit@Example.CN', '--json']);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    made = JSON.parse(r.stdout).administrators;
    expect(made.map((m) => [m.role, m.username])).toEqual([
      ['system_admin', 'sys.wang'],
      ['security_admin', 'constructor'],
      ['audit_admin', 'auditadmin'],
    ]);
    expect(new Set(made.map((m) => m.one_time_password)).size).toBe(3);
    for (const m of made) {
      expect(m.one_time_password).toMatch(/^[A-Za-z2-9]{5}(-[A-Za-z2-9]{5}){3}$/);
      expect(await rolesOf(server.db, m.id)).toEqual([{ role: m.role, windowId: null }]);
      const row = await server.db('accounts').where({ id: m.id }).first();
      expect(row.password_must_change).toBe(true);
      expect(JSON.stringify(row)).not.toContain(m.one_time_password);
    }
    const sec = await server.db('accounts').where({ username: 'constructor' }).first();
    expect([sec.display_name, sec.phone]).toEqual(['安全管理员李', '13900000001']);
    expect((await server.db('accounts').where({ username: 'auditadmin' }).first()).email).toBe('audit@example.cn');
    const events = await server.db('audit_events').whereIn('target', made.map((m) => `account:${m.id}`)).orderBy('id').select('event', 'actor_type', 'reason');
    expect(events.map((e) => e.event)).toEqual(['account.created', 'admin.grantRole', 'account.created', 'admin.grantRole', 'account.created', 'admin.grantRole']);
    expect(events.every((e) => e.actor_type === 'system' && e.reason === 'bootstrap')).toBe(true);
    expect(JSON.stringify(await server.db('audit_events').select('*'))).not.toContain(made[0]!.one_time_password);
  });

  it('says in words what it made, once, and is refused when run again', async () => {
    const again = await cli(server.db, []);
    refused(again, /^error: the province has administrators already \(sys\.wang: system_admin, constructor: security_admin, auditadmin: audit_admin\); nothing was created/);
    const db = await testDatabase();
    try {
      const human = await cli(db.db, []);
      expect(human.code).toBe(0);
      expect(human.stdout).toMatch(/^created the province administrators/);
      expect(human.stdout).toMatch(/system_admin\tsysadmin\tone-time password: \S+/);
      expect(human.stdout).toMatch(/sets their own password and enrols an authenticator app/);
    } finally {
      await db.close();
    }
  });

  it('the one-time password opens one sign-in, which asks for the person’s own password, then enrolment of an authenticator', async () => {
    const [w] = await listWindows(server.db);
    const site = await windowSite(server, { windowId: w!.id, name: 'bootstrap-site' });
    const sys = made.find((m) => m.role === 'system_admin')!;
    const you = browser();
    const { visit } = await site.authorize(you);
    const change = await you.submit(visit, '/login', { identifier: sys.username, password: sys.one_time_password }, site.redirectUri);
    const page = (v: Visit) => (v.kind === 'page' ? v.html : `redirect to ${v.to.href}`);
    expect(page(change)).toContain('一次性密码');
    expect(page(change)).toContain('name="new_password"');
    const own = 'Songshan-Peak-1440';
    const enrol = await you.submit(change, '/password', { password: sys.one_time_password, new_password: own, confirm_password: own }, site.redirectUri);
    expect(page(enrol)).toContain('/mfa-enrol');
    expect((await server.db('accounts').where({ id: sys.id }).first()).password_must_change).toBe(false);
    expect(await server.db('audit_events').where({ event: 'password.changed', target: `account:${sys.id}` }).pluck('reason')).toEqual(['one_time']);

    // Used once: the one-time password opens nothing any more; the person's own does,
    // without asking for another change.
    expect((await signInWithPassword(server.db, sys.username, sys.one_time_password, rules)).outcome).toBe('failed');
    const mine = await signInWithPassword(server.db, sys.username, own, rules);
    expect(mine.outcome === 'signed-in' && mine.passwordChange).toBeUndefined();
    // Not changed yet: the others' still ask.
    const other = made.find((m) => m.role === 'audit_admin')!;
    const theirs = await signInWithPassword(server.db, other.username, other.one_time_password, rules);
    expect(theirs.outcome === 'signed-in' && theirs.passwordChange).toBe('one_time');
    expect(server.errors).toEqual([]);
  });
});

// Two starts of a server as its own process: a few minutes on a busy machine.
describe('the start-up hint', { timeout: 300_000 }, () => {
  it('tells to run admin bootstrap while there is no administrator, and nothing once there are', async () => {
    const held = fs.mkdtempSync(path.join(os.tmpdir(), 'sme-passport-hint-'));
    // On PostgreSQL a database of its own; otherwise the embedded one in DATA_DIR, which
    // the running server holds (the command is relayed to it).
    const own = onPostgres() ? await testDatabase() : undefined;
    const env = { DATA_DIR: held, ...(own && { DATABASE_URL: own.url! }) };
    const hint = /no administrator yet: run `npx sme-passport admin bootstrap`/;
    try {
      const first = await startNode({ ...env, PORT: '0' });
      try {
        await eventually(async () => hint.test(first.output()));
        expect(first.output()).not.toMatch(/admin grant/);
        const made = await runCli(['admin', 'bootstrap', '--json'], env);
        expect(made.stderr).toBe('');
        expect(JSON.parse(made.stdout).administrators).toHaveLength(3);
      } finally {
        await first.stop();
      }
      const second = await startNode({ ...env, PORT: '0' });
      try {
        await eventually(async () => /probes: /.test(second.output()));
        expect(second.output()).toMatch(/admin console: /);
        expect(second.output()).not.toMatch(hint);
      } finally {
        await second.stop();
      }
    } finally {
      await own?.close();
      fs.rmSync(held, { recursive: true, force: true });
    }
  });
});
