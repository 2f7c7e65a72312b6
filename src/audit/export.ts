import { Readable, type Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { stringify } from 'csv-stringify/sync';
import { z } from 'zod';
import type { Db } from '../db/connect.ts';
import { text } from '../validation/text.ts';
import { problemCode } from '../problems.ts';

// Records of the trail as files: JSON lines (exact: each line can be checked against
// its hash, see chain.ts) or CSV (for spreadsheets). Streamed in keyset pages, so any
// range takes bounded memory; written to any Writable (stdout, a file, a download).

// A date is the start of that day in this machine's time zone; a date and time without
// an offset is this machine's local time too; with `Z` or an offset it is that instant.
export const auditDate = text({ max: 40, error: 'audit_date' }).transform((value, ctx) => {
  const date = parseDate(value.trim());
  if (!date) {
    ctx.addIssue({ code: 'custom', message: problemCode('not_a_date'), params: { value } });
    return z.NEVER;
  }
  return date;
});

function parseDate(value: string): Date | undefined {
  const m = /^(\d{4})-(\d{2})-(\d{2})(?:T(\d{2}):(\d{2})(?::(\d{2})(?:\.\d{3})?)?(?:Z|[+-]\d{2}:\d{2})?)?$/.exec(value);
  if (!m) return undefined;
  const [year, month, day, hour, minute, second] = [m[1], m[2], m[3], m[4] ?? '0', m[5] ?? '0', m[6] ?? '0'].map(Number) as [number, number, number, number, number, number];
  // Refuse what Date would roll over (February 30th, 24:00).
  const check = new Date(Date.UTC(year, month - 1, day, hour, minute, second));
  const fields = [check.getUTCFullYear(), check.getUTCMonth() + 1, check.getUTCDate(), check.getUTCHours(), check.getUTCMinutes(), check.getUTCSeconds()];
  if (fields.join() !== [year, month, day, hour, minute, second].join()) return undefined;
  const date = m[4] === undefined ? new Date(year, month - 1, day) : new Date(value);
  return Number.isNaN(date.getTime()) ? undefined : date;
}

export const AUDIT_OUTCOMES = ['success', 'failure'] as const;

// Which records: from <= at < to, and optionally one actor, window, event or outcome.
const filterShape = {
  from: auditDate,
  to: auditDate,
  actor: text({ max: 200 }).min(1, problemCode('actor_id')).optional(),
  windowId: z.coerce.number({ error: problemCode('window_id') }).int(problemCode('window_id')).positive(problemCode('window_id')).max(2 ** 31 - 1).optional(),
  event: text({ max: 100 }).min(1, problemCode('event_type')).optional(),
  outcome: z.enum(AUDIT_OUTCOMES, { error: problemCode('success_or_failure') }).optional(),
};
const toAfterFrom = (f: { from: Date; to: Date }) => f.from < f.to;
const toAfterFromIssue = { path: ['to'], message: problemCode('to_after_from') };

export const exportFilterSchema = z.strictObject(filterShape).refine(toAfterFrom, toAfterFromIssue);

// The admin API answers JSON: at most `limit` records, and whether there are more.
export const exportQuerySchema = z
  .strictObject({ ...filterShape, limit: z.coerce.number({ error: problemCode('number') }).int(problemCode('whole_number')).min(1, problemCode('too_small')).max(10_000, problemCode('too_big')).default(1000) })
  .refine(toAfterFrom, toAfterFromIssue);

export type ExportFilter = z.output<typeof exportFilterSchema>;
export const EXPORT_FORMATS = ['csv', 'jsonl'] as const;
export type ExportFormat = (typeof EXPORT_FORMATS)[number];

type Query = ReturnType<Db>;

export const filtered = (f: ExportFilter) => (q: Query) => {
  q.where('at', '>=', f.from).andWhere('at', '<', f.to);
  if (f.actor) q.where('actor_id', f.actor);
  if (f.windowId) q.where('window_id', f.windowId);
  if (f.event) q.where('event', f.event);
  if (f.outcome) q.where('outcome', f.outcome);
};

// Rows in id order, a page at a time.
export async function* readEvents(db: Db, where: (q: Query) => void, pageSize = 5000): AsyncGenerator<Record<string, any>> {
  let after: number | undefined;
  for (;;) {
    const q = db('audit_events').orderBy('id').limit(pageSize);
    where(q);
    if (after !== undefined) q.where('id', '>', after);
    const rows = await q;
    yield* rows;
    if (rows.length < pageSize) return;
    after = Number(rows.at(-1).id);
  }
}

export const EXPORT_COLUMNS = ['id', 'at', 'actor_type', 'actor_id', 'actor_ip', 'enterprise_id', 'window_id', 'event', 'target', 'outcome', 'reason', 'before', 'after', 'prev_hash', 'hash'] as const;
export type ExportedRecord = Record<(typeof EXPORT_COLUMNS)[number], unknown>;

export function exportedRecord(r: Record<string, any>): ExportedRecord {
  return {
    id: Number(r.id),
    at: new Date(r.at).toISOString(),
    actor_type: r.actor_type,
    actor_id: r.actor_id,
    actor_ip: r.actor_ip,
    enterprise_id: r.enterprise_id,
    window_id: r.window_id,
    event: r.event,
    target: r.target,
    outcome: r.outcome,
    reason: r.reason,
    before: r.before,
    after: r.after,
    prev_hash: r.prev_hash,
    hash: r.hash,
  };
}

// Writes rows to `out` (which stays open) and says how many.
export async function writeRecords(rows: AsyncIterable<Record<string, any>>, out: Writable, format: ExportFormat, options: { bom?: boolean } = {}): Promise<number> {
  let count = 0;
  async function* chunks() {
    if (format === 'csv') yield (options.bom ? '\uFEFF' : '') + stringify([EXPORT_COLUMNS as unknown as string[]]);
    let batch: ExportedRecord[] = [];
    const flush = () => {
      const text = format === 'jsonl' ? batch.map((r) => `${JSON.stringify(r)}\n`).join('') : stringify(batch.map(csvRow), { escape_formulas: true });
      batch = [];
      return text;
    };
    for await (const row of rows) {
      batch.push(exportedRecord(row));
      count++;
      if (batch.length === 500) yield flush();
    }
    if (batch.length) yield flush();
  }
  await pipeline(Readable.from(chunks()), out, { end: false });
  return count;
}

const csvRow = (r: ExportedRecord) => EXPORT_COLUMNS.map((c) => ((c === 'before' || c === 'after') && r[c] !== null ? JSON.stringify(r[c]) : r[c]));

export async function exportEvents(db: Db, filter: ExportFilter, out: Writable, options: { format: ExportFormat; bom?: boolean }): Promise<number> {
  return writeRecords(readEvents(db, filtered(filter)), out, options.format, options);
}

// The same records as an array, at most `limit` of them (the admin API answers JSON).
export async function exportedRecords(db: Db, filter: ExportFilter, limit: number): Promise<{ records: ExportedRecord[]; more: boolean }> {
  const q = db('audit_events').orderBy('id').limit(limit + 1);
  filtered(filter)(q);
  const rows = await q;
  return { records: rows.slice(0, limit).map(exportedRecord), more: rows.length > limit };
}
