import type { Db } from '../db/connect.ts';
import { rollUpMinuteCounts } from './minute-counts.ts';
import { addCount, type CountTable } from './pending-counts.ts';

// Tokens go on record aggregated per client, per minute: a record each would cost the
// token endpoint a serialised audit write per request. They are counted in memory and
// written once a second (pending-counts.ts).

export type TokenCount = { clientId: string; windowId: number | null; action: 'issued' | 'revoked'; kind: string };

const TOKEN_COUNTS: CountTable = {
  table: 'audit_token_counts',
  columns: { client_id: 'text', window_id: 'integer', action: 'text', kind: 'text' },
  key: ['client_id', 'action', 'kind'],
};

export const countToken = (db: Db, t: TokenCount): Promise<void> =>
  addCount(db, TOKEN_COUNTS, { client_id: t.clientId, window_id: t.windowId, action: t.action, kind: t.kind });

type TokenCountRow = { minute: Date; client_id: string; window_id: number | null; action: string; kind: string; count: number };

// Minutes that are over become audit records (minute-counts.ts).
export const rollUpTokenCounts = (db: Db): Promise<number> =>
  rollUpMinuteCounts<TokenCountRow>(db, {
    table: 'audit_token_counts',
    key: ['minute', 'client_id', 'action', 'kind'],
    toEvent: (r) => ({
      actor: { type: 'client', id: r.client_id },
      windowId: r.window_id,
      event: `token.${r.action}`,
      target: `client:${r.client_id}`,
      outcome: 'success',
      after: { minute: new Date(r.minute).toISOString(), kind: r.kind, count: r.count },
    }),
  });
