import type Provider from 'oidc-provider';
import type { Db } from '../db/connect.ts';
import { GRANT_AND_ISSUED, revokeGrantArtifacts } from './adapter.ts';
import { enqueueLogout, noticeFor } from './logout-deliveries.ts';
import { recordEvent } from '../audit/trail.ts';

// Ending a person's sign-in sessions from outside a browser request (an account
// disabled, a password reset): each window the session touched is told by back-channel
// logout, as RP-initiated logout would (queued: logout-deliveries.ts), and what the
// session granted is revoked.

type SessionPayload = { accountId?: string; authorizations?: Record<string, { sid?: string; grantId?: string; persistsLogout?: boolean }> };

// notified: back-channel notifications queued for the windows.
export type Ended = { sessions: number; notified: number };

async function notifyWindows(provider: Provider, db: Db, accountId: string, authorizations: NonNullable<SessionPayload['authorizations']>, ended: Ended) {
  for (const [clientId, { sid }] of Object.entries(authorizations)) {
    const client = await provider.Client.find(clientId);
    if (!client?.backchannelLogoutUri || !sid) continue;
    await enqueueLogout(db, noticeFor(client, accountId, sid));
    ended.notified++;
  }
}

// Every live session of the account (or only the one with uid `only`, or all but
// `except`), and with `everything`
// also the grants and tokens that outlive sessions (offline access): nothing the
// account was given keeps working.
export async function endSessionsOf(provider: Provider, db: Db, accountId: string, options: { everything: boolean; only?: string; except?: string }): Promise<Ended> {
  const ended: Ended = { sessions: 0, notified: 0 };
  const query = db('oidc_artifacts').where({ model: 'Session' }).whereRaw("payload->>'accountId' = ?", [accountId]);
  if (options.only !== undefined) query.where({ uid: options.only });
  if (options.except !== undefined) query.whereNot({ uid: options.except });
  const rows: Array<{ id: string; payload: SessionPayload }> = await query.select('id', 'payload');
  for (const { id, payload } of rows) {
    const authorizations = payload.authorizations ?? {};
    await notifyWindows(provider, db, accountId, authorizations, ended);
    for (const { grantId, persistsLogout } of Object.values(authorizations)) {
      if (grantId && (options.everything || !persistsLogout)) await revokeGrantArtifacts(db, grantId);
    }
    await db('oidc_artifacts').where({ model: 'Session', id }).delete();
    ended.sessions++;
  }
  if (options.everything) {
    await db('oidc_artifacts').whereIn('model', GRANT_AND_ISSUED).whereRaw("payload->>'accountId' = ?", [accountId]).delete();
  }
  return ended;
}

// Sessions that ran out (idle or absolute timeout) go on record as they are cleared
// away, a small batch at a time (each batch holds the audit trail's lock until it
// commits); one node at a time does it, so none is recorded twice.
export async function recordExpiredSessions(db: Db, batch = 50): Promise<number> {
  return db.transaction(async (trx) => {
    const { rows } = (await trx.raw("SELECT pg_try_advisory_xact_lock(hashtext('sme-passport:expired-sessions')) AS got")) as { rows: Array<{ got: boolean }> };
    if (!rows[0]?.got) return 0;
    const expired: Array<{ id: string; uid: string | null; expires_at: Date; account_id: string | null }> = await trx('oidc_artifacts')
      .where({ model: 'Session' })
      .where('expires_at', '<', trx.fn.now())
      .limit(batch)
      .select('id', 'uid', 'expires_at', trx.raw("payload->>'accountId' as account_id"));
    for (const s of expired) {
      if (s.account_id) {
        await recordEvent(trx, {
          actor: { type: 'system' },
          event: 'session.expired',
          target: `account:${s.account_id}`,
          outcome: 'success',
          after: { sessionUid: s.uid, expiredAt: new Date(s.expires_at).toISOString() },
        });
      }
      await trx('oidc_artifacts').where({ model: 'Session', id: s.id }).delete();
    }
    return expired.length;
  });
}
