import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createAccount, findAccount, signInWithPassword } from '../src/accounts/accounts.ts';
import { PASSWORD_POLICIES } from '../src/accounts/password-policy.ts';
import { cachedRead, cacheCounts } from '../src/db/cache.ts';
import { CHANGES_CHANNEL, LISTEN_APPLICATION_NAME, startChangeFeed, type ChangeFeed } from '../src/db/change-feed.ts';
import type { Db } from '../src/db/connect.ts';
import type { Logger } from '../src/http/errors.ts';
import { createClient, findClientMetadata, setClientDisabled } from '../src/windows/clients.ts';
import { createWindow, findWindow } from '../src/windows/windows.ts';
import { elsewhereOf, onPostgres, testDatabase, type TestDatabase } from './helpers/database.ts';
import { eventually } from './helpers/wait.ts';

// The node caches (src/db/cache.ts) on a real database with a real change feed: what
// they keep, when they drop it, and that they keep nothing they cannot trust.

let database: TestDatabase;
let feed: ChangeFeed;
let db: Db;
// Writes that are not this node's: another connection on PostgreSQL (another node, the
// command line, psql); on the embedded database, SQL that does not tell the cache.
let elsewhere: Db;
let closeElsewhere: () => Promise<void> = async () => {};
const logged: string[] = [];
const logger: Logger = { error: (message) => logged.push(message), info: (message) => logged.push(message) };

let statements = 0;
let windowId: number;
let clientId: string;

beforeAll(async () => {
  database = await testDatabase();
  db = database.db;
  db.on('query', () => statements++);
  feed = await startChangeFeed(database, logger);
  ({ db: elsewhere, close: closeElsewhere } = elsewhereOf(database));
  windowId = (await notified('windows', () => createWindow(db, { kind: 'service', name: '缓存测试机构' }))).id;
  clientId = (await notified('clients', () => createClient(db, { windowId, name: 'cached', grantTypes: ['client_credentials'] }))).clientId;
});

afterAll(async () => {
  await feed?.close();
  await closeElsewhere();
  await database?.close();
});

beforeEach(async () => {
  await eventually(() => feed.state === 'up');
});

// Statements the read made.
async function counted<T>(read: () => Promise<T>): Promise<{ value: T; statements: number }> {
  const before = statements;
  const value = await read();
  return { value, statements: statements - before };
}

// A write, once this node has heard of its change of the table: a read that starts
// later cannot be overtaken by that notification.
async function notified<T>(table: string, write: () => Promise<T>): Promise<T> {
  const heard = new Promise<void>((resolve) => {
    const stop = feed.subscribe(CHANGES_CHANNEL, (changed) => {
      if (changed !== table) return;
      stop();
      resolve();
    });
  });
  const result = await write();
  await heard;
  return result;
}

describe('a node cache', () => {
  it('answers a second read without the database, and reads again after a change made elsewhere', async () => {
    await findClientMetadata(db, clientId);
    expect(await counted(() => findClientMetadata(db, clientId))).toMatchObject({ statements: 0, value: { client_id: clientId, window_id: windowId } });

    await notified('windows', () => elsewhere('windows').where({ id: windowId }).update({ name: '缓存测试机构（改）' }));
    expect(await counted(() => findWindow(db, windowId))).toMatchObject({ statements: 1, value: { name: '缓存测试机构（改）' } });

    await notified('windows', () => elsewhere('windows').where({ id: windowId }).update({ disabled_at: new Date() }));
    expect(await counted(() => findClientMetadata(db, clientId))).toEqual({ statements: 1, value: undefined });
    await notified('windows', () => elsewhere('windows').where({ id: windowId }).update({ disabled_at: null }));
    expect((await findClientMetadata(db, clientId))?.client_id).toBe(clientId);
    expect(cacheCounts(db).caches.client!.hits).toBeGreaterThan(0);
    expect(cacheCounts(db).changesHeard.windows).toBeGreaterThanOrEqual(3);
  });

  it('answers the very next read after a change made elsewhere with the change, before its notification has been heard', async () => {
    for (const disabled of [true, false, true, false]) {
      await findClientMetadata(db, clientId);
      await findClientMetadata(db, clientId);
      // No turn of the event loop between the commit and the read: without the fence, the
      // notification on its way would not have been heard yet.
      await elsewhere('clients').where({ client_id: clientId }).update({ disabled_at: disabled ? new Date() : null });
      expect((await findClientMetadata(db, clientId))?.client_id).toBe(disabled ? undefined : clientId);
    }
  });

  it('does not keep what a read found when a change arrives while it runs', async () => {
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    const slowName = cachedRead({
      name: 'test_slow_window_name',
      tables: ['windows'],
      max: 10,
      key: (id: number) => String(id),
      load: async (db: Db, id: number) => {
        const row = await db('windows').where({ id }).first('name');
        await gate;
        return row?.name as string | undefined;
      },
    });
    const before = (await findWindow(db, windowId))!.name;
    const inFlight = slowName(db, windowId);
    await notified('windows', () => elsewhere('windows').where({ id: windowId }).update({ name: '缓存测试机构（再改）' }));
    release();
    // The read answers what it found, but that was before the change: it is not kept.
    expect(await inFlight).toBe(before);
    expect(await counted(() => slowName(db, windowId))).toEqual({ statements: 1, value: '缓存测试机构（再改）' });
    expect(await counted(() => slowName(db, windowId))).toEqual({ statements: 0, value: '缓存测试机构（再改）' });
  });

  it('drops what it holds when this node’s transaction commits, without waiting for the notification', async () => {
    const made = await notified('clients', () => createClient(db, { windowId, name: 'in a transaction', grantTypes: ['client_credentials'] }));
    await findClientMetadata(db, made.clientId);
    expect((await counted(() => findClientMetadata(db, made.clientId))).statements).toBe(0);
    // As the admin API does: the change and its audit record in one transaction, the
    // change itself in a nested one.
    await notified('clients', async () => {
      await db.transaction(async (trx) => {
        await setClientDisabled(trx, made.clientId, true);
        // Other requests of this node read the client as committed, from the database,
        // and keep nothing until the transaction ends. (The embedded database has one
        // connection, held by the transaction.)
        if (database.url) {
          for (let i = 0; i < 2; i++) expect(await counted(() => findClientMetadata(db, made.clientId))).toMatchObject({ statements: 1, value: { client_id: made.clientId } });
        }
      });
      expect(await counted(() => findClientMetadata(db, made.clientId))).toEqual({ statements: 1, value: undefined });
    });
    await notified('clients', () => setClientDisabled(db, made.clientId, false));
    for (const statements of [1, 0]) expect(await counted(() => findClientMetadata(db, made.clientId))).toMatchObject({ statements, value: { client_id: made.clientId } });
  });

  it('keeps nothing from a transaction that rolled back, and reads the committed value again', async () => {
    const made = await notified('clients', () => createClient(db, { windowId, name: 'rolled back', grantTypes: ['client_credentials'] }));
    await findClientMetadata(db, made.clientId);
    const failed = await db
      .transaction(async (trx) => {
        await setClientDisabled(trx, made.clientId, true);
        throw new Error('changed my mind');
      })
      .catch((err: Error) => err.message);
    expect(failed).toBe('changed my mind');
    expect(await counted(() => findClientMetadata(db, made.clientId))).toMatchObject({ statements: 1, value: { client_id: made.clientId } });
    expect((await counted(() => findClientMetadata(db, made.clientId))).statements).toBe(0);
  });

  it('keeps what another statement read by the rule of a miss: not when a change arrives in between', async () => {
    const named = cachedRead({
      name: 'test_window_name_other_read',
      tables: ['windows'],
      max: 10,
      key: (id: number) => String(id),
      load: async (db: Db, id: number) => (await db('windows').where({ id }).first('name'))?.name as string | undefined,
    });
    const readElsewhere = async (between: () => Promise<unknown> = async () => {}) => {
      const read = named.otherRead(db);
      const row = (await db('windows').where({ id: windowId }).first('id', 'name')) as { id: number; name: string };
      await between();
      read.keep(row.name, row.id);
      return row.name;
    };
    const before = await readElsewhere(() => notified('windows', () => elsewhere('windows').where({ id: windowId }).update({ name: '缓存测试机构（顺带）' })));
    expect(before).not.toBe('缓存测试机构（顺带）');
    expect(await counted(() => named(db, windowId))).toEqual({ statements: 1, value: '缓存测试机构（顺带）' });

    await notified('windows', () => elsewhere('windows').where({ id: windowId }).update({ name: '缓存测试机构（顺带再改）' }));
    await readElsewhere();
    expect(await counted(() => named(db, windowId))).toEqual({ statements: 0, value: '缓存测试机构（顺带再改）' });
    // The very next read after a change made elsewhere has the change (the fence).
    await elsewhere('windows').where({ id: windowId }).update({ name: '缓存测试机构（顺带三改）' });
    expect(await counted(() => named(db, windowId))).toEqual({ statements: 1, value: '缓存测试机构（顺带三改）' });
  });

  it('keeps the account a right password read with its attempt for the reads that follow, and drops it on a change made elsewhere', async () => {
    const password = 'Songshan-Shaolin-495';
    const { id } = await notified('accounts', () => createAccount(db, { username: 'huang.he', displayName: '黄河', password }, PASSWORD_POLICIES.mlps));
    const rules = { lockout: { threshold: 5, seconds: 60 }, passwords: PASSWORD_POLICIES.mlps };
    // A wrong password fills no cache.
    expect(await signInWithPassword(db, 'huang.he', 'Not-The-Password-1', rules)).toMatchObject({ outcome: 'failed' });
    expect((await counted(() => findAccount(db, id))).statements).toBe(1);
    await notified('accounts', () => elsewhere('accounts').where({ id }).update({ display_name: '黄河（改）' }));
    expect(await signInWithPassword(db, 'huang.he', password, rules)).toMatchObject({ outcome: 'signed-in', account: { id, status: 'active' } });
    expect(await counted(() => findAccount(db, id))).toMatchObject({ statements: 0, value: { id, displayName: '黄河（改）', status: 'active' } });
    await elsewhere('accounts').where({ id }).update({ status: 'disabled' });
    expect(await counted(() => findAccount(db, id))).toMatchObject({ statements: 1, value: { id, status: 'disabled' } });
  });

  it('never caches inside a transaction', async () => {
    await db.transaction(async (trx) => {
      await findWindow(trx, windowId);
      expect((await counted(() => findWindow(trx, windowId))).statements).toBe(1);
    });
  });
});

// Only PostgreSQL has a connection to lose: the embedded database notifies in-process.
describe.skipIf(!onPostgres())(`a node whose change feed is lost${onPostgres() ? '' : ' (skipped: PostgreSQL only)'}`, () => {
  it('reads everything from the database until the feed is back, then caches again', async () => {
    await findWindow(db, windowId);
    expect((await counted(() => findWindow(db, windowId))).statements).toBe(0);
    const states: string[] = [];
    const stop = feed.onState((state) => states.push(state));
    const { rows } = await elsewhere.raw('SELECT pg_terminate_backend(pid) AS ended FROM pg_stat_activity WHERE application_name = ? AND datname = current_database()', [
      LISTEN_APPLICATION_NAME,
    ]);
    expect(rows).toEqual([{ ended: true }]);
    await eventually(() => feed.state === 'down');

    // Nothing held is trusted, and nothing read is kept, while notifications may be missed.
    expect(await counted(() => findWindow(db, windowId))).toMatchObject({ statements: 1, value: { id: windowId } });
    expect((await counted(() => findWindow(db, windowId))).statements).toBe(1);
    await elsewhere('windows').where({ id: windowId }).update({ name: '缓存测试机构（断线时改）' });
    expect(await counted(() => findWindow(db, windowId))).toMatchObject({ statements: 1, value: { name: '缓存测试机构（断线时改）' } });
    expect(cacheCounts(db).caches.window!.bypassed).toBeGreaterThanOrEqual(3);

    await eventually(() => feed.state === 'up');
    stop();
    expect(states).toEqual(['down', 'up']);
    expect((await counted(() => findWindow(db, windowId))).statements).toBe(1);
    expect((await counted(() => findWindow(db, windowId))).statements).toBe(0);
    expect(logged).toEqual(['change notifications lost: every cache is bypassed until they are back', 'change notifications are back: caching again']);
  });
});
