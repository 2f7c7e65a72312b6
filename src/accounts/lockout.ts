import type { Db } from '../db/connect.ts';
import { sha256 } from '../crypto/secrets.ts';

// After `threshold` consecutive failures a sign-in key is locked for `seconds`
// (MLPS: limit attempts, lock). The state is in PostgreSQL so every node counts the
// same failures. A typed identifier with no account is counted and locked the same
// way, so the answers never tell whether an account exists.

export type LockoutPolicy = { threshold: number; seconds: number };

export const lockKeyFor = (accountId: string | undefined, identifier: string) =>
  accountId ? `account:${accountId}` : `identifier:${sha256(identifier.trim().toLowerCase())}`;

export async function lockedUntil(db: Db, key: string): Promise<Date | undefined> {
  const row = await db('sign_in_throttle').where({ key }).where('locked_until', '>', db.fn.now()).first('locked_until');
  return row?.locked_until ? new Date(row.locked_until) : undefined;
}

// Counts a failure; returns the lock's end when this failure locks the key. A lock
// that has run out starts the count again.
export async function recordFailure(db: Db, key: string, policy: LockoutPolicy): Promise<Date | undefined> {
  const { rows } = (await db.raw(
    `INSERT INTO sign_in_throttle AS t (key, failures, updated_at) VALUES (?, 1, now())
     ON CONFLICT (key) DO UPDATE SET
       failures = CASE WHEN t.locked_until IS NULL THEN t.failures + 1 ELSE 1 END,
       locked_until = NULL,
       updated_at = now()
     RETURNING failures`,
    [key],
  )) as { rows: Array<{ failures: number }> };
  if (rows[0]!.failures < policy.threshold) return undefined;
  const [locked] = await db('sign_in_throttle')
    .where({ key })
    .update({ failures: 0, locked_until: db.raw("now() + ? * interval '1 second'", [policy.seconds]), updated_at: db.fn.now() })
    .returning('locked_until');
  return new Date(locked.locked_until);
}

export async function clearFailures(db: Db, key: string): Promise<void> {
  await db('sign_in_throttle').where({ key }).delete();
}

// Rows of keys neither locked nor failed for a day carry nothing worth keeping.
export async function purgeStaleThrottles(db: Db): Promise<number> {
  return db('sign_in_throttle')
    .where('updated_at', '<', db.raw("now() - interval '1 day'"))
    .where((q) => q.whereNull('locked_until').orWhere('locked_until', '<', db.fn.now()))
    .delete();
}
