import type { Db } from '../db/connect.ts';
import { rollUpMinuteCounts } from './minute-counts.ts';
import { addCount, type CountTable } from './pending-counts.ts';

// Failed client authentications go on record aggregated per client, address and minute,
// like tokens: a guesser sends thousands, and a record each would let the guessing fill
// the trail (and hold its lock). '' stands for a client_id that names no client. Counted
// in memory and written once a second (pending-counts.ts).

export type ClientAuthCount = { clientId: string | undefined; windowId: number | null; ip: string; reason: 'invalid_client' | 'limited' };

const CLIENT_AUTH_COUNTS: CountTable = {
  table: 'audit_client_auth_counts',
  columns: { client_id: 'text', ip: 'text', window_id: 'integer', reason: 'text' },
  key: ['client_id', 'ip', 'reason'],
};

export const countClientAuth = (db: Db, c: ClientAuthCount): Promise<void> =>
  addCount(db, CLIENT_AUTH_COUNTS, { client_id: c.clientId ?? '', ip: c.ip, window_id: c.windowId, reason: c.reason });

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
