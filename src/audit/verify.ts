import type { Db } from '../db/connect.ts';
import { chainedFields, chainHash, GENESIS } from './chain.ts';
import { latestAnchor, type Anchor } from './trail.ts';

// Walks the whole trail in id order, in pages (bounded memory), in one snapshot, and
// checks every record: its hash over its own content, and its link to the record
// before it (or to the latest purge anchor, or to GENESIS). The first bad record is
// reported. A record removed from the end cannot be seen from inside the database:
// compare `head` with a copy kept elsewhere for that.

export type Problem = 'content' | 'link' | 'before_anchor' | 'unconfirmed_anchor';

export type VerifyResult =
  | { ok: true; count: number; firstId: number | null; lastId: number | null; head: string; anchor: Anchor | null }
  | { ok: false; count: number; id: number | null; problem: Problem; message: string; anchor: Anchor | null };

export const PURGE_EVENT = 'audit.purge';

export async function verifyTrail(db: Db, options: { pageSize?: number } = {}): Promise<VerifyResult> {
  const pageSize = options.pageSize ?? 5000;
  return db.transaction(
    async (trx) => {
      const anchor = (await latestAnchor(trx)) ?? null;
      let expected = anchor?.lastHash ?? GENESIS;
      let count = 0;
      let firstId: number | null = null;
      let lastId: number | null = null;
      // The latest purge is itself on record, after its anchor: an anchor without it
      // was not made by a purge.
      let anchorConfirmed = anchor === null;
      const bad = (id: number | null, problem: Problem, message: string): VerifyResult => ({ ok: false, count, id, problem, message, anchor });
      for (;;) {
        const q = trx('audit_events').orderBy('id').limit(pageSize);
        if (lastId !== null) q.where('id', '>', lastId);
        const rows = await q;
        for (const row of rows) {
          const id = Number(row.id);
          if (anchor && id <= anchor.lastEventId) {
            return bad(id, 'before_anchor', `record ${id} is at or before the latest purge (up to record ${anchor.lastEventId}): it was inserted afterwards`);
          }
          if (chainHash(row.prev_hash, chainedFields(row)) !== row.hash) {
            return bad(id, 'content', `record ${id} has been changed: its content does not match its hash`);
          }
          if (row.prev_hash !== expected) {
            const before = lastId === null ? (anchor ? `the purge anchor (record ${anchor.lastEventId})` : 'the start of the trail') : `record ${lastId}`;
            return bad(id, 'link', `record ${id} does not follow ${before}: a record before it was inserted, deleted or rewritten`);
          }
          if (!anchorConfirmed && row.event === PURGE_EVENT && row.after?.lastEventId === anchor!.lastEventId && row.after?.lastHash === anchor!.lastHash) anchorConfirmed = true;
          expected = row.hash;
          firstId ??= id;
          lastId = id;
          count++;
        }
        if (rows.length < pageSize) break;
      }
      if (!anchorConfirmed) {
        return bad(null, 'unconfirmed_anchor', `the latest purge anchor (${anchor!.id}, up to record ${anchor!.lastEventId}) has no ${PURGE_EVENT} record in the trail`);
      }
      return { ok: true, count, firstId, lastId, head: expected, anchor };
    },
    { isolationLevel: 'repeatable read', readOnly: true },
  );
}
