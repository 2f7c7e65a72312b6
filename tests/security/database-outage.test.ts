import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { DatabaseUnavailable, isConnectionError } from '../../src/db/connection-errors.ts';
import { openPostgres, type Database } from '../../src/db/connect.ts';
import { fixedStatement } from '../../src/db/fixed-statements.ts';
import { onPostgres, testDatabase, type TestDatabase } from '../helpers/database.ts';
import { freePort, runCli } from '../helpers/processes.ts';
import { tcpProxy, type TcpProxy } from '../helpers/tcp-proxy.ts';

// How statements fail: never with SQL or values in the message; a lost database as
// DatabaseUnavailable (503); a standalone read on a pooled connection that died runs
// once more on a fresh one, and nothing else ever runs twice.

const TABLE = 'outage_probe';
// The provider's statements go past knex (db/fixed-statements.ts) and fail the same way.
const fixedRead = fixedStatement<{ id: string }>(`SELECT id FROM ${TABLE} WHERE id = ?`, true);
const fixedInsert = fixedStatement(`INSERT INTO ${TABLE} (id) VALUES (?)`, false);

describe('statement errors', () => {
  let database: TestDatabase;
  beforeAll(async () => {
    database = await testDatabase();
    await database.db.schema.createTable(TABLE, (t) => t.text('id').primary());
  });
  afterAll(async () => database?.close());

  it('carry the database message only, never the statement or its values', async () => {
    await database.db(TABLE).insert({ id: 'secret-value-4711' });
    const failure = await database.db(TABLE).insert({ id: 'secret-value-4711' }).catch((err: Error) => err);
    expect(failure).toBeInstanceOf(Error);
    expect((failure as Error).message).toBe(`duplicate key value violates unique constraint "${TABLE}_pkey"`);
    expect((failure as Error & { code?: string }).code).toBe('23505');
  });

  it('carry the database message only also from the statements sent past knex, which answer as knex would', async () => {
    await fixedInsert(database.db, ['fixed-secret-4712']);
    expect(await fixedRead(database.db, ['fixed-secret-4712'])).toEqual([{ id: 'fixed-secret-4712' }]);
    const failure = await fixedInsert(database.db, ['fixed-secret-4712']).catch((err: Error) => err);
    expect((failure as Error).message).toBe(`duplicate key value violates unique constraint "${TABLE}_pkey"`);
    expect((failure as Error & { code?: string }).code).toBe('23505');
    // In a transaction they are the transaction's.
    await database.db
      .transaction(async (trx) => {
        await fixedInsert(trx, ['fixed-in-transaction']);
        expect(await fixedRead(trx, ['fixed-in-transaction'])).toEqual([{ id: 'fixed-in-transaction' }]);
        throw new Error('rolled back');
      })
      .catch(() => undefined);
    expect(await fixedRead(database.db, ['fixed-in-transaction'])).toEqual([]);
  });
});

describe('telling a lost database from a failed statement', () => {
  const coded = (code: string, message = 'x') => Object.assign(new Error(message), { code });
  it('recognises connection failures by SQLSTATE, socket code, driver message and cause, and nothing else', () => {
    for (const lost of [
      coded('57P01', 'terminating connection due to administrator command'),
      coded('57P02'),
      coded('57P03', 'the database system is starting up'),
      coded('08006'),
      coded('08001'),
      coded('ECONNREFUSED'),
      coded('ECONNRESET'),
      new Error('Connection terminated unexpectedly'),
      Object.assign(new Error('Knex: Timeout acquiring a connection.'), { name: 'KnexTimeoutError' }),
      new AggregateError([coded('ECONNREFUSED'), coded('ECONNREFUSED')]),
      new Error('wrapped', { cause: coded('57P01') }),
    ]) {
      expect(isConnectionError(lost), String((lost as { code?: string }).code ?? lost.message)).toBe(true);
    }
    for (const failed of [coded('23505'), coded('22P02'), coded('40001'), coded('57014', 'canceling statement due to statement timeout'), new Error('Connection terminated'), new TypeError('x'), 'ECONNREFUSED', undefined]) {
      expect(isConnectionError(failed), String(failed)).toBe(false);
    }
  });
});

describe('the command line without its database', () => {
  it('says in one line that the database cannot be reached, prints nothing else, and exits with 3', async () => {
    const nowhere = await freePort();
    for (const command of [['window', 'list'], ['migrate']]) {
      const result = await runCli(command, { DATABASE_URL: `postgres://postgres@127.0.0.1:${nowhere}/none` });
      expect(result).toEqual({ code: 3, stdout: '', stderr: 'error: the database cannot be reached (ECONNREFUSED); try again when it answers\n' });
    }
  });
});

// Over a TCP relay the test can cut: PostgreSQL only (an embedded database has no network).
describe.skipIf(!onPostgres())(`a database connection that dies${onPostgres() ? '' : ' (skipped: PostgreSQL only)'}`, () => {
  let database: TestDatabase;
  let proxy: TcpProxy;
  let relayed: Database;
  const count = async (id: string) => Number((await database.db(TABLE).where({ id }).count({ n: '*' }))[0]!.n);

  beforeAll(async () => {
    database = await testDatabase();
    await database.db.schema.createTable(TABLE, (t) => t.text('id').primary());
    await database.db(TABLE).insert({ id: 'there' });
    const url = new URL(database.url!);
    proxy = await tcpProxy({ host: url.hostname, port: Number(url.port || 5432) });
    url.host = `127.0.0.1:${proxy.port}`;
    // One connection: which one a statement runs on is then known.
    relayed = openPostgres(url.href, 1);
  });

  afterAll(async () => {
    await relayed?.close();
    await proxy?.close();
    await database?.close();
  });

  beforeEach(async () => {
    proxy.up();
    expect(await relayed.db(TABLE).pluck('id')).toContain('there');
  });

  it('runs a standalone read once more, on a fresh connection, when its pooled connection died', async () => {
    const before = proxy.connections();
    proxy.dropOnNextWrite();
    expect(await relayed.db(TABLE).where({ id: 'there' }).first('id')).toEqual({ id: 'there' });
    expect(proxy.connections()).toBe(before + 1);
  });

  it('never runs a write again: it fails as DatabaseUnavailable and writes nothing', async () => {
    const before = proxy.connections();
    proxy.dropOnNextWrite();
    const failure = await relayed.db(TABLE).insert({ id: 'written-once' }).catch((err: unknown) => err);
    expect(failure).toBeInstanceOf(DatabaseUnavailable);
    expect(failure).toMatchObject({ status: 503, error: 'temporarily_unavailable' });
    expect(proxy.connections()).toBe(before);
    expect(await count('written-once')).toBe(0);
  });

  it('never runs a read inside a transaction again', async () => {
    const failure = await relayed.db
      .transaction(async (trx) => {
        await trx(TABLE).insert({ id: 'in-transaction' });
        const before = proxy.connections();
        proxy.dropOnNextWrite();
        await trx(TABLE).where({ id: 'there' }).first('id').finally(() => expect(proxy.connections()).toBe(before));
      })
      .catch((err: unknown) => err);
    expect(failure).toBeInstanceOf(DatabaseUnavailable);
    expect(await count('in-transaction')).toBe(0);
  });

  it('runs a read sent past knex once more on a fresh connection, and never such a write', async () => {
    let before = proxy.connections();
    proxy.dropOnNextWrite();
    expect(await fixedRead(relayed.db, ['there'])).toEqual([{ id: 'there' }]);
    expect(proxy.connections()).toBe(before + 1);
    before = proxy.connections();
    proxy.dropOnNextWrite();
    const failure = await fixedInsert(relayed.db, ['fixed-written-once']).catch((err: unknown) => err);
    expect(failure).toBeInstanceOf(DatabaseUnavailable);
    expect(proxy.connections()).toBe(before);
    expect(await count('fixed-written-once')).toBe(0);
    // The prepared statements are made again on the fresh connection.
    expect(await fixedRead(relayed.db, ['there'])).toEqual([{ id: 'there' }]);
  });

  it('answers DatabaseUnavailable while the database cannot be reached, and works again when it can', async () => {
    proxy.down();
    await expect(relayed.db(TABLE).pluck('id')).rejects.toBeInstanceOf(DatabaseUnavailable);
    await expect(relayed.db(TABLE).insert({ id: 'while-down' })).rejects.toBeInstanceOf(DatabaseUnavailable);
    proxy.up();
    expect(await relayed.db(TABLE).pluck('id')).toContain('there');
    expect(await count('while-down')).toBe(0);
  });
});
