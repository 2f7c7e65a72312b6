import type { Db } from '../db/connect.ts';
import { recordEvent } from './trail.ts';

// Tokens go on record aggregated per client, per minute: a record each would cost the
// token endpoint a serialised audit write per request.

export type TokenCount = { clientId: string; windowId: number | null; action: 'issued' | 'revoked'; kind: string };

export async function countToken(db: Db, t: TokenCount): Promise<void> {
  await db.raw(
    `INSERT INTO audit_token_counts (minute, client_id, window_id, action, kind, count) VALUES (date_trunc('minute', now()), ?, ?, ?, ?, 1)
     ON CONFLICT (minute, client_id, action, kind) DO UPDATE SET count = audit_token_counts.count + 1`,
    [t.clientId, t.windowId, t.action, t.kind],
  );
}

// Minutes that are over become audit records, a small batch per transaction (each holds
// the audit trail's lock until it commits). Any node may run it; rows another node is
// rolling up are skipped.
export async function rollUpTokenCounts(db: Db, batch = 50): Promise<number> {
  let total = 0;
  for (let done = await rollUpBatch(db, batch); done > 0; done = await rollUpBatch(db, batch)) total += done;
  return total;
}

async function rollUpBatch(db: Db, batch: number): Promise<number> {
  return db.transaction(async (trx) => {
    const rows: Array<{ minute: Date; client_id: string; window_id: number | null; action: string; kind: string; count: number }> = await trx('audit_token_counts')
      .where('minute', '<', trx.raw("date_trunc('minute', now())"))
      .orderBy('minute')
      .orderBy('client_id')
      .limit(batch)
      .forUpdate()
      .skipLocked()
      .select();
    for (const r of rows) {
      await recordEvent(trx, {
        actor: { type: 'client', id: r.client_id },
        windowId: r.window_id,
        event: `token.${r.action}`,
        target: `client:${r.client_id}`,
        outcome: 'success',
        after: { minute: new Date(r.minute).toISOString(), kind: r.kind, count: r.count },
      });
      await trx('audit_token_counts').where({ minute: r.minute, client_id: r.client_id, action: r.action, kind: r.kind }).delete();
    }
    return rows.length;
  });
}
