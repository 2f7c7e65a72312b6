import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FAILURES_CHANNEL, LISTEN_APPLICATION_NAME, startChangeFeed, type ChangeFeed } from '../src/db/change-feed.ts';
import type { Db } from '../src/db/connect.ts';
import type { Logger } from '../src/http/errors.ts';
import { failingKeys, type FailingKeys } from '../src/http/failing-keys.ts';
import { hit } from '../src/http/rate-limit.ts';
import { elsewhereOf, onPostgres, testDatabase, type TestDatabase } from './helpers/database.ts';
import { eventually } from './helpers/wait.ts';

// Which limit keys have failures, known on a node without a read (src/http/failing-keys.ts),
// on a real database with a real change feed. "Elsewhere" is another node's connection on
// PostgreSQL; on the embedded database, the same one.

const RULE = { limit: 3, windowSeconds: 60 };
let database: TestDatabase;
let feed: ChangeFeed;
let db: Db;
let elsewhere: Db;
let closeElsewhere: () => Promise<void> = async () => {};
let failing: FailingKeys;
const logger: Logger = { error: () => {}, info: () => {} };

beforeAll(async () => {
  database = await testDatabase();
  db = database.db;
  ({ db: elsewhere, close: closeElsewhere } = elsewhereOf(database));
  // A failure counted before the node starts is loaded when its feed comes up.
  await hit(elsewhere, 'test-a:before', RULE, FAILURES_CHANNEL);
  feed = await startChangeFeed(database, logger);
  failing = failingKeys(db, ['test-a:', 'test-b:'], RULE.windowSeconds);
  await eventually(async () => !(await failing.mayBeUsedUp('test-a:nobody')));
});

afterAll(async () => {
  await feed?.close();
  await closeElsewhere();
  await database?.close();
});

describe('failing keys', () => {
  it('clears a key with no failure without a statement, and knows the failures counted before the node started', async () => {
    let statements = 0;
    const count = () => statements++;
    db.on('query', count);
    expect(await failing.mayBeUsedUp('test-a:10.0.0.1')).toBe(false);
    expect(await failing.mayBeUsedUp('test-b:some-client')).toBe(false);
    db.off('query', count);
    expect(statements).toBe(0);
    expect(await failing.mayBeUsedUp('test-a:before')).toBe(true);
  });

  it('knows a failure counted elsewhere at its very next check, before the notification has been heard', async () => {
    for (const key of ['test-a:10.0.0.2', 'test-b:other-client', 'test-a:2001:db8::1', 'test-b:客户端']) {
      expect(await failing.mayBeUsedUp(key)).toBe(false);
      await hit(elsewhere, key, RULE, FAILURES_CHANNEL);
      expect(await failing.mayBeUsedUp(key)).toBe(true);
    }
  });

  it('knows its own failures at once, and keeps no key of another prefix', async () => {
    failing.failed('test-a:10.0.0.3', Date.now() + 60_000);
    expect(await failing.mayBeUsedUp('test-a:10.0.0.3')).toBe(true);
    failing.failed('other:10.0.0.3', Date.now() + 60_000);
    expect(await failing.mayBeUsedUp('other:10.0.0.3')).toBe(false);
  });

  it('forgets a key once its window (and the clock margin) has passed', async () => {
    failing.failed('test-a:10.0.0.4', Date.now() - 10_000);
    expect(await failing.mayBeUsedUp('test-a:10.0.0.4')).toBe(false);
  });

  it('ignores an announcement it cannot read', async () => {
    await elsewhere.raw('SELECT pg_notify(?, ?)', [FAILURES_CHANNEL, 'not json']);
    await elsewhere.raw('SELECT pg_notify(?, ?)', [FAILURES_CHANNEL, JSON.stringify({ key: 'test-a:10.0.0.5', until: 'soon' })]);
    expect(await failing.mayBeUsedUp('test-a:10.0.0.5')).toBe(false);
    expect(await failing.mayBeUsedUp('test-a:before')).toBe(true);
  });
});

// Only PostgreSQL has a connection to lose: the embedded database notifies in-process.
describe.skipIf(!onPostgres())(`failing keys while the change feed is lost${onPostgres() ? '' : ' (skipped: PostgreSQL only)'}`, () => {
  it('checks every key until the feed is back, and then knows what was counted meanwhile', async () => {
    await elsewhere.raw('SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = ? AND datname = current_database()', [LISTEN_APPLICATION_NAME]);
    await eventually(() => feed.state === 'down');
    expect(await failing.mayBeUsedUp('test-a:10.0.0.6')).toBe(true);
    // Counted while the node could not hear of it.
    await hit(elsewhere, 'test-a:10.0.0.6', RULE);
    await eventually(async () => feed.state === 'up' && !(await failing.mayBeUsedUp('test-a:nobody')));
    expect(await failing.mayBeUsedUp('test-a:10.0.0.6')).toBe(true);
    expect(await failing.mayBeUsedUp('test-a:10.0.0.7')).toBe(false);
  });
});
