import type { Db } from '../db/connect.ts';
import { cachedRead, tablesChanged } from '../db/cache.ts';
import { InputError } from '../errors.ts';
import { membershipsOf, type Membership } from './memberships.ts';

// The acting enterprise of a sign-in session (DESIGN.md, identity model). The choice
// belongs to the session: the next window of the same session gets it without asking.

export type ActingChoice = { sessionUid: string; accountId: string; enterpriseId: string | null };

export async function chooseActingEnterprise(db: Db, choice: ActingChoice): Promise<void> {
  if (choice.enterpriseId !== null) {
    const member = (await membershipsOf(db, choice.accountId)).some((m) => m.enterprise.id === choice.enterpriseId);
    if (!member) throw new InputError('enterprise', 'not_member');
  }
  await db('acting_enterprises')
    .insert({ session_uid: choice.sessionUid, account_id: choice.accountId, enterprise_id: choice.enterpriseId, chosen_at: db.fn.now() })
    .onConflict('session_uid')
    .merge(['account_id', 'enterprise_id', 'chosen_at']);
  tablesChanged(db, 'acting_enterprises');
}

// Both reads below run on every sign-in at a window (authorization, claims, the record
// of the person served): cached per node (src/db/cache.ts), per session and person.
const sessionKey = (sessionUid: string, accountId: string) => `${sessionUid} ${accountId}`;

// The session's enterprise and the person's role in it, if they chose one and are
// still a member; null if they act as themselves or no longer belong to it.
export const actingEnterprise = cachedRead({
  name: 'acting_enterprise',
  tables: ['acting_enterprises', 'memberships', 'enterprises'],
  max: 10_000,
  key: sessionKey,
  load: async (db: Db, sessionUid: string, accountId: string): Promise<Membership | null> => {
    const row = await db('acting_enterprises as a')
      .join('memberships as m', (j) => j.on('m.enterprise_id', 'a.enterprise_id').andOn('m.account_id', 'a.account_id'))
      .join('enterprises as e', 'e.id', 'a.enterprise_id')
      .where({ 'a.session_uid': sessionUid, 'a.account_id': accountId })
      .first('e.id', 'e.uscc', 'e.name', 'e.type', 'e.region', 'e.industry', 'e.status', 'm.role');
    if (!row) return null;
    const { role, ...enterprise } = row;
    return { enterprise, role };
  },
});

// Whether the session has a choice, and the person's memberships (the only one's id).
const actingChoiceState = cachedRead({
  name: 'acting_choice',
  tables: ['acting_enterprises', 'memberships'],
  max: 10_000,
  key: sessionKey,
  load: async (db: Db, sessionUid: string, accountId: string) => {
    const { rows } = (await db.raw(
      `SELECT EXISTS (SELECT 1 FROM acting_enterprises WHERE session_uid = ? AND account_id = ?) AS chosen,
              count(m.enterprise_id)::int AS memberships, min(m.enterprise_id::text) AS only
         FROM memberships m WHERE m.account_id = ?`,
      [sessionUid, accountId, accountId],
    )) as { rows: Array<{ chosen: boolean; memberships: number; only: string | null }> };
    return rows[0]!;
  },
});

// Whether the person must be asked whom they act for in this session. One membership
// needs no question: it is chosen for them (and can be changed with prompt=select_account).
// At most one round trip: this runs on every authorization request.
export async function needsActingChoice(db: Db, sessionUid: string, accountId: string): Promise<boolean> {
  const { chosen, memberships, only } = await actingChoiceState(db, sessionUid, accountId);
  if (chosen || memberships === 0) return false;
  if (memberships > 1) return true;
  await chooseActingEnterprise(db, { sessionUid, accountId, enterpriseId: only });
  return false;
}

export async function currentChoice(db: Db, sessionUid: string): Promise<string | null | undefined> {
  const row = await db('acting_enterprises').where({ session_uid: sessionUid }).first('enterprise_id');
  return row ? row.enterprise_id : undefined;
}

// Choices of sessions that no longer exist; liveSessions lists the uids that do.
export async function purgeEndedChoices(db: Db, liveSessions: (db: Db) => ReturnType<Db>): Promise<number> {
  const removed = await db('acting_enterprises').whereNotIn('session_uid', liveSessions(db)).delete();
  tablesChanged(db, 'acting_enterprises');
  return removed;
}
