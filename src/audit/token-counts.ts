import type { Db } from '../db/connect.ts';
import { rollUpMinuteCounts } from './minute-counts.ts';

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
