import type { Db } from '../db/connect.ts';
import { rollUpMinuteCounts } from './minute-counts.ts';

// Failed client authentications go on record aggregated per client, address and minute,
// like tokens: a guesser sends thousands, and a record each would let the guessing fill
// the trail (and hold its lock). '' stands for a client_id that names no client.

export type ClientAuthCount = { clientId: string | undefined; windowId: number | null; ip: string; reason: 'invalid_client' | 'limited' };

export async function countClientAuth(db: Db, c: ClientAuthCount): Promise<void> {
  await db.raw(
    `INSERT INTO audit_client_auth_counts (minute, client_id, ip, window_id, reason, count) VALUES (date_trunc('minute', now()), ?, ?, ?, ?, 1)
     ON CONFLICT (minute, client_id, ip, reason) DO UPDATE SET count = audit_client_auth_counts.count + 1`,
    [c.clientId ?? '', c.ip, c.windowId, c.reason],
  );
}

type ClientAuthCountRow = { minute: Date; client_id: string; ip: string; window_id: number | null; reason: string; count: number };

export const rollUpClientAuthCounts = (db: Db): Promise<number> =>
  rollUpMinuteCounts<ClientAuthCountRow>(db, {
    table: 'audit_client_auth_counts',
    key: ['minute', 'client_id', 'ip', 'reason'],
    toEvent: (r) => ({
      actor: r.client_id ? { type: 'client', id: r.client_id } : { type: 'system', id: 'anonymous' },
      ip: r.ip,
      windowId: r.window_id,
      event: 'client_auth',
      ...(r.client_id && { target: `client:${r.client_id}` }),
      outcome: 'failure',
      reason: r.reason,
      after: { minute: new Date(r.minute).toISOString(), count: r.count },
    }),
  });
