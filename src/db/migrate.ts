import { fileURLToPath } from 'node:url';
import pg from 'pg';
import type { Database } from './connect.ts';

const directory = fileURLToPath(new URL('../../migrations', import.meta.url));
const config = { directory, loadExtensions: ['.ts'] };

// Nodes starting together and the command line all migrate; on PostgreSQL one at a time,
// under this session-level advisory lock: the others wait for it, then find nothing to
// do. knex's own lock (a row in knex_migrations_lock) cannot serve: a second migrator
// fails on it instead of waiting, and a migrator that dies mid-way can leave it set for
// good, where a session's lock goes with its connection.
export const MIGRATION_LOCK = 'sme-passport:migrations';
// The lock's session as pg_stat_activity names it.
export const MIGRATION_APPLICATION_NAME = 'sme-passport migrations';

// What migrating needs: the pool the migrations run through and, on PostgreSQL, the
// server itself past any pooler (directUrl), where the lock's session is ours; through
// PgBouncer in transaction mode it would not be. An embedded database belongs to one
// process and needs no lock.
export type MigrationTarget = Pick<Database, 'db'> & { directUrl?: string };

export const WAITING_TO_MIGRATE = 'waiting for another node or command to finish migrating the database';

// The migrations applied, by file name; onWait is told when another migrator holds the lock.
export async function migrate(database: MigrationTarget, options: { onWait?: () => void } = {}): Promise<string[]> {
  if (!database.directUrl) return latest(database);
  const session = new pg.Client({ connectionString: database.directUrl, application_name: MIGRATION_APPLICATION_NAME });
  // Losing the session while migrating lets another migrator in; knex's lock row, taken in
  // the one transaction a batch of transactional migrations runs in, still keeps the two
  // batches apart.
  session.on('error', () => {});
  await session.connect();
  try {
    const { rows } = await session.query<{ locked: boolean }>('SELECT pg_try_advisory_lock(hashtext($1)) AS locked', [MIGRATION_LOCK]);
    if (!rows[0]!.locked) {
      options.onWait?.();
      await session.query('SELECT pg_advisory_lock(hashtext($1))', [MIGRATION_LOCK]);
    }
    // No one else is migrating: a knex lock still set is a dead migrator's.
    await database.db.migrate.forceFreeMigrationsLock(config);
    return await latest(database);
  } finally {
    // Ending the session lets go of the lock as well, should the unlock not get through.
    await session.query('SELECT pg_advisory_unlock(hashtext($1))', [MIGRATION_LOCK]).catch(() => undefined);
    await session.end();
  }
}

async function latest({ db }: MigrationTarget): Promise<string[]> {
  const [, applied] = (await db.migrate.latest(config)) as [number, string[]];
  return applied;
}
