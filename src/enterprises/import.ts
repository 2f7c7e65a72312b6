import type { Readable } from 'node:stream';
import { parse, type CsvError } from 'csv-parse';
import type { Db } from '../db/connect.ts';
import { tablesChanged } from '../db/cache.ts';
import { InputError, issuesOf } from '../errors.ts';
import { newEnterpriseSchema } from './enterprises.ts';

// Bulk load of the registry from CSV (header row; columns uscc,name,type,region,
// industry). Streams: memory stays bounded whatever the file's size. Bad rows are
// reported, never stop the load. Re-running a file changes nothing: rows already in
// the registry are counted as existing (a line repeating an earlier line of the file
// is a rejected duplicate, or on a re-run simply existing).

export type Rejection = { line: number; value: string; reason: string };
export type ImportSummary = { read: number; inserted: number; existing: number; rejected: number };

// An unexpected failure (the database went away, refused a statement): the batch in
// flight is rolled back, the batches before it stay committed (they are valid rows, and
// a re-run counts them as existing). `summary` counts the rows read, the rows of the
// committed batches (inserted, existing) and every line in the report (rejected);
// `stoppedAtLine` is the first line of the batch that failed. The cause is kept for the
// caller to classify, never to print: database errors carry SQL and values.
export class ImportStopped extends Error {
  readonly summary: ImportSummary;
  readonly stoppedAtLine: number;
  constructor(summary: ImportSummary, stoppedAtLine: number, cause: unknown) {
    super(`the import stopped at line ${stoppedAtLine}`, { cause });
    this.summary = summary;
    this.stoppedAtLine = stoppedAtLine;
  }
}
export type ImportOptions = {
  dryRun?: boolean;
  batchSize?: number;
  onRejected: (rejection: Rejection) => void;
  onProgress?: (summary: ImportSummary) => void;
};

const REQUIRED = ['uscc', 'name', 'type', 'region'] as const;
const COLUMNS = new Set<string>([...REQUIRED, 'industry']);

type Row = { line: number; uscc: string | null; name: string; type: string; region: string; industry: string | null };

// The registry's identity of a row: its code, or for a team without one its name in its region.
const keyOf = (r: { uscc: string | null; type: string; region: string; name: string }) => r.uscc ?? `${r.type}|${r.region}|${r.name}`;

// A reported value stays on one line of the report, and short.
const clip = (raw: string) => {
  const value = raw.replace(/\s*\r?\n\s*/g, ' ').trim();
  return value.length > 200 ? `${value.slice(0, 200)}…` : value;
};

function readHeader(record: string[]): string[] {
  const header = record.map((h) => h.trim().toLowerCase());
  const unknown = header.filter((h) => !COLUMNS.has(h));
  if (unknown.length) throw new InputError('file', 'import_unknown_column', { column: unknown[0]!, columns: [...COLUMNS].join(',') });
  const missing = REQUIRED.filter((c) => !header.includes(c));
  if (missing.length) throw new InputError('file', 'import_missing_column', { column: missing[0]!, columns: [...COLUMNS].join(',') });
  if (new Set(header).size !== header.length) throw new InputError('file', 'import_column_twice');
  return header;
}

function toRow(header: string[], record: string[], line: number): Row | Rejection {
  if (record.length !== header.length) return { line, value: clip(record.join(',')), reason: `expected ${header.length} fields, found ${record.length}` };
  const fields = Object.fromEntries(header.map((h, i) => [h, record[i]!.trim()]));
  const input = {
    ...(fields.uscc && { uscc: fields.uscc }),
    name: fields.name,
    type: fields.type,
    region: fields.region,
    ...(fields.industry && { industry: fields.industry }),
  };
  const parsed = newEnterpriseSchema.safeParse(input);
  if (!parsed.success) {
    const issue = issuesOf(parsed.error)[0]!;
    const field = issue.field === 'input' ? 'row' : issue.field.split('.')[0]!;
    return { line, value: clip(fields[field] || record.join(',')), reason: `${field}: ${issue.message}` };
  }
  const e = parsed.data;
  return { line, uscc: e.uscc ?? null, name: e.name, type: e.type, region: e.region, industry: e.industry ?? null };
}

type BatchOutcome = { inserted: number; existing: number; duplicates: Rejection[] };

// What one batch did; the caller counts it once its transaction has committed.
async function writeBatch(db: Db, rows: Row[], runStart: Date): Promise<BatchOutcome> {
  const inserted: Array<{ uscc: string | null; type: string; region: string; name: string }> = await db('enterprises')
    .insert(rows.map(({ line: _line, ...r }) => r))
    .onConflict()
    .ignore()
    .returning(['uscc', 'type', 'region', 'name']);
  tablesChanged(db, 'enterprises');
  const outcome: BatchOutcome = { inserted: inserted.length, existing: 0, duplicates: [] };
  if (inserted.length === rows.length) return outcome;
  // A conflict is a row the registry had before this run (idempotent: existing), or
  // one an earlier line of this file created (a duplicate: rejected).
  const fresh = new Set(inserted.map(keyOf));
  const conflicts = rows.filter((r) => !fresh.has(keyOf(r)));
  const codes = conflicts.flatMap((r) => (r.uscc ? [r.uscc] : []));
  const teams = conflicts.filter((r) => !r.uscc);
  const found: Array<{ uscc: string | null; type: string; region: string; name: string; this_run: boolean }> = await db('enterprises')
    .where((q) => {
      if (codes.length) q.whereIn('uscc', codes);
      for (const t of teams) q.orWhere((w) => w.whereNull('uscc').andWhere({ type: t.type, region: t.region, name: t.name }));
    })
    .select('uscc', 'type', 'region', 'name', db.raw('created_at >= ? as this_run', [runStart]));
  const thisRun = new Set(found.filter((f) => f.this_run).map(keyOf));
  for (const r of conflicts) {
    if (thisRun.has(keyOf(r))) {
      outcome.duplicates.push({ line: r.line, value: r.uscc ?? r.name, reason: r.uscc ? 'duplicate: this USCC is on an earlier line of the file' : 'duplicate: this team is on an earlier line of the file' });
    } else outcome.existing++;
  }
  return outcome;
}

export async function importEnterprises(db: Db, input: Readable, options: ImportOptions): Promise<ImportSummary> {
  const batchSize = options.batchSize ?? 1000;
  const summary: ImportSummary = { read: 0, inserted: 0, existing: 0, rejected: 0 };
  const reject = (r: Rejection) => {
    summary.rejected++;
    options.onRejected(r);
  };
  const parser = input.pipe(
    parse({
      bom: true,
      info: true,
      raw: true,
      relax_column_count: true,
      skip_empty_lines: true,
      skip_records_with_error: true,
      on_skip: (err: CsvError | undefined, raw: string | undefined) => {
        summary.read++;
        reject({ line: Number(err?.lines ?? 0), value: clip(raw ?? ''), reason: `malformed CSV: ${err?.message ?? 'unreadable line'}` });
        return undefined;
      },
    }),
  );

  // Dry run: the same work in one transaction that is rolled back, so the answer is
  // exactly what a real run would do.
  const run = async (trx: Db) => {
    // Rows this run writes get created_at = now() of their transaction, never earlier
    // than this (in a dry run, the one transaction's now() is this very value).
    const [{ now: runStart }] = (await trx.raw('SELECT now() AS now')).rows as [{ now: Date }];
    let header: string[] | undefined;
    let batch: Row[] = [];
    let keys = new Map<string, number>();
    // Each batch is its own transaction (in a dry run, a savepoint of the one), so a
    // failure takes back exactly the batch in flight.
    const flush = async () => {
      if (batch.length) {
        const rows = batch;
        let done: BatchOutcome;
        try {
          done = await trx.transaction((batchTrx) => writeBatch(batchTrx, rows, runStart));
        } catch (err) {
          // The counts only ever hold committed batches (and rejected lines, which stay
          // rejected whatever happens to the rows around them).
          throw new ImportStopped({ ...summary }, rows[0]!.line, err);
        }
        summary.inserted += done.inserted;
        summary.existing += done.existing;
        for (const duplicate of done.duplicates) reject(duplicate);
      }
      batch = [];
      keys = new Map();
      options.onProgress?.({ ...summary });
    };
    for await (const { record, info } of parser as AsyncIterable<{ record: string[]; info: { lines: number } }>) {
      if (!header) {
        header = readHeader(record);
        continue;
      }
      summary.read++;
      const row = toRow(header, record, info.lines);
      if (!('uscc' in row)) {
        reject(row);
        continue;
      }
      const earlier = keys.get(keyOf(row));
      if (earlier !== undefined) {
        reject({ line: row.line, value: row.uscc ?? row.name, reason: `duplicate: the same as line ${earlier}` });
        continue;
      }
      keys.set(keyOf(row), row.line);
      batch.push(row);
      if (batch.length >= batchSize) await flush();
    }
    if (!header) throw new InputError('file', 'import_empty', { columns: [...COLUMNS].join(',') });
    await flush();
  };

  if (options.dryRun) {
    await db
      .transaction(async (trx) => {
        await run(trx);
        throw DRY_RUN;
      })
      .catch((err) => {
        if (err !== DRY_RUN) throw err;
      });
  } else {
    await run(db);
  }
  return summary;
}

const DRY_RUN = Symbol('dry run: roll back');
