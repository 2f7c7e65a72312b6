import type { Db } from '../db/connect.ts';
import { sha256 } from '../crypto/secrets.ts';

// After `threshold` attempts without a success a sign-in key is locked for `seconds`
// (MLPS: limit attempts, lock). The state is in PostgreSQL so every node counts the
// same attempts; `failures` counts attempts since the last success, those still being
// checked included. A typed identifier with no account is counted and locked the same
// way, so the answers never tell whether an account exists.

export type LockoutPolicy = { threshold: number; seconds: number };

export const lockKeyFor = (accountId: string | undefined, identifier: string) =>
  accountId ? `account:${accountId}` : `identifier:${sha256(identifier.trim().toLowerCase())}`;

// The second factor counts on a key of its own: a right password must not lift the lock
// of the codes, or whoever knows the password could try codes without end.
export const secondFactorLockKey = (accountId: string) => `mfa:account:${accountId}`;

// What the gate says about one attempt. Admitted: check the credential; `locksAt` is set
// when this attempt reached the threshold, so the key is locked from now on unless the
// credential proves right. Refused: the key is locked; the credential is not looked at.
export type Attempt = { admitted: true; locksAt: Date | undefined } | { admitted: false; lockedUntil: Date };

// Counts an attempt *before* its credential is checked, in one statement that every node
// and every concurrent request serialises on (the row lock of the upsert): so however
// many attempts arrive at once, at most `threshold` of them are ever checked, and the
// lock, once set, is not undone by anything but a success or its end. A locked key is
// left as it is. A lock that has run out starts the count again.
export async function beginAttempt(db: Db, key: string, policy: LockoutPolicy): Promise<Attempt> {
  for (;;) {
    const { rows } = (await db.raw(
      `INSERT INTO sign_in_throttle AS t (key, failures, locked_until, updated_at)
         VALUES (:key, 1, CASE WHEN 1 >= :threshold THEN now() + :seconds * interval '1 second' END, now())
       ON CONFLICT (key) DO UPDATE SET
         failures = CASE WHEN t.locked_until IS NULL THEN t.failures + 1 ELSE 1 END,
         locked_until = CASE WHEN (CASE WHEN t.locked_until IS NULL THEN t.failures + 1 ELSE 1 END) >= :threshold
                             THEN now() + :seconds * interval '1 second' END,
         updated_at = now()
       WHERE t.locked_until IS NULL OR t.locked_until <= now()
       RETURNING locked_until`,
      { key, threshold: policy.threshold, seconds: policy.seconds },
    )) as { rows: Array<{ locked_until: Date | null }> };
    if (rows[0]) return { admitted: true, locksAt: rows[0].locked_until ? new Date(rows[0].locked_until) : undefined };
    // No row came back: the key was locked when the upsert looked. Unless the lock has
    // ended (or a success cleared it) in the meantime, that is the answer.
    const locked = await db('sign_in_throttle').where({ key }).where('locked_until', '>', db.fn.now()).first('locked_until');
    if (locked) return { admitted: false, lockedUntil: new Date(locked.locked_until) };
  }
}

// A credential proved right (or an administrator lifts the locks): the count starts again.
export async function clearFailures(db: Db, ...keys: string[]): Promise<void> {
  await db('sign_in_throttle').whereIn('key', keys).delete();
}

// Rows of keys neither locked nor failed for a day carry nothing worth keeping.
export async function purgeStaleThrottles(db: Db): Promise<number> {
  return db('sign_in_throttle')
    .where('updated_at', '<', db.raw("now() - interval '1 day'"))
    .where((q) => q.whereNull('locked_until').orWhere('locked_until', '<', db.fn.now()))
    .delete();
}
