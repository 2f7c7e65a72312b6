import { flushPendingCounts } from '../../src/audit/pending-counts.ts';
import type { Db } from '../../src/db/connect.ts';

// What is in the database, table by table, to prove that a refused request wrote
// nothing: each table's row count and a digest of its rows. `except` names tables that
// change by design on any request (rate-limit counters, the audit trail's own record of
// a refusal). The per-minute counts this node holds are written first, so that counts of
// what came before (the token a test signed in with) do not land in the middle.

export type Snapshot = Record<string, string>;

export async function snapshot(db: Db, except: string[] = []): Promise<Snapshot> {
  await flushPendingCounts(db);
  const tables: string[] = (
    await db('information_schema.tables').where({ table_schema: 'public', table_type: 'BASE TABLE' }).whereNot('table_name', 'like', 'knex_%').orderBy('table_name').pluck('table_name')
  ).filter((t: string) => !except.includes(t));
  const sql = tables.map((t) => `SELECT '${t}' AS t, count(*) || ':' || md5(coalesce(string_agg(x::text, '|' ORDER BY x::text), '')) AS v FROM "${t}" x`).join(' UNION ALL ');
  const rows: Array<{ t: string; v: string }> = (await db.raw(sql)).rows;
  return Object.fromEntries(rows.map((r) => [r.t, r.v]));
}

// The tables whose rows differ between two snapshots.
export const changedTables = (before: Snapshot, after: Snapshot): string[] => Object.keys({ ...before, ...after }).filter((t) => before[t] !== after[t]);
