import { z } from 'zod';
import type { Db } from '../db/connect.ts';
import { cachedRead, tablesChanged } from '../db/cache.ts';
import { ConflictError, fieldIssue, InputError, isUniqueViolation, parseInput } from '../errors.ts';
import { text } from '../validation/text.ts';
import { problemCode } from '../problems.ts';
import { writeAlongside, type Alongside } from '../audit/trail.ts';
import { hashPassword, needsRehash, PasswordHashingBusy, reserveHashing, verifyPassword } from './passwords.ts';
import { passwordExpired, passwordProblem, type PasswordPolicy } from './password-policy.ts';
import { beginAttemptOfAccount, failuresCleared, lockKeyFor, type Attempt, type LockoutPolicy } from './lockout.ts';
import { isUuid } from '../validation/uuid.ts';

export type Account = {
  id: string;
  username: string;
  displayName: string;
  phone: string | null;
  email: string | null;
  phoneVerified: boolean;
  emailVerified: boolean;
  status: 'active' | 'disabled';
  updatedAt: Date;
};

type AccountRow = {
  id: string;
  username: string;
  display_name: string;
  phone: string | null;
  email: string | null;
  phone_verified: boolean;
  email_verified: boolean;
  password_hash: string;
  password_changed_at: Date;
  password_must_change: boolean;
  status: 'active' | 'disabled';
  updated_at: Date;
};

const toAccount = (r: AccountRow): Account => ({
  id: r.id,
  username: r.username,
  displayName: r.display_name,
  phone: r.phone,
  email: r.email,
  phoneVerified: r.phone_verified,
  emailVerified: r.email_verified,
  status: r.status,
  updatedAt: r.updated_at,
});

// Mainland mobile numbers, stored as 11 digits; +86 / 86 prefixes are accepted on input.
const PHONE = /^(?:\+?86)?(1[3-9]\d{9})$/;
export const normalisePhone = (value: string): string | undefined => PHONE.exec(value.replace(/[\s-]/g, ''))?.[1];

// Contacts shown to someone other than their owner (and on the owner's own pages, the phone).
export const maskPhone = (phone: string) => `${phone.slice(0, 3)}****${phone.slice(-4)}`;
export const maskEmail = (email: string) => `${email.slice(0, 1)}***${email.slice(email.lastIndexOf('@'))}`;

// A phone number or an email address a code can be sent to, normalised as stored.
export function parseContact(value: string): { channel: 'sms' | 'email'; destination: string } | undefined {
  const phone = normalisePhone(value);
  if (phone) return { channel: 'sms', destination: phone };
  const email = z.email().safeParse(value.trim().toLowerCase());
  return email.success && email.data.length <= 254 ? { channel: 'email', destination: email.data } : undefined;
}

// What a person types to name their account: a username, a phone number or an email.
export const identifierSchema = text({ max: 254 });

// A username starts with a letter, so it can never be mistaken for a phone number or email.
export const usernameSchema = z
  .string()
  .trim()
  .regex(/^[A-Za-z][A-Za-z0-9_.-]{2,31}$/, problemCode('username'));

export const newAccountSchema = z.strictObject({
  username: usernameSchema,
  displayName: text({ max: 100 }).min(1, problemCode('not_empty')),
  phone: z
    .string()
    .transform((v, ctx) => normalisePhone(v) ?? (ctx.addIssue({ code: 'custom', message: problemCode('phone') }), z.NEVER))
    .optional(),
  email: z.email(problemCode('email')).max(254).transform((v) => v.toLowerCase()).optional(),
  password: z.string(),
});

export type NewAccount = z.input<typeof newAccountSchema>;

const personalValues = (a: { username: string; phone?: string | null; email?: string | null }) => [a.username, a.phone, a.email?.split('@')[0]];

// `proven` names the contact the person proved with a code while registering.
export async function createAccount(db: Db, input: NewAccount, policy: PasswordPolicy, proven?: 'phone' | 'email'): Promise<Account> {
  const a = parseInput(newAccountSchema, input);
  const problem = passwordProblem(policy, a.password, personalValues(a));
  if (problem) throw InputError.of([fieldIssue('password', problem)]);
  const passwordHash = await hashPassword(a.password);
  try {
    const [row] = await db<AccountRow>('accounts')
      .insert({
        username: a.username,
        display_name: a.displayName,
        phone: a.phone ?? null,
        email: a.email ?? null,
        phone_verified: proven === 'phone' && a.phone !== undefined,
        email_verified: proven === 'email' && a.email !== undefined,
        password_hash: passwordHash,
      })
      .returning('*');
    tablesChanged(db, 'accounts');
    return toAccount(row!);
  } catch (err) {
    if (!isUniqueViolation(err)) throw err;
    const detail = String((err as { constraint?: string }).constraint ?? '');
    const field = detail.includes('phone') ? 'phone' : detail.includes('email') ? 'email' : 'username';
    throw new ConflictError(field, 'contact_taken');
  }
}

function identifierQuery(db: Db, identifier: string) {
  const value = identifier.trim();
  const phone = normalisePhone(value);
  if (phone) return db<AccountRow>('accounts').where({ phone });
  if (value.includes('@')) return db<AccountRow>('accounts').whereRaw('lower(email) = ?', [value.toLowerCase()]);
  return db<AccountRow>('accounts').whereRaw('lower(username) = ?', [value.toLowerCase()]);
}

// The provider finds the account of every token, code and session: cached per node
// (src/db/cache.ts), so a disabled account still stops at its next request.
const cachedAccount = cachedRead({
  name: 'account',
  tables: ['accounts'],
  max: 10_000,
  key: (id: string) => id,
  load: async (db: Db, id: string) => {
    const row = await db<AccountRow>('accounts').where({ id }).first();
    return row && toAccount(row);
  },
});

export async function findAccount(db: Db, id: string): Promise<Account | undefined> {
  if (!isUuid(id)) return undefined;
  return cachedAccount(db, id);
}

// By username, phone number or email, as a person types them at sign-in.
export async function findAccountByIdentifier(db: Db, identifier: string): Promise<Account | undefined> {
  if (!identifier.trim()) return undefined;
  const row = await identifierQuery(db, identifier).first();
  return row && toAccount(row);
}

// Several at once, in one query; ids that are not account ids (not UUIDs) match none.
export async function findAccounts(db: Db, ids: readonly string[]): Promise<Account[]> {
  const valid = [...new Set(ids.filter(isUuid))];
  if (valid.length === 0) return [];
  return (await db<AccountRow>('accounts').whereIn('id', valid)).map(toAccount);
}

export async function findAccountByIdOrUsername(db: Db, value: string): Promise<Account | undefined> {
  return (await findAccount(db, value)) ?? (await identifierQuery(db, value).first().then((r) => r && toAccount(r)));
}

export async function setDisplayName(db: Db, id: string, displayName: string): Promise<void> {
  const { displayName: name } = parseInput(newAccountSchema.pick({ displayName: true }), { displayName });
  await db('accounts').where({ id }).update({ display_name: name, updated_at: db.fn.now() });
  tablesChanged(db, 'accounts');
}

// A phone number or email address the person has just proven with a code.
export async function setContact(db: Db, id: string, contact: { channel: 'sms' | 'email'; destination: string }): Promise<void> {
  const column = contact.channel === 'sms' ? 'phone' : 'email';
  try {
    await db('accounts').where({ id }).update({ [column]: contact.destination, [`${column}_verified`]: true, updated_at: db.fn.now() });
    tablesChanged(db, 'accounts');
  } catch (err) {
    if (isUniqueViolation(err)) throw new ConflictError(column, 'contact_taken');
    throw err;
  }
}

export async function setAccountStatus(db: Db, id: string, status: Account['status']): Promise<void> {
  await db('accounts').where({ id }).update({ status, updated_at: db.fn.now() });
  tablesChanged(db, 'accounts');
}

// `reason` and `accountId` are for the audit trail only: the person is told the same
// thing whatever the reason.
export type SignInFailure = 'unknown_account' | 'wrong_password' | 'account_disabled';
// Why the password must be changed before the sign-in completes: past the policy's
// maximum age (mlps), or handed over by someone else to be used once.
export type PasswordChange = 'expired' | 'one_time';
export type SignInResult =
  // clear: the reset of the failure count, when the caller asked to write it itself
  // (clearWithRecord), else empty. Written alongside the record of the sign-in, or on its
  // own (audit/trail.ts), before the person hears of the success.
  | { outcome: 'signed-in'; account: Account; passwordChange: PasswordChange | undefined; clear: Alongside[] }
  | { outcome: 'locked'; until: Date; accountId: string | undefined; reason?: SignInFailure } // with reason: this failure locked it
  | { outcome: 'failed'; reason: SignInFailure; accountId: string | undefined };

export type SignInRules = { lockout: LockoutPolicy; passwords: PasswordPolicy };

// Unknown identifier, wrong password and disabled account give the same answer in the
// same time, and lock alike after repeated failures: the caller cannot tell them apart.
// The attempt is counted before the password is checked (lockout.ts), and a locked key
// is answered without looking at the password.
export async function signInWithPassword(db: Db, identifier: string, password: string, rules: SignInRules, options: { clearWithRecord?: boolean } = {}): Promise<SignInResult> {
  // A place in the node's hashing queue first: when there is none, nothing is read or counted.
  const place = reserveHashing();
  let row: AccountRow | undefined;
  let read: ReturnType<typeof cachedAccount.otherRead>;
  let ok: boolean;
  let attempt: Attempt;
  try {
    const accountQuery = identifier.trim() ? identifierQuery(db, identifier) : db<AccountRow>('accounts').whereRaw('false');
    read = cachedAccount.otherRead(db);
    ({ row, attempt } = await beginAttemptOfAccount<AccountRow>(db, accountQuery, identifier, rules.lockout));
    if (!attempt.admitted) return { outcome: 'locked', until: attempt.lockedUntil, accountId: row?.id };
    ok = await verifyPassword(row?.password_hash, password, place);
  } finally {
    place.release();
  }
  if (!row || !ok || row.status !== 'active') {
    const reason = !row ? 'unknown_account' : !ok ? 'wrong_password' : 'account_disabled';
    return attempt.locksAt ? { outcome: 'locked', until: attempt.locksAt, accountId: row?.id, reason } : { outcome: 'failed', reason, accountId: row?.id };
  }
  // The account proved, the node keeps it for the provider's reads of it that follow (a
  // wrong password fills no cache).
  const account = toAccount(row);
  read.keep(account, row.id);
  const clear = failuresCleared(lockKeyFor(row.id, identifier));
  if (!options.clearWithRecord) await writeAlongside(db, [clear]);
  if (needsRehash(row.password_hash)) {
    // A node too busy to hash again now rehashes at a later sign-in.
    const rehashed = await hashPassword(password).catch((err: unknown) => {
      if (err instanceof PasswordHashingBusy) return undefined;
      throw err;
    });
    if (rehashed) {
      await db('accounts').where({ id: row.id }).update({ password_hash: rehashed });
      tablesChanged(db, 'accounts');
    }
  }
  const passwordChange = row.password_must_change ? 'one_time' : passwordExpired(rules.passwords, new Date(row.password_changed_at)) ? 'expired' : undefined;
  return { outcome: 'signed-in', account, passwordChange, clear: options.clearWithRecord ? [clear] : [] };
}

// The account's password was chosen by someone else: the next sign-in asks the person
// for their own before it completes.
export async function requirePasswordChange(db: Db, id: string): Promise<void> {
  await db('accounts').where({ id }).update({ password_must_change: true, updated_at: db.fn.now() });
  tablesChanged(db, 'accounts');
}

// A new password for the account: it must meet the policy and differ from the current
// one and the policy's number of earlier ones. The old hash goes into the history.
export async function changePassword(db: Db, accountId: string, password: string, policy: PasswordPolicy): Promise<void> {
  await db.transaction(async (trx) => {
    const row = await trx<AccountRow>('accounts').where({ id: accountId }).forUpdate().first();
    if (!row) throw new InputError('account', 'no_such_account');
    const problem = passwordProblem(policy, password, personalValues(row));
    if (problem) throw InputError.of([fieldIssue('password', problem)]);
    if (policy.historySize > 0) {
      const earlier = await trx('password_history').where({ account_id: accountId }).orderBy('created_at', 'desc').limit(policy.historySize - 1).pluck('password_hash');
      for (const hash of [row.password_hash, ...earlier]) {
        if (await verifyPassword(hash, password)) throw new InputError('password', 'password_reused', { count: policy.historySize });
      }
    }
    await trx('password_history').insert({ account_id: accountId, password_hash: row.password_hash });
    await trx('accounts').where({ id: accountId }).update({ password_hash: await hashPassword(password), password_changed_at: trx.fn.now(), password_must_change: false, updated_at: trx.fn.now() });
    tablesChanged(trx, 'accounts');
    // Only as many earlier hashes as the policy compares are worth keeping.
    const keep = trx('password_history').where({ account_id: accountId }).orderBy('created_at', 'desc').limit(Math.max(policy.historySize - 1, 0)).select('id');
    await trx('password_history').where({ account_id: accountId }).whereNotIn('id', keep).delete();
  });
}
