import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'csv-parse/sync';
import { appendEvent, recordEvent, type AuditEvent } from '../src/audit/trail.ts';
import { openPostgres, type Db } from '../src/db/connect.ts';
import { migrate } from '../src/db/migrate.ts';
import { EXPORT_COLUMNS } from '../src/audit/export.ts';
import { expectRefused, runCliInProcess } from './helpers/cli-in-process.ts';
import { onPostgres, testDatabase, type TestDatabase } from './helpers/database.ts';
import { ROOT, type CliResult } from './helpers/processes.ts';

// `sme-passport audit verify | export | purge` as an operator runs them, in this process
// on the test's database (tests/helpers/cli-in-process.ts); on PostgreSQL also under
// the database roles the README prescribes.

let database: TestDatabase;
let db: Db;
let dataDir: string;
const cli = (args: string[], env: Record<string, string> = {}) => runCliInProcess(db, args, { dir: dataDir, env });

const refused = expectRefused;
const json = (r: CliResult) => {
  expect({ code: r.code, stderr: r.stderr }).toEqual({ code: 0, stderr: '' });
  return JSON.parse(r.stdout);
};

const DAY = 86_400_000;
const daysAgo = (days: number) => new Date(Date.now() - days * DAY);
const event = (i: number, windowId: number | null = null): AuditEvent => ({
  actor: { type: 'account', id: `account-${i % 3}` },
  ip: '10.1.2.3',
  windowId,
  event: i % 2 ? 'sign_in' : 'account.locked',
  outcome: i % 4 ? 'success' : 'failure',
  after: { n: i },
});
const ids = (rows: Array<{ id: unknown }>) => rows.map((r) => Number(r.id));

beforeAll(async () => {
  dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'sme-passport-audit-cli-'));
  database = await testDatabase();
  db = database.db;
  expect((await cli(['migrate'])).code).toBe(0);
  // Six records past any retention, four of 200 days ago, three of today.
  for (let i = 0; i < 6; i++) await appendEvent(db, event(i), daysAgo(400 - i));
  for (let i = 6; i < 10; i++) await appendEvent(db, event(i, i % 2 ? 7 : 8), daysAgo(200));
  for (let i = 10; i < 13; i++) await recordEvent(db, event(i));
});

afterAll(async () => {
  await database?.close();
  fs.rmSync(dataDir, { recursive: true, force: true });
});

describe('sme-passport audit', () => {
  it('verifies an intact trail, and names the first record that was changed', async () => {
    const all = await db('audit_events').orderBy('id');
    expect(json(await cli(['audit', 'verify', '--json']))).toEqual({ ok: true, count: 13, first_id: Number(all[0].id), last_id: Number(all[12].id), head: all[12].hash, anchor: null });
    const human = await cli(['audit', 'verify']);
    expect(human.code).toBe(0);
    expect(human.stdout).toMatch(new RegExp(`^the audit trail is intact: 13 records .*from the start\\nlast hash: ${all[12].hash}\\n$`));

    const victim = all[4];
    const tamper = async (reason: string | null) => {
      await db.raw('ALTER TABLE audit_events DISABLE TRIGGER audit_events_no_update');
      await db('audit_events').where('id', victim.id).update({ reason });
      await db.raw('ALTER TABLE audit_events ENABLE TRIGGER audit_events_no_update');
    };
    await tamper('nothing happened');
    try {
      refused(await cli(['audit', 'verify']), new RegExp(`^error: the audit trail is broken: record ${victim.id} has been changed: its content does not match its hash \\(4 records before it are intact\\)`));
      const broken = await cli(['audit', 'verify', '--json']);
      expect({ code: broken.code, stderr: broken.stderr }).toEqual({ code: 1, stderr: '' });
      expect(JSON.parse(broken.stdout)).toMatchObject({ ok: false, id: Number(victim.id), problem: 'content', checked: 4 });
    } finally {
      await tamper(victim.reason);
    }
    expect(json(await cli(['audit', 'verify', '--json'])).ok).toBe(true);
  });

  it('exports exactly the records asked for, as JSON lines or CSV, and puts the export on record', async () => {
    const from = daysAgo(210).toISOString();
    const to = daysAgo(100).toISOString();
    const expected = await db('audit_events').where('at', '>=', from).andWhere('at', '<', to).orderBy('id');
    expect(expected).toHaveLength(4);

    const lines = (r: CliResult) => {
      expect({ code: r.code, stderr: r.stderr }).toEqual({ code: 0, stderr: '' });
      return r.stdout.split('\n').filter(Boolean).map((l) => JSON.parse(l));
    };
    expect(ids(lines(await cli(['audit', 'export', '--from', from, '--to', to, '--format', 'jsonl'])))).toEqual(ids(expected));
    expect(ids(lines(await cli(['audit', 'export', '--from', from, '--to', to, '--format', 'jsonl', '--window', '7'])))).toEqual(ids(expected.filter((r) => r.window_id === 7)));
    const filtered = expected.filter((r) => r.actor_id === 'account-0' && r.event === 'sign_in');
    expect(filtered.length).toBeGreaterThan(0);
    expect(ids(lines(await cli(['audit', 'export', '--from', from, '--to', to, '--format', 'jsonl', '--actor', 'account-0', '--event', 'sign_in'])))).toEqual(ids(filtered));
    const failures = expected.filter((r) => r.outcome === 'failure');
    expect(ids(lines(await cli(['audit', 'export', '--from', from, '--to', to, '--format', 'jsonl', '--outcome', 'failure'])))).toEqual(ids(failures));

    const file = path.join(dataDir, 'export.csv');
    const written = await cli(['audit', 'export', '--from', from, '--to', to, '--output', file]);
    expect(written).toEqual({ code: 0, stdout: `wrote 4 records to ${file}\n`, stderr: '' });
    const [header, ...rows] = parse(fs.readFileSync(file, 'utf8')) as string[][];
    expect(header).toEqual([...EXPORT_COLUMNS]);
    expect(rows.map((r) => Number(r[0]))).toEqual(ids(expected));
    expect(rows.map((r) => JSON.parse(r[12]!))).toEqual(expected.map((r) => r.after));

    const recorded = await db('audit_events').where('event', 'audit.export').orderBy('id');
    expect(recorded).toHaveLength(5);
    expect(recorded.at(-1)).toMatchObject({ actor_type: 'system', actor_id: `cli:${os.userInfo().username}`, after: { format: 'csv', count: 4, file } });
  });

  it('refuses bad flags, naming the flag', async () => {
    const ok = ['--from', '2026-01-01', '--to', '2026-02-01'];
    const exp = (...args: string[]) => cli(['audit', 'export', ...args]);
    refused(await exp('--from', '2026-02-30', '--to', '2026-03-01'), /^error: --from: "2026-02-30" is not a date \(YYYY-MM-DD\)/);
    refused(await exp('--from', '2026-02-01', '--to', 'tomorrow'), /^error: --to: "tomorrow" is not a date/);
    refused(await exp('--from', '2026-02-01', '--to', '2026-01-01'), /^error: --to: must be later than from/);
    refused(await exp(...ok, '--window', 'abc'), /^error: --window: must be a window id/);
    refused(await exp(...ok, '--outcome', 'maybe'), /^error: --outcome: must be success or failure/);
    refused(await exp(...ok, '--format', 'xml'), /^error: --format: "xml" must be csv or jsonl/);
    refused(await exp(...ok, '--event', ''), /^error: --event: must be an event type/);
    refused(await exp(...ok, '--output', path.join(dataDir, 'no', 'such', 'dir.csv')), /^error: --output: cannot write .*dir\.csv \(ENOENT\)/);
    const missing = await exp('--to', '2026-02-01');
    expect(missing.code).toBe(2);
    expect(missing.stderr).toMatch(/required option '--from <date>' not specified/);
    refused(await cli(['audit', 'purge', '--before', 'last year']), /^error: --before: "last year" is not a date/);
  });

  it('purges only past the retention, exporting first, and the trail still verifies', async () => {
    const before = await db('audit_events').orderBy('id');
    refused(await cli(['audit', 'purge', '--before', daysAgo(150).toISOString()]), /^error: --before: must be no later than .*: records are kept 180 days \(AUDIT_RETENTION_DAYS\)/);
    refused(await cli(['audit', 'purge', '--before', daysAgo(300).toISOString()], { AUDIT_RETENTION_DAYS: '400' }), /--before: .*kept 400 days/);
    refused(await cli(['audit', 'purge', '--before', daysAgo(300).toISOString()], { AUDIT_RETENTION_DAYS: '90' }), /^error: AUDIT_RETENTION_DAYS: must be at least 180 \(days\)/, 2);
    const existing = path.join(dataDir, 'existing.jsonl');
    fs.writeFileSync(existing, 'keep me\n');
    refused(await cli(['audit', 'purge', '--before', daysAgo(300).toISOString(), '--export', existing]), /^error: --export: cannot write .*existing\.jsonl: it exists already/);
    expect(fs.readFileSync(existing, 'utf8')).toBe('keep me\n');
    expect(ids(await db('audit_events').orderBy('id'))).toEqual(ids(before));

    const file = path.join(dataDir, 'purged.jsonl');
    const purged = json(await cli(['audit', 'purge', '--before', daysAgo(300).toISOString(), '--export', file, '--json']));
    expect(purged).toEqual({ purged: 6, anchor: { id: expect.any(Number), last_event_id: Number(before[5].id), last_hash: before[5].hash }, export: file });
    expect(fs.readFileSync(file, 'utf8').trim().split('\n').map((l) => JSON.parse(l).id)).toEqual(ids(before.slice(0, 6)));
    expect((fs.statSync(file).mode & 0o777).toString(8)).toBe('600');

    const verified = json(await cli(['audit', 'verify', '--json']));
    expect(verified).toMatchObject({ ok: true, first_id: Number(before[6].id), anchor: { id: purged.anchor.id, last_event_id: Number(before[5].id), count: 6 } });
    expect((await cli(['audit', 'verify'])).stdout).toMatch(/intact: \d+ records .*after the purge anchor \d+ \(records up to \d+ purged\)/);
    expect((await cli(['audit', 'purge', '--before', daysAgo(300).toISOString()])).stdout).toMatch(/^no record is older than .*: nothing purged\n$/);
  });
});

// The README's statements, run as written: the server's role appends records but can
// change or delete none; the audit role verifies, exports and purges, and reads nothing else.
describe.skipIf(!onPostgres())('the database roles of the README', () => {
  it('gives the server SELECT and INSERT on the trail only, and the audit role the trail only', async () => {
    const suffix = crypto.randomBytes(4).toString('hex');
    const server = `sme_srv_${suffix}`;
    const audit = `sme_aud_${suffix}`;
    const section = fs.readFileSync(path.join(ROOT, 'README.md'), 'utf8').split('## Audit trail')[1]!;
    const sql = /```sql\n([\s\S]*?)```/.exec(section)![1]!;
    const statements = sql
      .split('\n')
      .filter((l) => !l.startsWith('--'))
      .join('\n')
      .replace(/\bsme_passport(_audit)?\b/g, (_m, a) => (a ? audit : server))
      .split(';')
      .map((s) => s.trim())
      .filter(Boolean);
    expect(statements.length).toBeGreaterThan(5);
    const urlAs = (role: string) => {
      const url = new URL(database.url!);
      url.username = role;
      url.password = 'role-test-password';
      return url.href;
    };
    await db.raw(`CREATE ROLE ${server} LOGIN PASSWORD 'role-test-password'`);
    await db.raw(`CREATE ROLE ${audit} LOGIN PASSWORD 'role-test-password'`);
    const asServer = openPostgres(urlAs(server), 2);
    const asAudit = openPostgres(urlAs(audit), 2);
    try {
      for (const s of statements) await db.raw(s);

      expect(await migrate(asServer)).toEqual([]);
      await recordEvent(asServer.db, event(1));
      await expect(asServer.db('audit_events').update({ reason: 'x' })).rejects.toThrow(/permission denied/);
      await expect(asServer.db('audit_events').delete()).rejects.toThrow(/permission denied/);
      await expect(asServer.db.raw('TRUNCATE audit_events')).rejects.toThrow(/permission denied/);
      await expect(asServer.db('audit_anchors').insert({ purged_before: new Date(), last_event_id: 1, last_hash: '0'.repeat(64), count: 0, by: 'x' })).rejects.toThrow(/permission denied/);
      expect(await asServer.db('accounts').count()).toHaveLength(1);

      await expect(asAudit.db('accounts').count()).rejects.toThrow(/permission denied/);
      await expect(asAudit.db('audit_events').update({ reason: 'x' })).rejects.toThrow(/permission denied/);
      // The commands on the audit role's connection, as with DATABASE_URL naming that role.
      const asAuditCli = (args: string[]) => runCliInProcess(asAudit.db, args, { dir: dataDir });
      await appendEvent(db, event(50), daysAgo(250));
      expect(json(await asAuditCli(['audit', 'verify', '--json'])).ok).toBe(true);
      expect((await asAuditCli(['audit', 'export', '--from', daysAgo(1000).toISOString(), '--to', daysAgo(100).toISOString(), '--format', 'jsonl'])).code).toBe(0);
      expect(json(await asAuditCli(['audit', 'purge', '--before', daysAgo(190).toISOString(), '--json'])).purged).toBeGreaterThan(0);
      const anchor = await db('audit_anchors').orderBy('id', 'desc').first();
      expect(anchor.db_role).toBe(audit);
      expect(json(await asAuditCli(['audit', 'verify', '--json'])).ok).toBe(true);
    } finally {
      await asServer.close();
      await asAudit.close();
      await db.raw(`DROP OWNED BY ${server}, ${audit}`);
      await db.raw(`DROP ROLE ${server}`);
      await db.raw(`DROP ROLE ${audit}`);
    }
  });
});
