import crypto from 'node:crypto';
import { isDeepStrictEqual } from 'node:util';
import Provider, { errors, type Adapter, type AdapterPayload } from 'oidc-provider';
import type { Db } from '../db/connect.ts';
import { fixedStatement } from '../db/fixed-statements.ts';
import { groupedWrites } from '../db/grouped-writes.ts';
import { findClientMetadata } from '../windows/clients.ts';
import { jsonTextProblem, textProblem } from '../validation/text.ts';
import { englishText } from '../problems.ts';
import { isJwtRecord, jwtIdOfLookup } from './jwt-access-tokens.ts';
import {
  consumedWhenRead,
  deletedWhenRead,
  forgetInRequest,
  inRequest,
  isResuming,
  rememberInRequest,
  seenInRequest,
  takeConsumedWhenRead,
  takeDeletedWhenRead,
  type Seen,
} from './request-artifacts.ts';

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

// The statements every request makes, as fixed text, past knex (db/fixed-statements.ts).
const LIVE = '(expires_at IS NULL OR expires_at > now())';
const FIND = {
  id: fixedStatement<Row>(`SELECT id, payload, expires_at, consumed_at FROM oidc_artifacts WHERE model = ? AND id = ? AND ${LIVE}`, true),
  uid: fixedStatement<Row>(`SELECT id, payload, expires_at, consumed_at FROM oidc_artifacts WHERE model = ? AND uid = ? AND ${LIVE} LIMIT 1`, true),
  user_code: fixedStatement<Row>(`SELECT id, payload, expires_at, consumed_at FROM oidc_artifacts WHERE model = ? AND user_code = ? AND ${LIVE} LIMIT 1`, true),
};
const UPDATE_ON_CONFLICT = `ON CONFLICT (model, id) DO UPDATE SET payload = EXCLUDED.payload, grant_id = EXCLUDED.grant_id, uid = EXCLUDED.uid, user_code = EXCLUDED.user_code, expires_at = EXCLUDED.expires_at`;
const UPSERT = fixedStatement(`INSERT INTO oidc_artifacts (model, id, payload, grant_id, uid, user_code, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?) ${UPDATE_ON_CONFLICT}`, false);
// Any number of rows, one array per column: one prepared statement whatever the group's size.
const UPSERT_ROWS = fixedStatement(
  `INSERT INTO oidc_artifacts (model, id, payload, grant_id, uid, user_code, expires_at)
     SELECT * FROM unnest(?::text[], ?::text[], ?::jsonb[], ?::text[], ?::text[], ?::text[], ?::timestamptz[]) ${UPDATE_ON_CONFLICT}`,
  false,
);
type ArtifactRow = [model: string, id: string, payload: string, grantId: string | null, uid: string | null, userCode: string | null, expiresAt: Date | null];
// The tokens, codes and sessions that concurrent requests save go in one statement
// (db/grouped-writes.ts); two saves of one artifact in a group make the group fail,
// and they are then written one by one, in order.
const upsertInGroup = groupedWrites<ArtifactRow>(
  (db, rows) => (rows.length === 1 ? UPSERT(db, rows[0]!) : UPSERT_ROWS(db, rows[0]!.map((_, column) => rows.map((row) => row[column] ?? null)))),
  500,
);

type Row = { id: string; payload: Payload; expires_at: Date | null; consumed_at: Date | null };

const seenOf = (row: Row): Seen => ({
  id: row.id,
  payload: JSON.stringify(row.payload),
  expiresAt: row.expires_at ? new Date(row.expires_at).getTime() : null,
  consumedAt: row.consumed_at ? new Date(row.consumed_at).getTime() : null,
});

// A fresh copy each time: the library changes what it is given.
function payloadOf(seen: Seen): Payload {
  const payload = JSON.parse(seen.payload) as Payload;
  if (seen.consumedAt) payload.consumed = Math.floor(seen.consumedAt / 1000);
  return payload;
}

// The models a JWT access token is (jwt-access-tokens.ts).
const JWT_RECORDED = new Set(['AccessToken', 'ClientCredentials']);

// Read more than once in one request; a memory of what was read must not hide a change
// someone else makes to a long-lived artifact (grants, tokens) between two requests,
// and each request starts with none.
const READ_AGAIN_IN_REQUEST = new Set(['Interaction', 'Session']);

// A session re-saved with nothing changed but its sliding expiry is written only once
// the expiry has moved a thirtieth of the lifetime it is given, and at least once a
// minute: the idle timeout may end a session that much early (a minute of the default
// half hour), never more.
const sessionExpirySlackMs = (expiresInSeconds: number) => Math.min(60_000, (expiresInSeconds * 1000) / 30);

// The same session but for the fields the library restamps at every save (the
// database gives keys back in its own order, so compared as values, not text).
const sameButStamps = (a: string, b: string) => {
  const { exp: _e1, iat: _i1, ...x } = JSON.parse(a) as Payload;
  const { exp: _e2, iat: _i2, ...y } = JSON.parse(b) as Payload;
  return isDeepStrictEqual(x, y);
};

// A code, marked consumed as it is read, with the session and grant the token endpoint
// reads next, in one statement; only by a request that presents what the code is bound
// to (its client, redirect_uri and PKCE challenge, as the library then checks them), so
// that a redemption bound to fail (someone who has the code but not its verifier) never
// holds the code, even for a moment: a right one racing it would find it consumed and
// the library would revoke the grant. Expired, consumed or not matching: no row.
const REDEEM_CODE = fixedStatement<RedeemedRow>(`
  WITH code AS (
    UPDATE oidc_artifacts SET consumed_at = now()
     WHERE model = 'AuthorizationCode' AND id = ? AND consumed_at IS NULL AND ${LIVE}
       AND payload->>'clientId' = ? AND payload->>'redirectUri' = ?
       AND (CASE WHEN payload->>'codeChallenge' IS NULL THEN ?::text IS NULL
                 ELSE payload->>'codeChallengeMethod' = 'S256' AND payload->>'codeChallenge' = ? END)
    RETURNING id, payload, grant_id, expires_at)
  SELECT code.id, code.payload, code.expires_at,
         s.id AS session_id, s.payload AS session_payload, s.expires_at AS session_expires_at, s.consumed_at AS session_consumed_at,
         g.id AS grant_row_id, g.payload AS grant_payload, g.expires_at AS grant_expires_at, g.consumed_at AS grant_consumed_at
    FROM code
    LEFT JOIN oidc_artifacts s ON s.model = 'Session' AND s.uid = code.payload->>'sessionUid' AND (s.expires_at IS NULL OR s.expires_at > now())
    LEFT JOIN oidc_artifacts g ON g.model = 'Grant' AND g.id = code.grant_id AND (g.expires_at IS NULL OR g.expires_at > now())`, false);

type RedeemedRow = {
  id: string;
  payload: Payload;
  expires_at: Date | null;
  session_id: string | null;
  session_payload: Payload | null;
  session_expires_at: Date | null;
  session_consumed_at: Date | null;
  grant_row_id: string | null;
  grant_payload: Payload | null;
  grant_expires_at: Date | null;
  grant_consumed_at: Date | null;
};

// The token endpoint reads the code, then (for a code bound to its session) the
// session by uid, then the grant, then consumes the code: here that is one statement,
// the rest is served from the request's memory. Of two concurrent redemptions only one
// UPDATE matches; the other reads the consumed code as before, and the library revokes
// the grant.
async function redeemCode(db: Db, id: string): Promise<Payload | undefined> {
  const presented = presentedForCode();
  if (!presented) return undefined;
  const { clientId, redirectUri, challenge } = presented;
  const [row] = await REDEEM_CODE(db, [id, clientId, redirectUri, challenge, challenge]);
  if (!row) return undefined;
  consumedWhenRead(id);
  const sessionUid = row.payload.sessionUid as string | undefined;
  if (sessionUid) {
    const session = row.session_id ? seenOf({ id: row.session_id, payload: row.session_payload!, expires_at: row.session_expires_at, consumed_at: row.session_consumed_at }) : null;
    rememberInRequest('Session', 'uid', sessionUid, session);
  }
  if (row.payload.grantId) {
    const grant = row.grant_row_id ? seenOf({ id: row.grant_row_id, payload: row.grant_payload!, expires_at: row.grant_expires_at, consumed_at: row.grant_consumed_at }) : null;
    rememberInRequest('Grant', 'id', row.payload.grantId, grant);
  }
  return { ...row.payload };
}

// What the token request being handled presents for a code: its client (authenticated
// by then), redirect_uri (the one registered filled in where it may be left out) and
// the S256 challenge of its code_verifier (null without one).
function presentedForCode(): { clientId: string; redirectUri: string; challenge: string | null } | undefined {
  const oidc = Provider.ctx?.oidc;
  const clientId = oidc?.client?.clientId;
  const redirectUri = oidc?.params?.redirect_uri;
  const verifier = oidc?.params?.code_verifier;
  if (typeof clientId !== 'string' || typeof redirectUri !== 'string') return undefined;
  return { clientId, redirectUri, challenge: typeof verifier === 'string' && verifier ? crypto.hash('sha256', verifier, 'base64url') : null };
}

// A redemption that fails after the code was consumed (its grant gone, a DPoP or
// certificate binding) changes nothing, as in the library: the codes it marked
// consumed are given back.
export async function giveBackCodes(db: Db, ids: string[]): Promise<void> {
  await db(TABLE).where({ model: 'AuthorizationCode' }).whereIn('id', ids).update({ consumed_at: null });
}

function artifactAdapter(db: Db, model: string): Adapter {
  const live = notExpired(db);
  const load = async (by: 'id' | 'uid' | 'user_code', value: string): Promise<Payload | undefined> => {
    // An id, code or token that is not text PostgreSQL can hold cannot be stored: it
    // finds nothing, rather than failing the query.
    if (textProblem(value)) return undefined;
    if (by !== 'user_code') {
      const seen = seenInRequest(model, by, value);
      if (seen !== undefined) {
        // What was brought along with a code is read once; what the library reads again
        // (interactions, sessions) is kept for the request.
        if (!READ_AGAIN_IN_REQUEST.has(model)) forgetInRequest(model, seen?.id ?? value);
        return seen ? payloadOf(seen) : undefined;
      }
    }
    if (model === 'AuthorizationCode' && by === 'id' && inRequest()) {
      const redeemed = await redeemCode(db, value);
      if (redeemed) return redeemed;
    }
    if (model === 'Interaction' && by === 'id' && isResuming()) return takeInteraction(value);
    if (JWT_RECORDED.has(model) && by === 'id') {
      const jti = jwtIdOfLookup(value);
      if (jti !== undefined) return jwtRecord(jti);
    }
    const [row] = await FIND[by](db, [model, value]);
    const seen = row ? seenOf(row) : null;
    if (READ_AGAIN_IN_REQUEST.has(model) && by !== 'user_code') {
      rememberInRequest(model, by, value, seen);
      if (seen && by === 'uid') rememberInRequest(model, 'id', seen.id, seen);
    }
    return seen ? payloadOf(seen) : undefined;
  };
  // A JWT access token's record (jwt-access-tokens.ts), for introspection and
  // revocation, as the opaque token the library knows how to answer.
  const jwtRecord = async (jti: string): Promise<Payload | undefined> => {
    const [row] = await FIND.id(db, [model, jti]);
    if (!row || !isJwtRecord(row.payload)) return undefined;
    const { format: _format, ...payload } = payloadOf(seenOf(row));
    return payload;
  };
  // The resume endpoint reads the interaction it finishes and destroys it before it
  // answers (or saves it again, to switch accounts): read and deleted in one statement.
  const takeInteraction = async (id: string): Promise<Payload | undefined> => {
    const [row]: Row[] = await live(db(TABLE).where({ model, id })).delete().returning(['id', 'payload', 'expires_at', 'consumed_at']);
    if (!row) return undefined;
    deletedWhenRead(id);
    return payloadOf(seenOf(row));
  };

  return {
    async upsert(id: string, payload: AdapterPayload, expiresIn?: number) {
      // What a client sent (a state, a nonce, a login hint) is kept in the payload; text
      // PostgreSQL refuses is the client's error, named, not ours.
      const problem = jsonTextProblem(payload);
      if (problem) throw new errors.InvalidRequest(`a request parameter is not acceptable: ${englishText(problem)}`);
      const text = JSON.stringify(payload);
      const expiresAt = expiresIn ? Date.now() + expiresIn * 1000 : null;
      if (model === 'Session') {
        const loaded = seenInRequest(model, 'id', id);
        const unchanged =
          loaded && loaded.expiresAt !== null && expiresAt !== null && expiresAt - loaded.expiresAt < sessionExpirySlackMs(expiresIn ?? 0) && sameButStamps(loaded.payload, text);
        if (unchanged) return;
      }
      forgetInRequest(model, id);
      if (model === 'Interaction') takeDeletedWhenRead(id);
      const row = {
        model,
        id,
        payload: text,
        grant_id: model === 'Grant' ? id : (payload.grantId ?? null),
        uid: payload.uid ?? null,
        user_code: payload.userCode ?? null,
        expires_at: expiresAt === null ? null : new Date(expiresAt),
      };
      if (model === 'ReplayDetection') {
        // Insert-only: of two concurrent uses of one client assertion, exactly one wins.
        const inserted = await db(TABLE).insert(row).onConflict(['model', 'id']).ignore().returning('id');
        if (inserted.length === 0) throw new errors.InvalidClientAuth('client assertion tokens must only be used once');
        return;
      }
      const values: ArtifactRow = [row.model, row.id, row.payload, row.grant_id, row.uid, row.user_code, row.expires_at];
      await (db.isTransaction ? UPSERT(db, values) : upsertInGroup(db, values));
    },
    find: (id: string) => load('id', id),
    findByUid: (uid: string) => load('uid', uid),
    findByUserCode: (userCode: string) => load('user_code', userCode),
    async destroy(id: string) {
      forgetInRequest(model, id);
      if (model === 'Interaction' && takeDeletedWhenRead(id)) return;
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
      forgetInRequest(model, id);
      if (model === 'AuthorizationCode' && takeConsumedWhenRead(id)) return;
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
