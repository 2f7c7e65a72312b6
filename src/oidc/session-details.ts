import type { Db } from '../db/connect.ts';
import { writeAlongside, type Alongside } from '../audit/trail.ts';

// Device, address and times of each sign-in session, recorded when the session
// authorizes a window (with the audit record of it, where there is one), at most once a
// minute per session: each node remembers when it
// last wrote a session's details and issues no statement at all within the minute (the
// database keeps the minute across nodes). The memory is bounded; a session forgotten
// early is written once more, which the database's own minute check makes harmless.

export type SessionDetails = { sessionUid: string; ip: string | null; userAgent: string | null; signedInAt: Date; lastSeenAt: Date; clientIds: string[] };

const WRITE_EVERY_MS = 60_000;
const REMEMBERED_SESSIONS = 10_000;
const lastWrites = new WeakMap<Db, Map<string, number>>();

type SessionUse = { sessionUid: string; accountId: string; ip: string; userAgent: string | undefined };

// The write of a session's details when one is due, to go with the audit record of the
// authorization (audit/trail.ts): `failed` is called if it did not land, so that the next
// use writes again.
export function sessionUseDue(db: Db, s: SessionUse): { write: Alongside; failed(): void } | undefined {
  let written = lastWrites.get(db);
  if (!written) lastWrites.set(db, (written = new Map()));
  const now = Date.now();
  const last = written.get(s.sessionUid);
  if (last !== undefined && now - last < WRITE_EVERY_MS) return undefined;
  // Oldest write first: re-inserted on each write, the first key is the one to forget.
  written.delete(s.sessionUid);
  written.set(s.sessionUid, now);
  if (written.size > REMEMBERED_SESSIONS) written.delete(written.keys().next().value!);
  const remembered = written;
  return {
    write: {
      sql: `INSERT INTO session_details AS d (session_uid, account_id, ip, user_agent) VALUES (?, ?, ?, ?)
            ON CONFLICT (session_uid) DO UPDATE SET last_seen_at = now(), ip = EXCLUDED.ip
            WHERE d.last_seen_at < now() - interval '1 minute'`,
      bindings: [s.sessionUid, s.accountId, s.ip, s.userAgent?.slice(0, 300) ?? null],
    },
    failed() {
      if (remembered.get(s.sessionUid) === now) remembered.delete(s.sessionUid);
    },
  };
}

// The same, where no record goes with the use: a statement of its own.
export async function recordSessionUse(db: Db, s: SessionUse): Promise<void> {
  const due = sessionUseDue(db, s);
  if (!due) return;
  await writeAlongside(db, [due.write]).catch((err: unknown) => {
    due.failed();
    throw err;
  });
}

// The account's live sessions, newest first, with the clients each has signed in to.
export async function sessionsOf(db: Db, accountId: string): Promise<SessionDetails[]> {
  const rows = await db('oidc_artifacts as s')
    .leftJoin('session_details as d', 'd.session_uid', 's.uid')
    .where('s.model', 'Session')
    .whereRaw("s.payload->>'accountId' = ?", [accountId])
    .where((q) => q.whereNull('s.expires_at').orWhere('s.expires_at', '>', db.fn.now()))
    .orderBy('d.last_seen_at', 'desc')
    .select('s.uid', 's.payload', 'd.ip', 'd.user_agent', 'd.signed_in_at', 'd.last_seen_at');
  return rows.map((r) => ({
    sessionUid: r.uid,
    ip: r.ip,
    userAgent: r.user_agent,
    signedInAt: r.signed_in_at ?? new Date((r.payload.loginTs ?? 0) * 1000),
    lastSeenAt: r.last_seen_at ?? new Date((r.payload.loginTs ?? 0) * 1000),
    clientIds: Object.keys(r.payload.authorizations ?? {}),
  }));
}

// Grants (the sites a person has signed in to) that still exist.
export async function grantsOf(db: Db, accountId: string): Promise<Array<{ grantId: string; clientId: string; scope: string }>> {
  const rows = await db('oidc_artifacts')
    .where({ model: 'Grant' })
    .whereRaw("payload->>'accountId' = ?", [accountId])
    .where((q) => q.whereNull('expires_at').orWhere('expires_at', '>', db.fn.now()))
    .select('id', 'payload');
  return rows.map((r) => ({ grantId: r.id, clientId: r.payload.clientId, scope: r.payload.openid?.scope ?? '' }));
}

export async function purgeEndedSessionDetails(db: Db): Promise<number> {
  return db('session_details')
    .whereNotIn('session_uid', db('oidc_artifacts').where({ model: 'Session' }).whereNotNull('uid').select('uid'))
    .delete();
}
