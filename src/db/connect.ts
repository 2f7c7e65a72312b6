import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import knexFactory, { type Knex } from 'knex';
import ClientPgLite from 'knex-pglite';
import { PGlite, type PGliteOptions } from '@electric-sql/pglite';
import { pg_trgm } from '@electric-sql/pglite/contrib/pg_trgm';
import { consoleLogger, type Logger } from '../http/errors.ts';
import { scrub } from '../http/logging.ts';
import { withStatementFailures } from './statement-failures.ts';

export type Db = Knex;

// Every embedded database loads the extensions the migrations create.
export const PGLITE_OPTIONS: PGliteOptions = { extensions: { pg_trgm } };

// directUrl: PostgreSQL itself, past any pooler, for what needs a session of its own
// (LISTEN in change-feed.ts, the migrations' lock in migrate.ts); pglite: the embedded
// database itself, whose notifications arrive in this process.
export type Database = { db: Db; close(): Promise<void> } & ({ kind: 'postgres'; directUrl: string } | { kind: 'embedded'; pglite: PGlite });

export class DatabaseInUseError extends Error {}

// knex writes its warnings (a failed connection attempt, a connection dropped from the
// pool) with console.log, stack and all; here they are one log line each, first line
// only. None of them carries a statement.
function knexLog(logger: Logger): Knex.Config['log'] {
  const line = (message: unknown) => logger.error(`database client: ${scrub(String(message).split('\n')[0]!)}`);
  return { warn: line, error: line, deprecate: line, debug: () => {} };
}

const require = createRequire(import.meta.url);
type ClientClass = new (config: Knex.Config) => never;
// knex's own PostgreSQL client class, which its 'pg' client name stands for.
const PostgresClient = withStatementFailures(require('knex/lib/dialects/postgres/index.js') as ClientClass);

type PostgresPool = { acquireConnection(): Promise<unknown>; releaseConnection(connection: unknown): Promise<void>; listenerCount(event: string): number; emit(event: string, data: unknown): boolean };

// The knex clients opened with DATABASE_PREPARED_STATEMENTS=false.
const unnamedOnly = new WeakSet<object>();

// knex's pool of PostgreSQL connections, outside a transaction, and whether statements
// sent on them may be named prepared statements (fixed-statements.ts).
export function postgresPoolOf(db: Db): { pool: PostgresPool; prepared: boolean } | undefined {
  if (db.isTransaction || !(db.client instanceof PostgresClient)) return undefined;
  return { pool: db.client as PostgresPool, prepared: !unnamedOnly.has(db.client) };
}

// directUrl: PostgreSQL past any pooler; preparedStatements: false behind a pooler in
// transaction mode that does not keep them (README, "Running on PostgreSQL").
export function openPostgres(
  url: string,
  poolMax = 10,
  logger: Logger = consoleLogger,
  { directUrl = url, preparedStatements = true }: { directUrl?: string | undefined; preparedStatements?: boolean } = {},
): Database {
  const db = knexFactory({ client: PostgresClient as never, connection: url, pool: { min: 0, max: poolMax }, log: knexLog(logger) });
  if (!preparedStatements) unnamedOnly.add(db.client);
  return { db, kind: 'postgres', directUrl, close: () => db.destroy() };
}

// knex-pglite answers DELETE and UPDATE without RETURNING with something other than the
// row count knex's PostgreSQL client returns; make both dialects answer alike.
const PgliteBase = ClientPgLite as unknown as new (config: Knex.Config) => { processResponse(obj: unknown, runner: unknown): unknown };
class PgliteClient extends PgliteBase {
  override processResponse(obj: { method?: string; returning?: unknown; response?: { affectedRows?: number } }, runner: unknown): unknown {
    if ((obj.method === 'del' || obj.method === 'update') && !obj.returning) return obj.response?.affectedRows ?? 0;
    return super.processResponse(obj, runner);
  }
}

const EmbeddedClient = withStatementFailures(PgliteClient as unknown as ClientClass);

// Knex over a PGlite instance the caller owns (tests hand in a fresh clone).
export function knexOverPglite(pglite: PGlite, logger: Logger = consoleLogger): Db {
  return knexFactory({ client: EmbeddedClient as never, dialect: 'postgres', connection: () => ({ pglite }) as object, log: knexLog(logger) } as Knex.Config);
}

const embeddedLockFile = (dataDir: string) => path.join(dataDir, 'pglite.lock');

// The pid of another live process that holds the embedded database, if any.
export function embeddedDatabaseOwner(dataDir: string): number | undefined {
  let pid: number;
  try {
    pid = Number(fs.readFileSync(embeddedLockFile(dataDir), 'utf8'));
  } catch {
    return undefined;
  }
  return pid && pid !== process.pid && isAlive(pid) ? pid : undefined;
}

// An embedded database's files belong to one process. The lock file holds the
// owner's pid; a stale lock (owner gone) is taken over, a live one is refused.
function takeLock(dataDir: string): () => void {
  const owner = embeddedDatabaseOwner(dataDir);
  if (owner) {
    throw new DatabaseInUseError(
      `the embedded database in ${dataDir} is in use by process ${owner} (a running server?). ` +
        'Stop it first, or point both at PostgreSQL with DATABASE_URL.',
    );
  }
  fs.writeFileSync(embeddedLockFile(dataDir), String(process.pid), { mode: 0o600 });
  return () => fs.rmSync(embeddedLockFile(dataDir), { force: true });
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

export async function openEmbedded(dataDir: string, logger: Logger = consoleLogger): Promise<Database> {
  fs.mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  const release = takeLock(dataDir);
  try {
    const pglite = await PGlite.create(path.join(dataDir, 'pgdata'), PGLITE_OPTIONS);
    const db = knexOverPglite(pglite, logger);
    return {
      db,
      kind: 'embedded',
      pglite,
      async close() {
        await db.destroy(); // knex-pglite closes the PGlite instance with its connection
        if (!pglite.closed) await pglite.close();
        release();
      },
    };
  } catch (err) {
    release();
    throw err;
  }
}

export function openDatabase(
  config: { databaseUrl: string | undefined; databaseDirectUrl?: string | undefined; databasePreparedStatements?: boolean; dataDir: string; databasePoolMax: number },
  logger?: Logger,
): Promise<Database> {
  return config.databaseUrl
    ? Promise.resolve(
        openPostgres(config.databaseUrl, config.databasePoolMax, logger, {
          directUrl: config.databaseDirectUrl,
          preparedStatements: config.databasePreparedStatements,
        }),
      )
    : openEmbedded(config.dataDir, logger);
}
