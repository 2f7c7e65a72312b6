import type Provider from 'oidc-provider';
import type { Db } from '../db/connect.ts';
import { revokeGrantArtifacts } from './adapter.ts';
import { sendBackchannelLogout } from './internals.ts';

// Ending a person's sign-in sessions from outside a browser request (an account
// disabled, a password reset): each window the session touched is told by back-channel
// logout, as RP-initiated logout would, and what the session granted is revoked.

type SessionPayload = { accountId?: string; authorizations?: Record<string, { sid?: string; grantId?: string; persistsLogout?: boolean }> };

export type Ended = { sessions: number; notified: number; failed: number };

async function notifyWindows(provider: Provider, accountId: string, authorizations: NonNullable<SessionPayload['authorizations']>, ended: Ended) {
  await Promise.all(
    Object.entries(authorizations).map(async ([clientId, { sid }]) => {
      const client = await provider.Client.find(clientId);
      if (!client?.backchannelLogoutUri || !sid) return;
      try {
        await sendBackchannelLogout(client, accountId, sid);
        ended.notified++;
      } catch (err) {
        ended.failed++;
        provider.emit('backchannel.error', undefined, err, client, accountId, sid);
      }
    }),
  );
}

// Every live session of the account (or only the one with uid `only`, or all but
// `except`), and with `everything`
// also the grants and tokens that outlive sessions (offline access): nothing the
// account was given keeps working.
export async function endSessionsOf(provider: Provider, db: Db, accountId: string, options: { everything: boolean; only?: string; except?: string }): Promise<Ended> {
  const ended: Ended = { sessions: 0, notified: 0, failed: 0 };
  const query = db('oidc_artifacts').where({ model: 'Session' }).whereRaw("payload->>'accountId' = ?", [accountId]);
  if (options.only !== undefined) query.where({ uid: options.only });
  if (options.except !== undefined) query.whereNot({ uid: options.except });
  const rows: Array<{ id: string; payload: SessionPayload }> = await query.select('id', 'payload');
  for (const { id, payload } of rows) {
    const authorizations = payload.authorizations ?? {};
    await notifyWindows(provider, accountId, authorizations, ended);
    for (const { grantId, persistsLogout } of Object.values(authorizations)) {
      if (grantId && (options.everything || !persistsLogout)) await revokeGrantArtifacts(db, grantId);
    }
    await db('oidc_artifacts').where({ model: 'Session', id }).delete();
    ended.sessions++;
  }
  if (options.everything) {
    await db('oidc_artifacts').whereIn('model', ['Grant', 'AccessToken', 'RefreshToken', 'AuthorizationCode']).whereRaw("payload->>'accountId' = ?", [accountId]).delete();
  }
  return ended;
}
