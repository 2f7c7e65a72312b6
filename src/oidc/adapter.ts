import { errors, type Adapter, type AdapterPayload } from 'oidc-provider';
import type { Db } from '../db/connect.ts';
import { findClientMetadata } from '../windows/clients.ts';
import { jsonTextProblem, textProblem } from '../validation/text.ts';

// The provider's artifacts (sessions, codes, tokens, grants, interactions) in one
// table. Clients are not artifacts: they come from the windows module.

type Payload = Record<string, unknown> & { grantId?: string; uid?: string; userCode?: string; consumed?: number };

const TABLE = 'oidc_artifacts';

// Artifacts whose second use is an attack: a lost race to consume one revokes its grant.
const SINGLE_USE = new Set(['AuthorizationCode', 'RefreshToken', 'DeviceCode', 'BackchannelAuthenticationRequest']);

const notExpired = (db: Db) => (q: ReturnType<Db>) => q.where((w) => w.whereNull('expires_at').orWhere('expires_at', '>', db.fn.now()));

// What a grant issues (oidc-provider's grantable models, lib/adapters/memory_adapter.js).
// Interactions and sessions also carry a grant id, but are not the grant's: an
// interaction resuming after the grant was revoked (switching account) must survive it.
const ISSUED_UNDER_GRANT = ['AccessToken', 'AuthorizationCode', 'RefreshToken', 'DeviceCode', 'BackchannelAuthenticationRequest', 'PreAuthorizedCode'];
export const GRANT_AND_ISSUED = ['Grant', ...ISSUED_UNDER_GRANT];

// The grant and everything issued under it.
export async function revokeGrantArtifacts(db: Db, grantId: string): Promise<void> {
  await db(TABLE).where({ grant_id: grantId }).whereIn('model', GRANT_AND_ISSUED).delete();
}

function artifactAdapter(db: Db, model: string): Adapter {
  const live = notExpired(db);
  const load = async (where: Record<string, string>): Promise<Payload | undefined> => {
    // An id, code or token that is not text PostgreSQL can hold cannot be stored: it
    // finds nothing, rather than failing the query.
    if (Object.values(where).some((value) => textProblem(value))) return undefined;
    const row = await live(db(TABLE).where({ model, ...where })).first('payload', 'consumed_at');
    if (!row) return undefined;
    const payload = row.payload as Payload;
    if (row.consumed_at) payload.consumed = Math.floor(new Date(row.consumed_at).getTime() / 1000);
    return payload;
  };

  return {
    async upsert(id: string, payload: AdapterPayload, expiresIn?: number) {
      // What a client sent (a state, a nonce, a login hint) is kept in the payload; text
      // PostgreSQL refuses is the client's error, named, not ours.
      const problem = jsonTextProblem(payload);
      if (problem) throw new errors.InvalidRequest(`a request parameter is not acceptable: ${problem}`);
      const row = {
        model,
        id,
        payload: JSON.stringify(payload),
        grant_id: model === 'Grant' ? id : (payload.grantId ?? null),
        uid: payload.uid ?? null,
        user_code: payload.userCode ?? null,
        expires_at: expiresIn ? new Date(Date.now() + expiresIn * 1000) : null,
      };
      if (model === 'ReplayDetection') {
        // Insert-only: of two concurrent uses of one client assertion, exactly one wins.
        const inserted = await db(TABLE).insert(row).onConflict(['model', 'id']).ignore().returning('id');
        if (inserted.length === 0) throw new errors.InvalidClientAuth('client assertion tokens must only be used once');
        return;
      }
      await db(TABLE).insert(row).onConflict(['model', 'id']).merge(['payload', 'grant_id', 'uid', 'user_code', 'expires_at']);
    },
    find: (id: string) => load({ id }),
    findByUid: (uid: string) => load({ uid }),
    findByUserCode: (userCode: string) => load({ user_code: userCode }),
    async destroy(id: string) {
      await db(TABLE).where({ model, id }).delete();
    },
    // The library calls this on each grantable model's adapter in turn, and destroys
    // the grant itself: each deletes its own model's rows only.
    async revokeByGrantId(grantId: string) {
      await db(TABLE).where({ model, grant_id: grantId }).delete();
    },
    // Atomic: the library checks "consumed" before calling this, but two parallel
    // redemptions both pass that check; only one UPDATE can match.
    async consume(id: string) {
      const rows = await db(TABLE).where({ model, id }).whereNull('consumed_at').update({ consumed_at: db.fn.now() }).returning('grant_id');
      if (rows.length > 0) return;
      if (SINGLE_USE.has(model)) {
        const row = await db(TABLE).where({ model, id }).first('grant_id');
        if (row?.grant_id) await revokeGrantArtifacts(db, row.grant_id);
        throw new errors.InvalidGrant(`${model === 'RefreshToken' ? 'refresh token' : 'grant'} already used`);
      }
    },
  };
}

function clientAdapter(db: Db): Adapter {
  const readOnly = async () => {
    throw new Error('clients are managed through the windows module, not the provider');
  };
  return {
    find: async (id: string) => (textProblem(id) ? undefined : ((await findClientMetadata(db, id)) as AdapterPayload | undefined)),
    upsert: readOnly,
    destroy: readOnly,
    consume: readOnly,
    revokeByGrantId: readOnly,
    findByUid: readOnly,
    findByUserCode: readOnly,
  };
}

export function createAdapter(db: Db) {
  return (model: string) => (model === 'Client' ? clientAdapter(db) : artifactAdapter(db, model));
}

// Nothing in the library deletes expired rows. Any node may run this; it is idempotent.
// Expired sessions are left to recordExpiredSessions (sessions.ts), which puts them on
// record as it deletes them.
export async function purgeExpiredArtifacts(db: Db): Promise<number> {
  return db(TABLE).where('expires_at', '<', db.fn.now()).whereNot({ model: 'Session' }).delete();
}

// The uids of sessions that still exist, as a subquery for other modules' clean-ups.
export const liveSessionUids = (db: Db) => db(TABLE).where({ model: 'Session' }).whereNotNull('uid').select('uid');
