import { z } from 'zod';
import type { Db } from '../db/connect.ts';
import { cachedRead, tablesChanged } from '../db/cache.ts';
import { ConflictError, InputError, isUniqueViolation, NotFoundError, parseInput } from '../errors.ts';
import { problemCode } from '../problems.ts';
import { requireWindow } from '../windows/windows.ts';

// Administrator roles. No role implies another, and the one who changes the system
// may not also be the one who audits it (MLPS separation of duties).

export const ADMIN_ROLES = ['system_admin', 'security_admin', 'audit_admin', 'window_admin'] as const;
export type AdminRole = (typeof ADMIN_ROLES)[number];
export type RoleGrant = { role: AdminRole; windowId: number | null };

// Pairs one person may not hold together.
const EXCLUSIVE: Array<[AdminRole, AdminRole]> = [['system_admin', 'audit_admin']];

const grantSchema = z
  .strictObject({
    accountId: z.uuid(problemCode('account_id')),
    role: z.enum(ADMIN_ROLES),
    windowId: z.number().int().positive().optional(),
  })
  .refine((g) => (g.role === 'window_admin') === (g.windowId !== undefined), {
    path: ['windowId'],
    message: problemCode('window_admin_window'),
  });

// Read on every admin API call and every sign-in (administrators need a second factor):
// cached per node (src/db/cache.ts), so a revoked role still stops at the next call.
export const rolesOf = cachedRead({
  name: 'admin_roles',
  tables: ['admin_roles'],
  max: 10_000,
  key: (accountId: string) => accountId,
  load: async (db: Db, accountId: string): Promise<RoleGrant[]> => {
    const rows = await db('admin_roles').where({ account_id: accountId }).orderBy('id').select('role', 'window_id');
    return rows.map((r) => ({ role: r.role, windowId: r.window_id }));
  },
});

// A system_admin administers every window; a window_admin their own.
export const administersWindow = (roles: RoleGrant[], windowId: number | null): boolean =>
  roles.some((r) => r.role === 'system_admin' || (r.role === 'window_admin' && r.windowId === windowId));

export async function isAdministrator(db: Db, accountId: string): Promise<boolean> {
  return (await rolesOf(db, accountId)).length > 0;
}

export async function grantRole(db: Db, input: z.input<typeof grantSchema>, grantedBy?: string): Promise<void> {
  const g = parseInput(grantSchema, input);
  if (g.windowId !== undefined) await requireWindow(db, g.windowId);
  await db.transaction(async (trx) => {
    // One grant at a time per person, so two concurrent grants cannot both pass the check.
    await trx.raw('SELECT pg_advisory_xact_lock(hashtext(?))', [`admin-roles:${g.accountId}`]);
    const held = (await rolesOf(trx, g.accountId)).map((r) => r.role);
    for (const [one, other] of EXCLUSIVE) {
      const clash = g.role === one ? other : g.role === other ? one : undefined;
      if (clash && held.includes(clash)) throw new InputError('role', 'separation_of_duties', { role: g.role, other: clash });
    }
    try {
      await trx('admin_roles').insert({ account_id: g.accountId, role: g.role, window_id: g.windowId ?? null, granted_by: grantedBy ?? null });
      tablesChanged(trx, 'admin_roles');
    } catch (err) {
      if (isUniqueViolation(err)) throw g.windowId ? new ConflictError('role', 'role_held_window', { role: g.role, windowId: g.windowId }) : new ConflictError('role', 'role_held', { role: g.role });
      throw err;
    }
  });
}

export async function revokeRole(db: Db, input: z.input<typeof grantSchema>): Promise<void> {
  const g = parseInput(grantSchema, input);
  const removed = await db('admin_roles').where({ account_id: g.accountId, role: g.role, window_id: g.windowId ?? null }).delete();
  tablesChanged(db, 'admin_roles');
  if (removed === 0) throw g.windowId ? new NotFoundError('role', 'role_not_held_window', { role: g.role, windowId: g.windowId }) : new NotFoundError('role', 'role_not_held', { role: g.role });
}

export type Administrator = { accountId: string; username: string; displayName: string; roles: RoleGrant[] };

export async function listAdministrators(db: Db): Promise<Administrator[]> {
  const rows = await db('admin_roles as r').join('accounts as a', 'a.id', 'r.account_id').orderBy('a.username').orderBy('r.id').select('a.id', 'a.username', 'a.display_name', 'r.role', 'r.window_id');
  const byAccount = new Map<string, Administrator>();
  for (const r of rows) {
    const admin: Administrator = byAccount.get(r.id) ?? { accountId: r.id, username: r.username, displayName: r.display_name, roles: [] };
    admin.roles.push({ role: r.role, windowId: r.window_id });
    byAccount.set(r.id, admin);
  }
  return [...byAccount.values()];
}
