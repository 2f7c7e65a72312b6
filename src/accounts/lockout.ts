import type { Knex } from 'knex';
import type { Db } from '../db/connect.ts';
import type { Alongside } from '../audit/trail.ts';
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

// The count of beginAttempt, on the one key that `keys` yields (a row source with a
// column `key`; its bindings go in the middle, see countBindings). Returns locked_until,
// or no row when the key was locked when the upsert looked.
const countAttempt = (keys: string) => `
  INSERT INTO sign_in_throttle AS t (key, failures, locked_until, updated_at)
    SELECT key, 1, CASE WHEN 1 >= ? THEN now() + ? * interval '1 second' END, now() FROM ${keys}
  ON CONFLICT (key) DO UPDATE SET
    failures = CASE WHEN t.locked_until IS NULL THEN t.failures + 1 ELSE 1 END,
    locked_until = CASE WHEN (CASE WHEN t.locked_until IS NULL THEN t.failures + 1 ELSE 1 END) >= ?
                        THEN now() + ? * interval '1 second' END,
    updated_at = now()
  WHERE t.locked_until IS NULL OR t.locked_until <= now()
  RETURNING locked_until`;
const countBindings = (policy: LockoutPolicy, keyBindings: Knex.Value[]) => [policy.threshold, policy.seconds, ...keyBindings, policy.threshold, policy.seconds];

const admitted = (lockedUntil: Date | null): Attempt => ({ admitted: true, locksAt: lockedUntil ? new Date(lockedUntil) : undefined });

// Counts an attempt *before* its credential is checked, in one statement that every node
// and every concurrent request serialises on (the row lock of the upsert): so however
// many attempts arrive at once, at most `threshold` of them are ever checked, and the
// lock, once set, is not undone by anything but a success or its end. A locked key is
// left as it is. A lock that has run out starts the count again.
export async function beginAttempt(db: Db, key: string, policy: LockoutPolicy): Promise<Attempt> {
  for (;;) {
    const { rows } = (await db.raw(countAttempt('(VALUES (?::text)) AS k (key)'), countBindings(policy, [key]))) as { rows: Array<{ locked_until: Date | null }> };
    if (rows[0]) return admitted(rows[0].locked_until);
    const refused = await stillLocked(db, key);
    if (refused) return refused;
  }
}

// No row came back from the count: the key was locked when the upsert looked. Unless the
// lock has ended (or a success cleared it) in the meantime, that is the answer.
async function stillLocked(db: Db, key: string): Promise<Attempt | undefined> {
  const locked = await db('sign_in_throttle').where({ key }).where('locked_until', '>', db.fn.now()).first('locked_until');
  return locked ? { admitted: false, lockedUntil: new Date(locked.locked_until) } : undefined;
}

// beginAttempt on the key of the account a person typed (lockKeyFor), with the account
// read in the same statement: `account` selects the accounts row that `identifier`
// names, or none. The count is the same upsert as beginAttempt's.
export async function beginAttemptOfAccount<Row extends { id: string }>(
  db: Db,
  account: Knex.QueryBuilder,
  identifier: string,
  policy: LockoutPolicy,
): Promise<{ row: Row | undefined; attempt: Attempt }> {
  const { rows } = (await db.raw(
    `WITH a AS (?),
          t AS (${countAttempt("(SELECT coalesce((SELECT 'account:' || id FROM a), ?::text) AS key) AS k")})
     SELECT a.*, (SELECT count(*) FROM t)::int AS attempt_counted, (SELECT locked_until FROM t) AS attempt_locks_at
       FROM (SELECT 1) AS one LEFT JOIN a ON true`,
    [account.clone().limit(1), ...countBindings(policy, [lockKeyFor(undefined, identifier)])],
  )) as { rows: Array<Row & { attempt_counted: number; attempt_locks_at: Date | null }> };
  const { attempt_counted, attempt_locks_at, ...found } = rows[0]!;
  const row = found.id === null ? undefined : (found as unknown as Row);
  if (attempt_counted) return { row, attempt: admitted(attempt_locks_at) };
  const key = lockKeyFor(row?.id, identifier);
  return { row, attempt: (await stillLocked(db, key)) ?? (await beginAttempt(db, key, policy)) };
}

// A credential proved right (or an administrator lifts the locks): the count starts again.
export async function clearFailures(db: Db, ...keys: string[]): Promise<void> {
  await db('sign_in_throttle').whereIn('key', keys).delete();
}

// When the latest lock on any of the keys ends, if one is on now.
export async function lockedUntil(db: Db, ...keys: string[]): Promise<Date | undefined> {
  const row = await db('sign_in_throttle').whereIn('key', keys).where('locked_until', '>', db.fn.now()).max({ until: 'locked_until' }).first();
  return row?.until ? new Date(row.until) : undefined;
}

// clearFailures of one key as a write to go with the audit record of the success.
export const failuresCleared = (key: string): Alongside => ({ sql: 'DELETE FROM sign_in_throttle WHERE key = ?', bindings: [key] });

// Rows of keys neither locked nor failed for a day carry nothing worth keeping.
export async function purgeStaleThrottles(db: Db): Promise<number> {
  return db('sign_in_throttle')
    .where('updated_at', '<', db.raw("now() - interval '1 day'"))
    .where((q) => q.whereNull('locked_until').orWhere('locked_until', '<', db.fn.now()))
    .delete();
}
