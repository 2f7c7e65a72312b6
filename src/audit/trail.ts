import { z } from 'zod';
import type { Knex } from 'knex';
import type { Db } from '../db/connect.ts';
import { text as textSchema } from '../validation/text.ts';
import { problemCode } from '../problems.ts';
import { chainedText, hashOnto, storableJson, storableText, storableUuid, type ChainedFields } from './chain.ts';
import { groupedWrites } from '../db/grouped-writes.ts';

// The one way anything is put on record. Callers that change something pass the
// transaction of the change, so the change and its record land together or not at all.
// Records are only ever inserted, each hashed onto the one before it (chain.ts); the
// database refuses UPDATE and TRUNCATE of them, and verify.ts finds any other change.

export type Actor = { type: 'account'; id: string } | { type: 'client'; id: string } | { type: 'system'; id?: string };

export type AuditEvent = {
  actor: Actor;
  ip?: string;
  enterpriseId?: string;
  windowId?: number | null;
  event: string;
  target?: string;
  outcome: 'success' | 'failure';
  reason?: string;
  before?: unknown;
  after?: unknown;
};

export type AuditRecord = Omit<AuditEvent, 'actor'> & { id: number; at: Date; actor: Actor };

// A write that belongs with a record (a success's reset of its failure count, the
// session details of an authorization): it goes in the record's statement, as a
// data-modifying WITH, so it lands with the record or not at all and costs no statement
// of its own. `sql` is one INSERT, UPDATE or DELETE with `?` bindings, without RETURNING
// (appendWith adds its own).
export type Alongside = { sql: string; bindings: readonly Knex.RawBinding[] };

// Such writes where no record goes with them, one statement each.
export async function writeAlongside(db: Db, writes: readonly Alongside[]): Promise<void> {
  for (const w of writes) await db.raw(w.sql, w.bindings);
}

// Appends are serialised across every node by one advisory lock, held until the
// transaction commits: audit_append (migrations/20261201000010_audit_append.ts) takes it,
// reads the last hash and inserts the records hashed onto it, in one statement. In a
// caller's transaction the lock is held until that commits: record last.
const APPEND = 'SELECT id, prev_hash, hash FROM audit_append(?::jsonb)';

// The append with writes that go alongside. The records are handed to audit_append
// through a subquery that reads the writes' rows, so the writes are made before the
// append takes its lock: the order of a change and its record in one transaction (the
// rows, then the trail), so that the two never wait on each other. (Left unread, they
// would be made after the append.)
function appendWith(writes: readonly Alongside[], records: string): [string, Knex.RawBinding[]] {
  if (writes.length === 0) return [APPEND, [records]];
  const made = writes.map((w, n) => `w${n} AS (${w.sql} RETURNING 1)`).join(', ');
  const counted = writes.map((_, n) => `(SELECT count(*) FROM w${n}) AS c${n}`).join(', ');
  return [`WITH ${made} SELECT id, prev_hash, hash FROM audit_append((SELECT ?::jsonb FROM ${counted}))`, [...writes.flatMap((w) => w.bindings), records]];
}

const MAX_BATCH = 200;

// Records made outside a transaction (sign-ins, authorizations, sign-outs) go in
// together (db/grouped-writes.ts): one lock and one commit for all that arrived while
// the previous group was being written, so the serialised commit does not cap the node
// at one record per disk flush.
type Item = { event: AuditEvent; at: Date; alongside: readonly Alongside[] };
const recordInGroup = groupedWrites<Item>(appendEvents, MAX_BATCH);

// AUDIT_TRAIL=off (config.ts; refused in production) makes recordEvent write nothing but
// the writes that go alongside.
// It exists only so the benchmark can measure what the trail costs a sign-in; a
// deployment keeps the trail on. appendEvent (purges, past events) is not affected.
let trailOn = true;
export function setAuditTrail(enabled: boolean): void {
  trailOn = enabled;
}

export async function recordEvent(db: Db, e: AuditEvent, alongside: readonly Alongside[] = []): Promise<void> {
  if (!trailOn) return writeAlongside(db, alongside);
  if (db.isTransaction) return appendEvents(db, [{ event: e, at: new Date(), alongside }]).then(() => undefined);
  return recordInGroup(db, { event: e, at: new Date(), alongside });
}

// recordEvent with the time given (tests, and records of past events), one at a time.
export async function appendEvent(db: Db, e: AuditEvent, at: Date = new Date()): Promise<{ id: number; hash: string }> {
  const [appended] = await appendEvents(db, [{ event: e, at, alongside: [] }]);
  return appended!;
}

// One statement, in the caller's transaction or on its own. The database hashes each
// record's JCS text onto the one before; the same hash is computed here and must agree,
// so that what audit verify recomputes is what was written.
async function appendEvents(db: Db, items: readonly Item[]): Promise<Array<{ id: number; hash: string }>> {
  const records = items.map(({ event: e, at }) => {
    const fields: ChainedFields = {
      at: at.toISOString(),
      actor_type: e.actor.type,
      actor_id: text(e.actor.id),
      actor_ip: text(e.ip),
      enterprise_id: e.enterpriseId === undefined ? null : storableUuid(e.enterpriseId),
      window_id: e.windowId ?? null,
      event: storableText(e.event),
      target: text(e.target),
      outcome: e.outcome,
      reason: text(e.reason),
      before: storableJson(e.before),
      after: storableJson(e.after),
    };
    return { ...fields, jcs: chainedText(fields) };
  });
  const appended: Array<{ id: string | number; prev_hash: string; hash: string }> = (await db.raw(...appendWith(items.flatMap((i) => i.alongside), JSON.stringify(records)))).rows;
  if (appended.length !== records.length || appended.some((r, i) => r.hash !== hashOnto(r.prev_hash, records[i]!.jcs))) {
    throw new Error('the audit trail chained records differently from this process');
  }
  return appended.map((r) => ({ id: Number(r.id), hash: r.hash }));
}

const text = (value: string | undefined) => (value === undefined ? null : storableText(value));

export type Anchor = { id: number; at: Date; purgedBefore: Date; lastEventId: number; lastHash: string; count: number; by: string; dbRole: string };

// Where the chain starts after purges: the hash of the last record the latest purge removed.
export async function latestAnchor(db: Db): Promise<Anchor | undefined> {
  const r = await db('audit_anchors').orderBy('last_event_id', 'desc').orderBy('id', 'desc').first();
  if (!r) return undefined;
  return {
    id: Number(r.id),
    at: r.at,
    purgedBefore: r.purged_before,
    lastEventId: Number(r.last_event_id),
    lastHash: r.last_hash,
    count: Number(r.count),
    by: r.by,
    dbRole: r.db_role,
  };
}

export const auditFilterSchema = z.strictObject({
  event: textSchema({ max: 100 }).min(1, problemCode('event_type')).optional(),
  actor: textSchema({ max: 200 }).min(1, problemCode('actor_id')).optional(),
  windowId: z.coerce.number({ error: problemCode('window_id') }).int().positive().optional(),
  outcome: z.enum(['success', 'failure'], { error: problemCode('success_or_failure') }).optional(),
  limit: z.coerce.number({ error: problemCode('number') }).int().min(1, problemCode('too_small')).max(500, problemCode('too_big')).default(100),
});

// Newest first.
export async function listEvents(db: Db, filter: z.output<typeof auditFilterSchema>): Promise<AuditRecord[]> {
  const q = db('audit_events').orderBy('id', 'desc').limit(filter.limit);
  if (filter.event) q.where('event', filter.event);
  if (filter.actor) q.where('actor_id', filter.actor);
  if (filter.windowId) q.where('window_id', filter.windowId);
  if (filter.outcome) q.where('outcome', filter.outcome);
  const rows = await q;
  return rows.map((r) => ({
    id: Number(r.id),
    at: r.at,
    actor: (r.actor_id === null ? { type: r.actor_type } : { type: r.actor_type, id: r.actor_id }) as Actor,
    ...(r.actor_ip !== null && { ip: r.actor_ip }),
    ...(r.enterprise_id !== null && { enterpriseId: r.enterprise_id }),
    windowId: r.window_id,
    event: r.event,
    ...(r.target !== null && { target: r.target }),
    outcome: r.outcome,
    ...(r.reason !== null && { reason: r.reason }),
    ...(r.before !== null && { before: r.before }),
    ...(r.after !== null && { after: r.after }),
  }));
}
