// The audit trail at scale: a million chained records written straight into the bench
// database, then `audit verify` (verifyTrail, as the command line runs it) timed over
// the whole trail.
import type { Knex } from 'knex';
import { chainHash, GENESIS, storableJson, storableText, type ChainedFields } from '../src/audit/chain.ts';
import { latestAnchor } from '../src/audit/trail.ts';
import { verifyTrail, type VerifyResult } from '../src/audit/verify.ts';
import { openPostgres, type Db } from '../src/db/connect.ts';

export type AuditFigures = { rows: number; writeSeconds: number; verifySeconds: number; result: VerifyResult };

const BATCH = 10_000;
const DAY = 86_400_000;

// Record n of the synthetic trail: a password sign-in as the login page records it
// (src/interaction/routes.ts), one in ten refused, over the last 180 days in order.
function signInRecord(n: number, rows: number, now: number): ChainedFields {
  const account = `00000000-0000-4000-8000-${(n % 200_000).toString(16).padStart(12, '0')}`;
  const failed = n % 10 === 0;
  return {
    at: new Date(now - Math.round(((rows - n) / rows) * 180 * DAY)).toISOString(),
    actor_type: 'account',
    actor_id: storableText(account),
    actor_ip: storableText(`10.${(n >> 16) & 255}.${(n >> 8) & 255}.${n & 255}`),
    enterprise_id: null,
    window_id: (n % 18) + 1,
    event: storableText('sign_in'),
    target: storableText(`account:${account}`),
    outcome: failed ? 'failure' : 'success',
    reason: failed ? storableText('wrong_password') : null,
    before: storableJson(undefined),
    after: storableJson({ clientId: `window-${(n % 18) + 1}`, ...(n % 7 === 0 && { acr: 'urn:sme-passport:mfa' }) }),
  };
}

// The hash the next record follows, as recordEvent finds it (no server is running now).
async function chainHead(db: Db): Promise<string> {
  const last = await db('audit_events').orderBy('id', 'desc').first('hash');
  return last?.hash ?? (await latestAnchor(db))?.lastHash ?? GENESIS;
}

const COLUMNS = ['at', 'actor_type', 'actor_id', 'actor_ip', 'enterprise_id', 'window_id', 'event', 'target', 'outcome', 'reason', 'before', 'after', 'prev_hash', 'hash'] as const;
const TYPES = ['timestamptz', 'text', 'text', 'text', 'uuid', 'int', 'text', 'text', 'text', 'text', 'jsonb', 'jsonb', 'text', 'text'];
// One statement per batch, one array per column; the ids are drawn in array order.
const INSERT = `INSERT INTO audit_events (${COLUMNS.join(', ')})
  SELECT ${COLUMNS.join(', ')} FROM unnest(${TYPES.map((t) => `?::${t}[]`).join(', ')}) WITH ORDINALITY AS u(${COLUMNS.join(', ')}, n) ORDER BY n`;

const json = (value: unknown) => (value === null ? null : JSON.stringify(value));

type Column = Array<string | number | null>;

// Records from..to-1, hashed onto prevHash exactly as recordEvent hashes them, as column arrays.
function batch(from: number, to: number, rows: number, now: number, prevHash: string): { columns: Column[]; head: string } {
  const columns: Column[] = COLUMNS.map(() => []);
  let prev = prevHash;
  for (let n = from; n < to; n++) {
    const fields = signInRecord(n, rows, now);
    const hash = chainHash(prev, fields);
    const row = { ...fields, before: json(fields.before), after: json(fields.after), prev_hash: prev, hash };
    COLUMNS.forEach((c, i) => columns[i]!.push(row[c]));
    prev = hash;
  }
  return { columns, head: prev };
}

// Writes `rows` records onto the end of the trail; the next batch is hashed while the
// database takes the one before.
async function writeTrail(db: Db, rows: number): Promise<void> {
  const now = Date.now();
  let head = await chainHead(db);
  let writing: Promise<unknown> = Promise.resolve();
  for (let from = 0; from < rows; from += BATCH) {
    const next = batch(from, Math.min(rows, from + BATCH), rows, now, head);
    head = next.head;
    await writing;
    // pg sends each column as an array, nulls as NULL. A knex query starts when it is
    // awaited: start it, and let it go out, before hashing the next batch.
    writing = db.raw(INSERT, next.columns as Knex.RawBinding[]).then();
    writing.catch(() => undefined); // awaited on the next turn; not unhandled meanwhile
    await new Promise((resolve) => setImmediate(resolve));
  }
  await writing;
}

export async function auditAtScale(databaseUrl: string, rows: number): Promise<AuditFigures> {
  const { db, close } = openPostgres(databaseUrl);
  try {
    const t0 = performance.now();
    await writeTrail(db, rows);
    const writeSeconds = (performance.now() - t0) / 1000;
    // Settle the table now rather than let autovacuum share the cores with the measurement.
    await db.raw('VACUUM (ANALYZE) audit_events');
    const t1 = performance.now();
    const result = await verifyTrail(db);
    return { rows, writeSeconds, verifySeconds: (performance.now() - t1) / 1000, result };
  } finally {
    await close();
  }
}
