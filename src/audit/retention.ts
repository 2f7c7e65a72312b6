import type { Writable } from 'node:stream';
import { z } from 'zod';
import { ConfigError } from '../config.ts';
import type { Db } from '../db/connect.ts';
import { InputError } from '../errors.ts';
import { readEvents, writeRecords } from './export.ts';
import { appendEvent, type Actor } from './trail.ts';
import { PURGE_EVENT } from './verify.ts';

// How long the trail is kept, and the one way records leave it. The Cybersecurity Law
// (art. 21) wants network logs kept at least six months: records younger than the
// retention are never purged, whatever date is asked for.

export const MIN_RETENTION_DAYS = 180;

const retentionSchema = z.coerce
  .number({ error: 'must be a number of days' })
  .int('must be a whole number of days')
  .min(MIN_RETENTION_DAYS, `must be at least ${MIN_RETENTION_DAYS} (days): the Cybersecurity Law requires logs to be kept six months or more`)
  .max(36_500, 'must be at most 36500 (days)');

export function auditRetentionDays(env: Record<string, string | undefined> = process.env): number {
  const value = env.AUDIT_RETENTION_DAYS;
  if (value === undefined || value.trim() === '') return MIN_RETENTION_DAYS;
  const parsed = retentionSchema.safeParse(value.trim());
  if (!parsed.success) throw new ConfigError(`AUDIT_RETENTION_DAYS: ${parsed.error.issues[0]!.message}`);
  return parsed.data;
}

// The latest date a purge may name: records at or after it are within the retention.
export const purgeLimit = (retentionDays: number, now = new Date()) => new Date(now.getTime() - retentionDays * 86_400_000);

// Refuses a purge date within the retention (before anything is opened or written).
export function checkPurgeDate(before: Date, retentionDays: number, now = new Date()): void {
  const limit = purgeLimit(retentionDays, now);
  if (before > limit) throw new InputError('before', 'purge_too_recent', { limit: limit.toISOString(), days: retentionDays });
}

export type PurgeResult = { purged: number; anchor?: { id: number; lastEventId: number; lastHash: string }; exported?: number };

// Deletes the records older than `before`, oldest first, in one transaction, leaving
// an anchor (the id and hash of the last one deleted) so the chain still verifies from
// there, and putting the purge itself on record. With `exportTo`, the records are
// written there first (JSON lines); if that fails, nothing is deleted. The records
// deleted are a prefix of the chain: the first record at or after `before` and every
// record after it stay, even one whose clock ran behind.
export async function purgeTrail(
  db: Db,
  options: { before: Date; retentionDays: number; actor: Actor; now?: Date; exportTo?: () => Promise<{ out: Writable; done: () => Promise<void> }> },
): Promise<PurgeResult> {
  checkPurgeDate(options.before, options.retentionDays, options.now);
  return db.transaction(async (trx) => {
    // One purge at a time; appends go on meanwhile.
    await trx.raw("SELECT pg_advisory_xact_lock(hashtext('sme-passport:audit-purge'))");
    const firstKept = await trx('audit_events').where('at', '>=', options.before).orderBy('id').first('id');
    const doomed = (q: ReturnType<Db>) => (firstKept ? q.where('id', '<', firstKept.id) : q);
    const last = await doomed(trx('audit_events')).orderBy('id', 'desc').first('id', 'hash');
    if (!last) return { purged: 0 };
    const lastEventId = Number(last.id);

    let exported: number | undefined;
    if (options.exportTo) {
      const target = await options.exportTo();
      exported = await writeRecords(readEvents(trx, (q) => q.where('id', '<=', lastEventId)), target.out, 'jsonl');
      await target.done();
    }
    const purged = await trx('audit_events').where('id', '<=', lastEventId).delete();
    if (exported !== undefined && exported !== purged) throw new Error(`exported ${exported} records but would delete ${purged}: nothing deleted`);
    const [anchor] = await trx('audit_anchors')
      .insert({ purged_before: options.before, last_event_id: lastEventId, last_hash: last.hash, count: purged, by: options.actor.id ?? options.actor.type })
      .returning('id');
    const anchorId = Number(anchor.id);
    await appendEvent(trx, {
      actor: options.actor,
      event: PURGE_EVENT,
      outcome: 'success',
      target: 'audit_events',
      after: { anchor: anchorId, lastEventId, lastHash: last.hash, count: purged, before: options.before.toISOString(), ...(exported !== undefined && { exported }) },
    });
    return { purged, anchor: { id: anchorId, lastEventId, lastHash: last.hash }, ...(exported !== undefined && { exported }) };
  });
}
