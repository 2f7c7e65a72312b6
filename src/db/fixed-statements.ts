import crypto from 'node:crypto';
import type pg from 'pg';
import { postgresPoolOf, type Db } from './connect.ts';
import { DatabaseUnavailable, unavailableIfLost } from './connection-errors.ts';

// The few statements every token and code request makes, as fixed text, sent on a
// connection of knex's pool past knex's query building and statement runner: on these
// that machinery costs more of the node's CPU than sending the statement (bench). Each
// is a named prepared statement, parsed and planned once per connection rather than
// once per request, which is most of what they cost PostgreSQL. A pooler in
// transaction mode that does not keep prepared statements (PgBouncer before 1.21)
// hands each statement to whichever server connection is free, where that name is
// unknown or already taken: with DATABASE_PREPARED_STATEMENTS=false they go unnamed,
// parsed and planned at every request (README, "Running on PostgreSQL").
// They fail as they would through knex (statement-failures.ts): a lost database is
// DatabaseUnavailable, and a read on its own whose pooled connection died runs once
// more on a fresh one. knex's 'query' event is emitted for them too. In a transaction
// and on the embedded database they go through knex like any other statement.

// An array goes as a PostgreSQL array (a column of rows, for unnest).
type Value = string | number | boolean | Date | null | Value[];

// knex would spread an array into a list of parameters: it goes as the text of a
// PostgreSQL array instead, as pg itself sends one.
const element = (v: Value): string =>
  v === null ? 'NULL' : Array.isArray(v) ? arrayText(v) : `"${(v instanceof Date ? v.toISOString() : String(v)).replace(/[\\"]/g, '\\$&')}"`;
const arrayText = (values: Value[]): string => `{${values.map(element).join(',')}}`;
const throughKnex = (v: Value): Exclude<Value, Value[]> => (Array.isArray(v) ? arrayText(v) : v);

export type FixedStatement<Row> = (db: Db, values: Value[]) => Promise<Row[]>;

// `text` with ? placeholders, as knex takes them; `reads`: nothing is written, so the
// statement may run again after a lost connection.
export function fixedStatement<Row>(text: string, reads: boolean): FixedStatement<Row> {
  let n = 0;
  const numbered = text.replace(/\?/g, () => `$${++n}`);
  // Named after the text: one name, one statement, on every connection and node.
  const name = `sme_passport_${crypto.createHash('sha256').update(numbered).digest('hex').slice(0, 24)}`;
  return async (db, values) => {
    const postgres = postgresPoolOf(db);
    if (!postgres) return ((await db.raw(text, values.map(throughKnex))) as { rows: Row[] }).rows;
    const { pool, prepared } = postgres;
    if (pool.listenerCount('query') > 0) pool.emit('query', { method: 'raw', sql: text, bindings: values });
    const statement = prepared ? { name, text: numbered, values } : { text: numbered, values };
    for (let attempt = 1; ; attempt++) {
      const connection = (await pool.acquireConnection()) as pg.Client;
      try {
        return (await connection.query<Row & pg.QueryResultRow>(statement)).rows;
      } catch (err) {
        const failure = unavailableIfLost(err);
        if (!(reads && attempt === 1 && failure instanceof DatabaseUnavailable)) throw failure;
      } finally {
        await pool.releaseConnection(connection);
      }
    }
  };
}
