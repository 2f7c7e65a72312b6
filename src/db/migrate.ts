import fs from 'node:fs';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import type { Database, Db } from './connect.ts';
import { DatabaseUnavailable, isConnectionError } from './connection-errors.ts';

const directory = fileURLToPath(new URL('../../migrations', import.meta.url));
// knex refuses to run when the database has a migration its directory lacks; so would a
// node of the release before, restarted in the middle of a rolling upgrade, on the
// schema the new release has expanded. checkApplied() allows exactly that case.
const config = { directory, loadExtensions: ['.ts'], disableMigrationsListValidation: true };

// Applied migrations this code does not have and that are not a later release's.
export class UnknownMigrations extends Error {}

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
  await session.connect().catch(unavailable);
  try {
    const { rows } = await session.query<{ locked: boolean }>('SELECT pg_try_advisory_lock(hashtext($1)) AS locked', [MIGRATION_LOCK]).catch(unavailable);
    if (!rows[0]!.locked) {
      options.onWait?.();
      await session.query('SELECT pg_advisory_lock(hashtext($1))', [MIGRATION_LOCK]).catch(unavailable);
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

// The lock's session failing for want of a database is an outage, as the pool's are.
const unavailable = (err: unknown): never => {
  throw isConnectionError(err) ? new DatabaseUnavailable(err) : err;
};

// The migrations of this code not applied yet, by file name.
export async function pendingMigrations(db: Db): Promise<string[]> {
  await checkApplied(db);
  const [, pending] = (await db.migrate.list(config)) as [unknown, Array<{ file: string }>];
  return pending.map((m) => m.file);
}

async function latest({ db }: MigrationTarget): Promise<string[]> {
  await checkApplied(db);
  const [, applied] = (await db.migrate.latest(config)) as [number, string[]];
  return applied;
}

// Migrations newer than this code's newest are a later release's, which only add to the
// schema (README, "Upgrades"): this code runs on it. One older than that which this code
// lacks is a migration directory out of step with the database.
async function checkApplied(db: Db): Promise<void> {
  if (!(await db.schema.hasTable('knex_migrations'))) return;
  const known = fs.readdirSync(directory).filter((f) => f.endsWith('.ts'));
  const newest = known.toSorted().at(-1)!;
  const applied: string[] = await db('knex_migrations').pluck('name');
  const unknown = applied.filter((name) => name < newest && !known.includes(name));
  if (unknown.length > 0) throw new UnknownMigrations(`the database has migrations this code lacks: ${unknown.join(', ')} (not a later release's: their names sort before ${newest})`);
}
