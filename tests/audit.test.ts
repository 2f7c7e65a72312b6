import { spawn } from 'node:child_process';
import { Writable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'csv-parse/sync';
import { chainedFields, chainedText, chainHash, GENESIS } from '../src/audit/chain.ts';
import { exportEvents, exportFilterSchema, EXPORT_COLUMNS, type ExportFilter, type ExportFormat } from '../src/audit/export.ts';
import { auditRetentionDays, purgeTrail } from '../src/audit/retention.ts';
import { appendEvent, listEvents, recordEvent, setAuditTrail, type Alongside, type AuditEvent } from '../src/audit/trail.ts';
import { verifyTrail } from '../src/audit/verify.ts';
import { openPostgres, type Db } from '../src/db/connect.ts';
import { ConfigError } from '../src/config.ts';
import { InputError, parseInput } from '../src/errors.ts';
import { onPostgres, testDatabase, type TestDatabase } from './helpers/database.ts';
import { ROOT } from './helpers/processes.ts';
import { eventually } from './helpers/wait.ts';
import { failuresCleared } from '../src/accounts/lockout.ts';
import { statementsOf } from './helpers/statements.ts';

// The audit trail as the law wants it: every record chained to the one before, so any
// change, insertion or deletion is found; kept for the retention, then purged only
// from the oldest end, leaving an anchor; exported exactly.

const DAY = 86_400_000;
const daysAgo = (days: number) => new Date(Date.now() - days * DAY);
const person = (i: number): AuditEvent => ({
  actor: { type: 'account', id: `account-${i}` },
  ip: `10.0.0.${i % 250}`,
  event: 'sign_in',
  outcome: i % 3 ? 'success' : 'failure',
  after: { clientId: 'zhengzhou-site', n: i },
});

const count = async (db: Db, table = 'audit_events') => Number((await db(table).count({ n: '*' }))[0]!.n);
const rowsOf = (db: Db) => db('audit_events').orderBy('id');

// What an attacker with the database superuser can do: switch the trigger off.
async function asSuperuser(db: Db, work: () => Promise<unknown>): Promise<void> {
  await db.raw('ALTER TABLE audit_events DISABLE TRIGGER audit_events_no_update');
  try {
    await work();
  } finally {
    await db.raw('ALTER TABLE audit_events ENABLE TRIGGER audit_events_no_update');
  }
}

const rowInsert = (row: Record<string, any>) => ({ ...row, before: row.before === null ? null : JSON.stringify(row.before), after: row.after === null ? null : JSON.stringify(row.after) });

describe('the hash chain', () => {
  let database: TestDatabase;
  let db: Db;
  beforeAll(async () => {
    database = await testDatabase();
    db = database.db;
  });
  afterAll(async () => {
    await database?.close();
  });

  it('chains every record, concurrent appends in one line', async () => {
    expect(await verifyTrail(db)).toEqual({ ok: true, count: 0, firstId: null, lastId: null, head: GENESIS, anchor: null });
    for (let i = 1; i <= 20; i++) await recordEvent(db, person(i));
    // At once, from three nodes (each its own pool, on PostgreSQL), and in callers'
    // transactions (each its own connection).
    const others = onPostgres() ? [openPostgres(database.url!, 4), openPostgres(database.url!, 4)] : [];
    try {
      const nodes = [db, ...others.map((o) => o.db)];
      await Promise.all([
        ...Array.from({ length: 25 }, (_, i) => recordEvent(nodes[i % nodes.length]!, person(100 + i))),
        ...Array.from({ length: 5 }, (_, i) => nodes[i % nodes.length]!.transaction((trx) => recordEvent(trx, person(200 + i)))),
      ]);
    } finally {
      for (const o of others) await o.close();
    }
    // Values whose stored form differs from what was given are hashed as stored.
    await recordEvent(db, {
      actor: { type: 'system', id: 'odd\u0000values' },
      enterpriseId: 'A0EEBC999C0B4EF8BB6D6BB9BD380A11',
      windowId: 7,
      event: 'admin.updateWindow',
      outcome: 'success',
      reason: 'lone \ud800 surrogate',
      before: { z: 1, a: [0.1 + 0.2, 1e21, -0, 'x'], when: new Date('2026-01-01T00:00:00Z'), gone: undefined },
      after: '名称',
    });

    const rows = await rowsOf(db);
    expect(rows).toHaveLength(51);
    expect(rows[0].prev_hash).toBe(GENESIS);
    for (let i = 1; i < rows.length; i++) expect(rows[i].prev_hash).toBe(rows[i - 1].hash);
    expect(rows.at(-1)).toMatchObject({ enterprise_id: 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', actor_id: 'odd\uFFFDvalues', before: { when: '2026-01-01T00:00:00.000Z' } });
    expect(await verifyTrail(db, { pageSize: 7 })).toEqual({ ok: true, count: 51, firstId: Number(rows[0].id), lastId: Number(rows.at(-1).id), head: rows.at(-1).hash, anchor: null });
    // The admin API's listing still reads it, newest first.
    expect((await listEvents(db, { limit: 2 })).map((e) => e.id)).toEqual([Number(rows[50].id), Number(rows[49].id)]);
  });

  it('fails only the record the database refuses among those written together', async () => {
    const results = await Promise.allSettled([
      recordEvent(db, person(400)),
      recordEvent(db, { ...person(401), enterpriseId: 'not-an-enterprise-id' }),
      recordEvent(db, person(402)),
    ]);
    expect(results.map((r) => r.status)).toEqual(['fulfilled', 'rejected', 'fulfilled']);
    expect(await count(db)).toBe(53);
    expect(await verifyTrail(db)).toMatchObject({ ok: true, count: 53 });
  });

  it('writes nothing with the trail switched off (AUDIT_TRAIL=off, for the benchmark only)', async () => {
    setAuditTrail(false);
    try {
      await recordEvent(db, person(500));
      await Promise.all([recordEvent(db, person(501)), recordEvent(db, person(502))]);
      await db.transaction((trx) => recordEvent(trx, person(503)));
    } finally {
      setAuditTrail(true);
    }
    expect(await count(db)).toBe(53);
    expect(await verifyTrail(db)).toMatchObject({ ok: true, count: 53 });
  });

  it('refuses any UPDATE or TRUNCATE of records, and any change of anchors', async () => {
    await expect(db('audit_events').update({ reason: 'hidden' })).rejects.toThrow(/UPDATE of audit_events: audit records are never changed/);
    await expect(db('audit_events').where('id', -1).update({ reason: 'hidden' })).rejects.toThrow(/never changed/);
    await expect(db.raw('TRUNCATE audit_events')).rejects.toThrow(/TRUNCATE of audit_events/);
    await expect(db('audit_anchors').delete()).rejects.toThrow(/DELETE of audit_anchors/);
    expect(await count(db)).toBe(53);
  });

  it('names a record whose content was changed, and the one after a record rewritten with a new hash', async () => {
    const [, , target, next] = await rowsOf(db);
    await asSuperuser(db, () => db('audit_events').where('id', target.id).update({ outcome: 'success', actor_ip: '192.0.2.1' }));
    expect(await verifyTrail(db, { pageSize: 2 })).toMatchObject({ ok: false, count: 2, id: Number(target.id), problem: 'content', message: expect.stringMatching(/^record \d+ has been changed/) });

    const forged = { ...chainedFields(target), outcome: 'success', actor_ip: '192.0.2.1' };
    await asSuperuser(db, () => db('audit_events').where('id', target.id).update({ hash: chainHash(target.prev_hash, forged), at: forged.at }));
    expect(await verifyTrail(db)).toMatchObject({ ok: false, id: Number(next.id), problem: 'link', message: expect.stringMatching(/does not follow record \d+/) });

    await asSuperuser(db, () => db('audit_events').where('id', target.id).update({ outcome: target.outcome, actor_ip: target.actor_ip, hash: target.hash }));
    expect(await verifyTrail(db)).toMatchObject({ ok: true, count: 53 });
  });

  it('names the record after one inserted in the middle', async () => {
    // A rolled-back append leaves a free id, where a forgery can go.
    await db.transaction(async (trx) => {
      await recordEvent(trx, person(300));
      trx.rollback(new Error('changed my mind'));
    }).catch(() => undefined);
    const [gap] = await db.raw("SELECT last_value AS id FROM audit_events_id_seq").then((r: { rows: Array<{ id: string }> }) => r.rows);
    await recordEvent(db, person(301));
    const before = (await rowsOf(db)).at(-2);
    const after = (await rowsOf(db)).at(-1);
    const fields = chainedFields({ ...before, actor_id: 'account-forged', at: new Date() });
    const forged = { id: Number(gap!.id), ...fields, prev_hash: before.hash, hash: chainHash(before.hash, fields) };
    await db('audit_events').insert(rowInsert(forged));
    expect(await verifyTrail(db)).toMatchObject({ ok: false, id: Number(after.id), problem: 'link' });
    // A cruder forgery is named itself.
    await db('audit_events').where('id', forged.id).delete();
    await db('audit_events').insert(rowInsert({ ...forged, hash: 'f'.repeat(64) }));
    expect(await verifyTrail(db)).toMatchObject({ ok: false, id: forged.id, problem: 'content' });
    await db('audit_events').where('id', forged.id).delete();
    expect(await verifyTrail(db)).toMatchObject({ ok: true, count: 54 });
  });

  it('names the record after a deleted one; a deleted last record shows only in the head', async () => {
    const rows = await rowsOf(db);
    for (const [victim, named] of [[rows[10], rows[11]], [rows[0], rows[1]]]) {
      await db('audit_events').where('id', victim.id).delete();
      expect(await verifyTrail(db)).toMatchObject({ ok: false, id: Number(named.id), problem: 'link' });
      await db('audit_events').insert(rowInsert(victim));
    }
    const intact = await verifyTrail(db);
    expect(intact.ok).toBe(true);
    await db('audit_events').where('id', rows.at(-1).id).delete();
    const truncated = await verifyTrail(db);
    expect(truncated).toMatchObject({ ok: true, count: 53 });
    expect(intact.ok && truncated.ok && truncated.head).not.toBe(intact.ok && intact.head);
    await db('audit_events').insert(rowInsert(rows.at(-1)));
  });

  it('appends in one statement: a record alone, a group at once, or in a caller\'s transaction', async () => {
    const appendsOf = (work: () => Promise<unknown>) => statementsOf(db, work);
    expect(await appendsOf(() => recordEvent(db, person(600)))).toEqual([expect.stringMatching(/audit_append/)]);
    expect(await appendsOf(() => Promise.all(Array.from({ length: 5 }, (_, i) => recordEvent(db, person(601 + i)))))).toHaveLength(1);
    expect(await appendsOf(() => db.transaction((trx) => recordEvent(trx, person(610))))).toHaveLength(1);
    expect(await appendsOf(() => appendEvent(db, person(611), daysAgo(1)))).toHaveLength(1);
    expect(await verifyTrail(db)).toMatchObject({ ok: true, count: 62 });
  });

  it('refuses, before anything is written, a record whose stored form is not the text it was hashed from', async () => {
    const fields = chainedFields({ at: new Date(), actor_type: 'system', actor_id: 'cli:root', event: 'admin.rotateKeys', outcome: 'success', window_id: 3 });
    const append = (record: object) => db.raw('SELECT * FROM audit_append(?::jsonb)', [JSON.stringify([record])]);
    await expect(append({ ...fields, jcs: chainedText({ ...fields, outcome: 'failure' }) })).rejects.toThrow(/differs from the text it was hashed from/);
    // PostgreSQL prints a uuid in lower case: hashed in upper case, it would not verify.
    const upper = { ...fields, enterprise_id: 'A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11' };
    await expect(append({ ...upper, jcs: chainedText(upper) })).rejects.toThrow(/differs/);
    expect(await count(db)).toBe(62);
    const [written] = (await append({ ...fields, jcs: chainedText(fields) })).rows;
    const last = (await rowsOf(db)).at(-1);
    expect(written).toEqual({ id: last.id, prev_hash: last.prev_hash, hash: chainHash(last.prev_hash, fields) });
    expect(chainedFields(last)).toEqual(fields);
    expect(await verifyTrail(db)).toMatchObject({ ok: true, count: 63 });
  });

  it.skipIf(!onPostgres())('keeps one line when two processes append at once', async () => {
    const script = `
      import { openPostgres } from './src/db/connect.ts';
      import { recordEvent } from './src/audit/trail.ts';
      const { db, close } = openPostgres(process.env.AUDIT_TEST_URL, 4);
      await Promise.all(Array.from({ length: 100 }, (_, n) => recordEvent(db, { actor: { type: 'system', id: 'other-process' }, event: 'sign_in', outcome: 'success', after: { n } })));
      await db.transaction((trx) => recordEvent(trx, { actor: { type: 'system', id: 'other-process' }, event: 'sign_out', outcome: 'success' }));
      await close();`;
    const child = spawn(process.execPath, ['--input-type=module', '--eval', script], { cwd: ROOT, env: { PATH: process.env.PATH ?? '', AUDIT_TEST_URL: database.url! }, stdio: ['ignore', 'inherit', 'inherit'] });
    const exited = new Promise<number | null>((resolve) => child.once('close', resolve));
    try {
      await Promise.all([
        ...Array.from({ length: 100 }, (_, i) => recordEvent(db, person(700 + i))),
        ...Array.from({ length: 5 }, (_, i) => db.transaction((trx) => recordEvent(trx, person(800 + i)))),
      ]);
      expect(await exited).toBe(0);
    } finally {
      child.kill();
    }
    expect(await count(db)).toBe(63 + 206);
    expect(await db('audit_events').where({ actor_id: 'other-process' }).count({ n: '*' }).then((r) => Number(r[0]!.n))).toBe(101);
    expect(await verifyTrail(db)).toMatchObject({ ok: true, count: 63 + 206 });
  });
});

// A write that belongs with a record (a success's reset of its failure count, a
// session's details) goes in the record's statement: it lands with the record or not at all.
describe('writes that go with a record', () => {
  let database: TestDatabase;
  let db: Db;
  beforeAll(async () => {
    database = await testDatabase();
    db = database.db;
  });
  afterAll(async () => {
    await database?.close();
  });

  const mark = (key: string): Alongside => ({ sql: 'INSERT INTO sign_in_throttle (key, failures, updated_at) VALUES (?, 1, now())', bindings: [key] });
  const marks = () => db('sign_in_throttle').orderBy('key').pluck('key');

  it('go in the record\'s one statement: a record alone, a group at once, or in a caller\'s transaction', async () => {
    expect(await statementsOf(db, () => recordEvent(db, person(1), [mark('alone'), mark('alone, second')]))).toEqual([expect.stringMatching(/^WITH w0 AS \(INSERT.*w1 AS \(INSERT.*audit_append/s)]);
    expect(await statementsOf(db, () => Promise.all([recordEvent(db, person(2), [mark('group 1')]), recordEvent(db, person(3)), recordEvent(db, person(4), [mark('group 2')])]))).toHaveLength(1);
    expect(await statementsOf(db, () => db.transaction((trx) => recordEvent(trx, person(5), [mark('in a transaction')])))).toHaveLength(1);
    expect(await marks()).toEqual(['alone', 'alone, second', 'group 1', 'group 2', 'in a transaction']);
    expect(await verifyTrail(db)).toMatchObject({ ok: true, count: 5 });
  });

  it('land only with their record, and hold back no other record of the group', async () => {
    const results = await Promise.allSettled([
      recordEvent(db, person(10), [mark('with 10')]),
      // The record refused: its write does not land.
      recordEvent(db, { ...person(11), enterpriseId: 'not-an-enterprise-id' }, [mark('with 11')]),
      // The write refused (the key is taken): its record is not written.
      recordEvent(db, person(12), [mark('alone')]),
      recordEvent(db, person(13), [mark('with 13')]),
    ]);
    expect(results.map((r) => r.status)).toEqual(['fulfilled', 'rejected', 'rejected', 'fulfilled']);
    expect(await marks()).toEqual(['alone', 'alone, second', 'group 1', 'group 2', 'in a transaction', 'with 10', 'with 13']);
    expect((await rowsOf(db)).slice(-2).map((r) => r.after.n)).toEqual([10, 13]);
    expect(await verifyTrail(db)).toMatchObject({ ok: true, count: 7 });
  });

  // A change and its record in one transaction (the admin API's unlock) take the row, then
  // the trail's lock; a write alongside takes them in the same order, so neither waits for
  // the other in a circle (PostgreSQL would end one of them as a deadlock).
  it.skipIf(!onPostgres())('take their rows before the trail\'s lock, as a change in a transaction with its record does', async () => {
    await db('sign_in_throttle').insert({ key: 'account:both', failures: 3, updated_at: new Date() });
    const waiting = () => db.raw("SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'").then((r) => r.rows[0].n > 0);
    let appended: Promise<void> | undefined;
    await db.transaction(async (trx) => {
      await trx('sign_in_throttle').where({ key: 'account:both' }).delete();
      appended = recordEvent(db, person(30), [failuresCleared('account:both')]);
      await eventually(waiting);
      await recordEvent(trx, person(31));
    });
    await appended;
    expect((await rowsOf(db)).slice(-2).map((r) => r.after.n)).toEqual([31, 30]);
    expect(await verifyTrail(db)).toMatchObject({ ok: true, count: 9 });
  });

  it('are written on their own with the trail switched off (AUDIT_TRAIL=off, for the benchmark only)', async () => {
    setAuditTrail(false);
    try {
      await recordEvent(db, person(20), [mark('trail off')]);
      await db.transaction((trx) => recordEvent(trx, person(21), [mark('trail off, in a transaction')]));
    } finally {
      setAuditTrail(true);
    }
    expect(await marks()).toEqual(expect.arrayContaining(['trail off', 'trail off, in a transaction']));
    expect(await count(db)).toBe(onPostgres() ? 9 : 7);
  });
});

describe('retention and purge', () => {
  let database: TestDatabase;
  let db: Db;
  const actor = { type: 'system' as const, id: 'cli:test' };
  beforeAll(async () => {
    database = await testDatabase();
    db = database.db;
  });
  afterAll(async () => {
    await database?.close();
  });

  it('reads AUDIT_RETENTION_DAYS, never below 180 days', () => {
    expect(auditRetentionDays({})).toBe(180);
    expect(auditRetentionDays({ AUDIT_RETENTION_DAYS: '400' })).toBe(400);
    expect(() => auditRetentionDays({ AUDIT_RETENTION_DAYS: '90' })).toThrow(ConfigError);
    expect(() => auditRetentionDays({ AUDIT_RETENTION_DAYS: '90' })).toThrow(/AUDIT_RETENTION_DAYS: must be at least 180 .*Cybersecurity Law/);
    expect(() => auditRetentionDays({ AUDIT_RETENTION_DAYS: 'half a year' })).toThrow(/AUDIT_RETENTION_DAYS: must be a number of days/);
  });

  it('purges only past the retention, from the oldest end, and verifies from the anchor', async () => {
    for (let i = 0; i < 10; i++) await appendEvent(db, person(i), daysAgo(400 - i));
    for (let i = 0; i < 5; i++) await appendEvent(db, person(20 + i), daysAgo(200 - i));
    const rows = await rowsOf(db);

    for (const before of [daysAgo(179), daysAgo(100), new Date(Date.now() + DAY)]) {
      const refused = purgeTrail(db, { before, retentionDays: 180, actor });
      await expect(refused).rejects.toThrow(InputError);
      await expect(refused).rejects.toThrow(/^before: must be no later than .*records are kept 180 days/);
    }
    await expect(purgeTrail(db, { before: daysAgo(300), retentionDays: 400, actor })).rejects.toThrow(/kept 400 days/);
    expect(await count(db)).toBe(15);
    expect(await count(db, 'audit_anchors')).toBe(0);

    const result = await purgeTrail(db, { before: daysAgo(300), retentionDays: 180, actor });
    expect(result).toEqual({ purged: 10, anchor: { id: expect.any(Number), lastEventId: Number(rows[9].id), lastHash: rows[9].hash } });
    const left = await rowsOf(db);
    expect(left.map((r) => Number(r.id)).slice(0, 5)).toEqual(rows.slice(10).map((r) => Number(r.id)));
    expect(left.at(-1)).toMatchObject({ event: 'audit.purge', actor_id: 'cli:test', after: { lastEventId: Number(rows[9].id), lastHash: rows[9].hash, count: 10 } });
    expect(await verifyTrail(db)).toMatchObject({ ok: true, count: 6, firstId: Number(rows[10].id), anchor: { lastEventId: Number(rows[9].id), count: 10, by: 'cli:test' } });
    // Nothing older is left: the same purge again deletes nothing.
    expect(await purgeTrail(db, { before: daysAgo(300), retentionDays: 180, actor })).toEqual({ purged: 0 });
  });

  it('exports before it deletes, and deletes nothing when the export fails', async () => {
    await recordEvent(db, person(99));
    const before = await count(db);
    const failing = new Writable({ write: (_chunk, _encoding, done) => done(new Error('disk full')) });
    await expect(purgeTrail(db, { before: daysAgo(190), retentionDays: 180, actor, exportTo: async () => ({ out: failing, done: async () => {} }) })).rejects.toThrow(/disk full/);
    expect(await count(db)).toBe(before);
    expect(await count(db, 'audit_anchors')).toBe(1);

    const doomed = (await rowsOf(db)).slice(0, 5);
    let text = '';
    let closed = false;
    const out = new Writable({ decodeStrings: false, write: (chunk, _encoding, done) => ((text += chunk), done()) });
    const result = await purgeTrail(db, { before: daysAgo(190), retentionDays: 180, actor, exportTo: async () => ({ out, done: async () => void (closed = true) }) });
    expect(result).toMatchObject({ purged: 5, exported: 5 });
    expect(closed).toBe(true);
    const lines = text.trim().split('\n').map((l) => JSON.parse(l));
    expect(lines.map((l) => l.id)).toEqual(doomed.map((r) => Number(r.id)));
    // Each exported line carries what is needed to check it.
    for (const l of lines) expect(chainHash(l.prev_hash, chainedFields(l))).toBe(l.hash);
    expect(await verifyTrail(db)).toMatchObject({ ok: true, count: 3, anchor: { lastEventId: Number(doomed[4].id) } });
  });

  it('finds records slipped in before the anchor, and an anchor no purge made', async () => {
    const [first] = await rowsOf(db);
    await db('audit_events').insert(rowInsert({ ...first, id: 1 }));
    expect(await verifyTrail(db)).toMatchObject({ ok: false, id: 1, problem: 'before_anchor' });
    await db('audit_events').where('id', 1).delete();
    // Deleting the oldest records and writing an anchor for them, as a purge would.
    await db('audit_events').where('id', first.id).delete();
    await db('audit_anchors').insert({ purged_before: daysAgo(190), last_event_id: first.id, last_hash: first.hash, count: 1, by: 'intruder' });
    expect(await verifyTrail(db)).toMatchObject({ ok: false, id: null, problem: 'unconfirmed_anchor', message: expect.stringMatching(/has no audit.purge record/) });
  });

  it('starts the chain from the anchor when every record was purged', async () => {
    const fresh = await testDatabase();
    try {
      for (let i = 0; i < 3; i++) await appendEvent(fresh.db, person(i), daysAgo(365));
      const last = (await rowsOf(fresh.db)).at(-1);
      expect(await purgeTrail(fresh.db, { before: daysAgo(181), retentionDays: 180, actor })).toMatchObject({ purged: 3 });
      const [purgeRecord] = await rowsOf(fresh.db);
      expect(purgeRecord).toMatchObject({ event: 'audit.purge', prev_hash: last.hash });
      await recordEvent(fresh.db, person(4));
      expect(await verifyTrail(fresh.db)).toMatchObject({ ok: true, count: 2 });
    } finally {
      await fresh.close();
    }
  });
});

describe('export', () => {
  let database: TestDatabase;
  let db: Db;
  const march = (day: number, hour = 12) => new Date(Date.UTC(2025, 2, day, hour));
  beforeAll(async () => {
    database = await testDatabase();
    db = database.db;
    await appendEvent(db, { actor: { type: 'account', id: 'a1' }, windowId: 3, event: 'sign_in', outcome: 'success' }, march(1));
    await appendEvent(db, { actor: { type: 'account', id: 'a1' }, windowId: 3, event: 'sign_in', outcome: 'failure', reason: 'wrong_password' }, march(2));
    await appendEvent(db, { actor: { type: 'account', id: 'a2' }, windowId: 5, event: 'sign_in', outcome: 'success', target: '=HYPERLINK("http://x")' }, march(3));
    await appendEvent(db, { actor: { type: 'system', id: 'cli:root' }, windowId: 5, event: 'admin.createClient', outcome: 'success', after: { name: '洛阳网站', uris: ['https://ly.example.cn/cb'] } }, march(4));
    await appendEvent(db, { actor: { type: 'account', id: 'a1' }, event: 'sign_in', outcome: 'success' }, march(31, 23));
    await appendEvent(db, { actor: { type: 'account', id: 'a1' }, event: 'sign_in', outcome: 'success' }, new Date(Date.UTC(2025, 3, 1)));
  });
  afterAll(async () => {
    await database?.close();
  });

  const run = async (input: Record<string, unknown>, format: ExportFormat) => {
    const filter: ExportFilter = parseInput(exportFilterSchema, input);
    let text = '';
    const out = new Writable({ decodeStrings: false, write: (chunk, _encoding, done) => ((text += chunk), done()) });
    const n = await exportEvents(db, filter, out, { format });
    return { n, text };
  };
  const ids = (text: string) => text.trim().split('\n').filter(Boolean).map((l) => JSON.parse(l).id);

  it('writes exactly the records asked for, as JSON lines', async () => {
    const all = (await rowsOf(db)).map((r) => Number(r.id));
    const month = { from: '2025-03-01T00:00:00Z', to: '2025-04-01T00:00:00Z' };
    expect(ids((await run(month, 'jsonl')).text)).toEqual(all.slice(0, 5));
    expect(ids((await run({ ...month, actor: 'a1' }, 'jsonl')).text)).toEqual([all[0], all[1], all[4]]);
    expect(ids((await run({ ...month, windowId: '5' }, 'jsonl')).text)).toEqual([all[2], all[3]]);
    expect(ids((await run({ ...month, event: 'sign_in', outcome: 'success' }, 'jsonl')).text)).toEqual([all[0], all[2], all[4]]);
    expect(ids((await run({ ...month, actor: 'a1', outcome: 'failure' }, 'jsonl')).text)).toEqual([all[1]]);
    expect(await run({ ...month, actor: 'nobody' }, 'jsonl')).toEqual({ n: 0, text: '' });
    const [line] = (await run({ ...month, event: 'admin.createClient' }, 'jsonl')).text.trim().split('\n').map((l) => JSON.parse(l));
    expect(line).toEqual({
      id: all[3], at: '2025-03-04T12:00:00.000Z', actor_type: 'system', actor_id: 'cli:root', actor_ip: null, enterprise_id: null, window_id: 5,
      event: 'admin.createClient', target: null, outcome: 'success', reason: null, before: null, after: { name: '洛阳网站', uris: ['https://ly.example.cn/cb'] },
      prev_hash: expect.stringMatching(/^[0-9a-f]{64}$/), hash: expect.stringMatching(/^[0-9a-f]{64}$/),
    });
  });

  it('writes CSV with a header, JSON in before and after, and formulas defused', async () => {
    const { n, text } = await run({ from: '2025-03-02T00:00:00Z', to: '2025-03-05T00:00:00Z' }, 'csv');
    expect(n).toBe(3);
    const [header, ...records] = parse(text) as string[][];
    expect(header).toEqual([...EXPORT_COLUMNS]);
    expect(records.map((r) => [r[0], r[7], r[9], r[10]])).toEqual([
      [expect.any(String), 'sign_in', 'failure', 'wrong_password'],
      [expect.any(String), 'sign_in', 'success', ''],
      [expect.any(String), 'admin.createClient', 'success', ''],
    ]);
    expect(records[1]![8]).toBe(`'=HYPERLINK("http://x")`);
    expect(JSON.parse(records[2]![12]!)).toEqual({ name: '洛阳网站', uris: ['https://ly.example.cn/cb'] });
    expect((await run({ from: '2025-03-02T00:00:00Z', to: '2025-03-02T00:00:01Z' }, 'csv')).text).toBe(`${EXPORT_COLUMNS.join(',')}\n`);
  });

  it('refuses a bad filter, naming the field', () => {
    const bad = (input: Record<string, unknown>, pattern: RegExp) => expect(() => parseInput(exportFilterSchema, { from: '2025-03-01', to: '2025-04-01', ...input })).toThrow(pattern);
    bad({ from: '2025-02-30' }, /^from: "2025-02-30" is not a date/);
    bad({ to: 'yesterday' }, /^to: "yesterday" is not a date/);
    bad({ to: '2025-03-01T25:00' }, /^to: .* is not a date/);
    bad({ to: '2025-02-01' }, /^to: must be later than from/);
    bad({ windowId: 'abc' }, /^windowId: must be a window id/);
    bad({ outcome: 'maybe' }, /^outcome: must be success or failure/);
    bad({ event: ' ' }, /^event: must be an event type/);
    bad({ colour: 'red' }, /^colour: is not a known field/);
    expect(() => parseInput(exportFilterSchema, { to: '2025-04-01' })).toThrow(/^from: must be a date/);
    // A date alone is local midnight; with an offset, that instant.
    expect(parseInput(exportFilterSchema, { from: '2025-03-01', to: '2025-03-02T08:00+08:00' })).toMatchObject({ from: new Date(2025, 2, 1), to: new Date('2025-03-02T00:00:00Z') });
  });
});

describe('the migration that chains the trail', () => {
  it('chains the records written before it, in id order, and can be undone', async () => {
    const fresh = await testDatabase();
    const db = fresh.db;
    const directory = new URL('../migrations', import.meta.url).pathname;
    const name = '20261128000015_audit_chain.ts';
    try {
      await db.migrate.down({ directory, loadExtensions: ['.ts'], name });
      expect(await db.schema.hasTable('audit_anchors')).toBe(false);
      // Records as they were written before: `at` from the database, to the microsecond.
      const legacy = Array.from({ length: 1205 }, (_, i) => person(i)).map((e) => ({ actor_type: e.actor.type, actor_id: e.actor.id, actor_ip: e.ip, event: e.event, outcome: e.outcome, after: JSON.stringify(e.after) }));
      await db('audit_events').insert(legacy);
      await db('audit_events').insert(legacy.slice(0, 5));
      await db.migrate.up({ directory, loadExtensions: ['.ts'], name });
      expect(await verifyTrail(db)).toMatchObject({ ok: true, count: 1210 });
      await recordEvent(db, person(2000));
      expect(await verifyTrail(db)).toMatchObject({ ok: true, count: 1211 });
      await expect(db('audit_events').update({ reason: 'x' })).rejects.toThrow(/never changed/);
    } finally {
      await fresh.close();
    }
  });
});
