import { createRequire } from 'node:module';
import { DatabaseUnavailable, unavailableIfLost } from './connection-errors.ts';

// How a statement fails, for both knex clients (PostgreSQL and embedded):
// - its error keeps the driver's message: knex prefixes the statement with its values
//   inlined, which would put SQL and personal data into logs and onto terminals;
// - a lost database becomes DatabaseUnavailable (503, "temporarily unavailable");
// - a read on its own (no transaction) that failed because its pooled connection died
//   runs once more on a fresh one. Nothing else is run again: a write, or anything in
//   a transaction, may have taken effect before the connection went.

const require = createRequire(import.meta.url);

type Builder = { _method?: string; _connection?: unknown };
type RunnerInstance = { client: { transacting?: boolean }; builder: Builder; connection: unknown; queries: unknown[]; run(): Promise<unknown> };
type RunnerClass = new (client: unknown, builder: Builder) => RunnerInstance;
// knex's statement runner: not part of its typed interface, stable across 2.x and 3.x.
const Runner = require('knex/lib/execution/runner.js') as RunnerClass;

const READS = new Set(['select', 'first', 'pluck']);

class ReadOnceMoreRunner extends Runner {
  override async run(): Promise<unknown> {
    try {
      return await super.run();
    } catch (err) {
      // A connection was acquired (the failure was not in connecting) and then lost.
      const lostOnPooledConnection = err instanceof DatabaseUnavailable && this.connection !== undefined;
      const standaloneRead = !this.client.transacting && !this.builder._connection && READS.has(this.builder._method ?? '');
      if (!lostOnPooledConnection || !standaloneRead) throw err;
      this.connection = undefined;
      this.queries = [];
      return super.run();
    }
  }
}

const DRIVER_MESSAGE = Symbol('the driver message');
type Failure = Error & { [DRIVER_MESSAGE]?: string };

type KnexClient = {
  acquireConnection(): Promise<unknown>;
  query(connection: unknown, query: unknown): Promise<unknown>;
  _query(connection: unknown, query: unknown): Promise<unknown>;
  runner(builder: Builder): unknown;
};

export function withStatementFailures<T extends new (...args: any[]) => KnexClient>(Base: T): T {
  return class extends Base {
    override async acquireConnection(): Promise<unknown> {
      try {
        return await super.acquireConnection();
      } catch (err) {
        throw unavailableIfLost(err);
      }
    }

    override async _query(connection: unknown, query: unknown): Promise<unknown> {
      try {
        return await super._query(connection, query);
      } catch (err) {
        if (err instanceof Error) (err as Failure)[DRIVER_MESSAGE] = err.message;
        throw err;
      }
    }

    // Every statement passes here, also BEGIN and COMMIT of a transaction.
    override async query(connection: unknown, query: unknown): Promise<unknown> {
      try {
        return await super.query(connection, query);
      } catch (err) {
        const driverMessage = err instanceof Error ? (err as Failure)[DRIVER_MESSAGE] : undefined;
        if (driverMessage !== undefined) (err as Error).message = driverMessage;
        throw unavailableIfLost(err);
      }
    }

    override runner(builder: Builder): unknown {
      return new ReadOnceMoreRunner(this, builder);
    }
  };
}
