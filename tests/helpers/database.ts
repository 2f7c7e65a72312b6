import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { PGlite } from '@electric-sql/pglite';
import { inject } from 'vitest';
import { knexOverPglite, openPostgres, PGLITE_OPTIONS, type Database } from '../../src/db/connect.ts';

export type TestDatabase = Database & { url: string | undefined };

export const onPostgres = () => inject('postgres') !== null;

// A clean, migrated database of this test file's own; close() removes it.
export async function testDatabase(): Promise<TestDatabase> {
  const pg = inject('postgres');
  if (pg) {
    const name = `sme_passport_test_${crypto.randomBytes(6).toString('hex')}`;
    const admin = openPostgres(pg.url);
    await admin.db.raw(`CREATE DATABASE ${name} TEMPLATE ${pg.template}`);
    const url = new URL(pg.url);
    url.pathname = `/${name}`;
    const database = openPostgres(url.href);
    return {
      ...database,
      url: url.href,
      async close() {
        await database.close();
        await admin.db.raw(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
        await admin.close();
      },
    };
  }
  const dump = fs.readFileSync(inject('pgliteDump')!);
  const pglite = await PGlite.create({ ...PGLITE_OPTIONS, loadDataDir: new Blob([dump]) });
  const db = knexOverPglite(pglite);
  return {
    db,
    kind: 'embedded',
    pglite,
    url: undefined,
    async close() {
      await db.destroy();
      if (!pglite.closed) await pglite.close();
    },
  };
}

// An empty PostgreSQL database of the test's own, nothing migrated (a first start);
// drop() removes it, whoever is still connected.
export async function emptyPostgresDatabase(): Promise<{ url: string; drop(): Promise<void> }> {
  const pg = inject('postgres')!;
  const name = `sme_passport_empty_${crypto.randomBytes(6).toString('hex')}`;
  const admin = openPostgres(pg.url, 1);
  await admin.db.raw(`CREATE DATABASE ${name}`);
  const url = new URL(pg.url);
  url.pathname = `/${name}`;
  return {
    url: url.href,
    async drop() {
      await admin.db.raw(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      await admin.close();
    },
  };
}

// The database the command line works on in a test: the PostgreSQL copy, or the embedded
// one in DATA_DIR, which the CLI holds while it runs, so a test opens it between commands.
export async function withCliDatabase<T>(dataDir: string, database: TestDatabase | undefined, work: (db: Database['db']) => Promise<T>): Promise<T> {
  if (database) return work(database.db);
  const db = knexOverPglite(await PGlite.create(path.join(dataDir, 'pgdata'), PGLITE_OPTIONS));
  try {
    return await work(db);
  } finally {
    await db.destroy();
  }
}

// Writes that are not this node's: another connection on PostgreSQL (another node, the
// command line, psql); on the embedded database, which one process owns, the same one.
export function elsewhereOf(database: TestDatabase): { db: Database['db']; close: () => Promise<void> } {
  if (!database.url) return { db: database.db, close: async () => {} };
  const other = openPostgres(database.url, 2);
  return { db: other.db, close: () => other.close() };
}
