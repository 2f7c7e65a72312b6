import type { Db } from '../../src/db/connect.ts';

// The statements `work` sends through `db` (knex's query event), BEGIN and COMMIT left out:
// what a test counts when it asserts that something takes one round trip.
export async function statementsOf(db: Db, work: () => Promise<unknown>): Promise<string[]> {
  const statements: string[] = [];
  const seen = (q: { sql: string }) => statements.push(q.sql);
  db.on('query', seen);
  try {
    await work();
  } finally {
    db.off('query', seen);
  }
  return statements.filter((sql) => !/^(BEGIN|COMMIT)/i.test(sql.trim()));
}
