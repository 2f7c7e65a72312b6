import { z } from 'zod';
import type { Db } from '../db/connect.ts';
import { tablesChanged } from '../db/cache.ts';
import { ConflictError, isUniqueViolation, parseInput } from '../errors.ts';
import { problemCode } from '../problems.ts';
import type { Enterprise } from './enterprises.ts';

// A person belongs to any number of enterprises, with one role in each.

export const ROLES = ['legal_rep', 'admin', 'operator'] as const;
export type Role = (typeof ROLES)[number];

export type Membership = { enterprise: Enterprise; role: Role };

const membershipSchema = z.strictObject({
  enterpriseId: z.uuid(problemCode('enterprise_id')),
  accountId: z.uuid(problemCode('account_id')),
  role: z.enum(ROLES),
});

export async function addMember(db: Db, input: z.input<typeof membershipSchema>): Promise<void> {
  const m = parseInput(membershipSchema, input);
  try {
    await db('memberships').insert({ enterprise_id: m.enterpriseId, account_id: m.accountId, role: m.role });
    tablesChanged(db, 'memberships');
  } catch (err) {
    if (isUniqueViolation(err)) throw new ConflictError('account', 'already_member');
    throw err;
  }
}

export async function removeMember(db: Db, enterpriseId: string, accountId: string): Promise<boolean> {
  const removed = await db('memberships').where({ enterprise_id: enterpriseId, account_id: accountId }).delete();
  tablesChanged(db, 'memberships');
  return removed > 0;
}

export async function membershipsOf(db: Db, accountId: string): Promise<Membership[]> {
  const rows = await db('memberships as m')
    .join('enterprises as e', 'e.id', 'm.enterprise_id')
    .where('m.account_id', accountId)
    .orderBy('e.name')
    .select('e.id', 'e.uscc', 'e.name', 'e.type', 'e.region', 'e.industry', 'e.status', 'm.role');
  return rows.map(({ role, ...enterprise }) => ({ enterprise: enterprise as Enterprise, role }));
}

export type Member = { accountId: string; role: Role };

export async function membersOf(db: Db, enterpriseId: string): Promise<Member[]> {
  const rows = await db('memberships').where({ enterprise_id: enterpriseId }).orderBy('created_at').select('account_id', 'role');
  return rows.map((r) => ({ accountId: r.account_id, role: r.role }));
}

export async function roleIn(db: Db, enterpriseId: string, accountId: string): Promise<Role | undefined> {
  const row = await db('memberships').where({ enterprise_id: enterpriseId, account_id: accountId }).first('role');
  return row?.role;
}

// Who may add and remove the enterprise's operators: its legal representative and admins.
export const managesOperators = (role: Role | undefined) => role === 'legal_rep' || role === 'admin';
