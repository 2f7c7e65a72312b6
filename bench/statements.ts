// Child side, imported by serve-ours.ts before the server: counts every statement the
// process sends to its database, by wrapping the drivers' entry points (pg's
// Client.prototype.query for PostgreSQL, PGlite's query and exec for the embedded
// one). knex sends everything, its BEGIN and COMMIT too, through these. A
// multi-statement string counts once; transaction control (BEGIN, COMMIT, ROLLBACK,
// SAVEPOINT, RELEASE) is counted in the total and also on its own.
import pg from 'pg';
import { PGlite } from '@electric-sql/pglite';

export type StatementCounts = { statements: number; transactionControl: number };

const counts: StatementCounts = { statements: 0, transactionControl: 0 };

const TRANSACTION_CONTROL = /^\s*(begin|commit|rollback|start\s+transaction|savepoint|release)\b/i;

function count(query: unknown): void {
  const text = typeof query === 'string' ? query : (query as { text?: unknown } | null)?.text;
  counts.statements++;
  if (typeof text === 'string' && TRANSACTION_CONTROL.test(text)) counts.transactionControl++;
}

function wrap<T extends object>(target: T, method: keyof T & string): void {
  const original = target[method] as (...args: unknown[]) => unknown;
  Object.defineProperty(target, method, {
    configurable: true,
    writable: true,
    value: function (this: unknown, ...args: unknown[]) {
      count(args[0]);
      return original.apply(this, args);
    },
  });
}

wrap(pg.Client.prototype, 'query');
wrap(PGlite.prototype, 'query');
wrap(PGlite.prototype, 'exec');

export const statementCounts = (): StatementCounts => ({ ...counts });
