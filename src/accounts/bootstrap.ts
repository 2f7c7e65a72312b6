import crypto from 'node:crypto';
import { z } from 'zod';
import type { Db } from '../db/connect.ts';
import { ConflictError, InputError, parseInput } from '../errors.ts';
import { problemCode } from '../problems.ts';
import { recordEvent, type Actor } from '../audit/trail.ts';
import { createAccount, newAccountSchema, requirePasswordChange, type Account } from './accounts.ts';
import { grantRole, type AdminRole } from './admin-roles.ts';
import { passwordProblem, type PasswordPolicy } from './password-policy.ts';

// The first administrators of the province: one person each for the three duties that
// separation of duties keeps apart (admin-roles.ts), made together because none of them
// can make the others. Each gets a one-time password, changed at the first sign-in,
// where they also enrol an authenticator (interaction/routes.ts).

export const PROVINCE_ROLES = ['system_admin', 'security_admin', 'audit_admin'] as const satisfies readonly AdminRole[];
export type ProvinceRole = (typeof PROVINCE_ROLES)[number];

const personSchema = newAccountSchema.omit({ password: true });
export type BootstrapPerson = z.input<typeof personSchema>;

const bootstrapSchema = z
  .strictObject({ system_admin: personSchema, security_admin: personSchema, audit_admin: personSchema })
  .superRefine((people, ctx) => {
    const seen = new Map<string, ProvinceRole>();
    for (const role of PROVINCE_ROLES) {
      const name = people[role].username.toLowerCase();
      const earlier = seen.get(name);
      if (earlier) ctx.addIssue({ code: 'custom', path: [role, 'username'], message: problemCode('username_of_other_duty'), params: { earlier } });
      seen.set(name, role);
    }
  });

// Usernames and names when the operator gives none.
export const BOOTSTRAP_DEFAULTS: Record<ProvinceRole, { username: string; displayName: string }> = {
  system_admin: { username: 'sysadmin', displayName: '系统管理员' },
  security_admin: { username: 'secadmin', displayName: '安全管理员' },
  audit_admin: { username: 'auditadmin', displayName: '审计管理员' },
};

export type Bootstrapped = { role: ProvinceRole; account: Account; oneTimePassword: string };

export class AdministratorsExist extends ConflictError<'administrators_exist'> {}

export async function provinceAdministrators(db: Db): Promise<Array<{ username: string; role: ProvinceRole }>> {
  return db('admin_roles as r').join('accounts as a', 'a.id', 'r.account_id').whereIn('r.role', PROVINCE_ROLES).orderBy('r.id').select('a.username', 'r.role');
}

// Letters and digits that cannot be misread when copied by hand, in dash-separated
// groups: 20 random characters, about 116 bits.
const ALPHABET = 'ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789';
function oneTimePassword(policy: PasswordPolicy, personal: Array<string | undefined>): string {
  for (;;) {
    const groups = Array.from({ length: 4 }, () => Array.from({ length: 5 }, () => ALPHABET[crypto.randomInt(ALPHABET.length)]).join(''));
    const password = groups.join('-');
    if (!passwordProblem(policy, password, personal)) return password;
  }
}

// A problem with one person's details, named by their duty: `security_admin.phone`.
const ofRole = (role: ProvinceRole, err: unknown) => {
  if (!(err instanceof InputError)) return err;
  return err instanceof ConflictError ? new ConflictError(`${role}.${err.field}`, err.code, err.params as never) : new InputError(`${role}.${err.field}`, err.code, err.params as never);
};

// All three or none, once: two bootstraps at the same time make one set, and the
// second is refused like any later one.
export async function bootstrapAdministrators(db: Db, input: Record<ProvinceRole, BootstrapPerson>, policy: PasswordPolicy, actor: Actor): Promise<Bootstrapped[]> {
  const people = parseInput(bootstrapSchema, input);
  return db.transaction(async (trx) => {
    await trx.raw("SELECT pg_advisory_xact_lock(hashtext('sme-passport:bootstrap-administrators'))");
    const existing = await provinceAdministrators(trx);
    if (existing.length) {
      const held = existing.map((a) => `${a.username}: ${a.role}`).join(', ');
      throw new AdministratorsExist('administrators', 'administrators_exist', { held });
    }
    const made: Bootstrapped[] = [];
    for (const role of PROVINCE_ROLES) {
      const person = people[role];
      const password = oneTimePassword(policy, [person.username, person.phone, person.email?.split('@')[0]]);
      const account = await createAccount(trx, { ...input[role], password }, policy).catch((err: unknown) => {
        throw ofRole(role, err);
      });
      await requirePasswordChange(trx, account.id);
      await recordEvent(trx, { actor, event: 'account.created', outcome: 'success', target: `account:${account.id}`, after: { username: account.username }, reason: 'bootstrap' });
      await grantRole(trx, { accountId: account.id, role });
      await recordEvent(trx, { actor, event: 'admin.grantRole', outcome: 'success', target: `account:${account.id}`, windowId: null, after: { role, windowId: null }, reason: 'bootstrap' });
      made.push({ role, account, oneTimePassword: password });
    }
    return made;
  });
}
