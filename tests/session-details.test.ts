import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createAccount } from '../src/accounts/accounts.ts';
import { PASSWORD_POLICIES } from '../src/accounts/password-policy.ts';
import type { Db } from '../src/db/connect.ts';
import { recordSessionUse, sessionUseDue } from '../src/oidc/session-details.ts';
import { recordEvent, type AuditEvent } from '../src/audit/trail.ts';
import { testDatabase, type TestDatabase } from './helpers/database.ts';
import { statementsOf } from './helpers/statements.ts';

// A session's details (device, address, last use) are written when it authorizes a
// window, at most once a minute per session; in between the node issues no statement.

describe('session details', () => {
  let database: TestDatabase;
  let db: Db;
  let accountId: string;
  beforeAll(async () => {
    database = await testDatabase();
    db = database.db;
    accountId = (await createAccount(db, { username: 'lu.yan', displayName: '陆燕', password: 'Luoyang-Peony-Garden-1983' }, PASSWORD_POLICIES.mlps)).id;
  });
  afterAll(async () => {
    await database?.close();
  });

  const use = (sessionUid: string, account = accountId) => recordSessionUse(db, { sessionUid, accountId: account, ip: '198.51.100.7', userAgent: 'Firefox' });

  it('writes a session on its first use, then nothing within the minute', async () => {
    expect(await statementsOf(db, () => use('session-one'))).toHaveLength(1);
    expect(await db('session_details').where({ session_uid: 'session-one' }).select('account_id', 'ip', 'user_agent')).toEqual([{ account_id: accountId, ip: '198.51.100.7', user_agent: 'Firefox' }]);
    expect(await statementsOf(db, () => Promise.all([use('session-one'), use('session-one'), use('session-one')]))).toEqual([]);
    // Another session is its own.
    expect(await statementsOf(db, () => use('session-two'))).toHaveLength(1);
  });

  it('writes again at the next use after a write that failed', async () => {
    await expect(use('session-three', '00000000-0000-4000-8000-000000000000')).rejects.toThrow(/foreign key/);
    expect(await statementsOf(db, () => use('session-three'))).toHaveLength(1);
    expect(await db('session_details').where({ session_uid: 'session-three' }).pluck('account_id')).toEqual([accountId]);
  });

  it('goes with the audit record of an authorization, in its statement, and again after a record that failed', async () => {
    const of = (sessionUid: string, account = accountId) => ({ sessionUid, accountId: account, ip: '198.51.100.8', userAgent: 'Safari' });
    const record: AuditEvent = { actor: { type: 'account', id: accountId }, event: 'authorization', target: 'client:zhengzhou-site', outcome: 'success' };
    const served = async (sessionUid: string, event = record) => {
      const due = sessionUseDue(db, of(sessionUid));
      await recordEvent(db, event, due ? [due.write] : []).catch((err: unknown) => {
        due?.failed();
        throw err;
      });
    };
    expect(await statementsOf(db, () => served('session-four'))).toEqual([expect.stringMatching(/^WITH w0 AS \(INSERT INTO session_details.*audit_append/s)]);
    expect(await db('session_details').where({ session_uid: 'session-four' }).pluck('user_agent')).toEqual(['Safari']);
    expect(sessionUseDue(db, of('session-four'))).toBeUndefined();

    // A record the database refuses takes the details with it; the next use writes them.
    await expect(served('session-five', { ...record, enterpriseId: 'not-an-enterprise-id' })).rejects.toThrow();
    expect(await db('session_details').where({ session_uid: 'session-five' })).toEqual([]);
    await served('session-five');
    expect(await db('session_details').where({ session_uid: 'session-five' }).pluck('account_id')).toEqual([accountId]);
  });
});
