// The bench's own database on the PostgreSQL server: created for the run and dropped
// after it, by name. Only a database this run created is ever dropped, so a fixed
// BENCH_DATABASE that already exists (another run's?) is refused, not reused.
import crypto from 'node:crypto';
import pg from 'pg';

export type BenchDatabase = {
  name: string;
  url: string;
  // The maintenance connection, kept for the run: it reads pg_stat_activity.
  admin: pg.Client;
  drop(): Promise<void>;
};

export async function createBenchDatabase(serverUrl: string, fixedName: string | undefined): Promise<BenchDatabase> {
  const name = fixedName ?? `sme_passport_bench_${process.pid}_${crypto.randomBytes(4).toString('hex')}`;
  const admin = new pg.Client(serverUrl);
  await admin.connect();
  const exists = await admin.query('SELECT 1 FROM pg_database WHERE datname = $1', [name]);
  if (exists.rowCount) {
    await admin.end();
    throw new Error(`database ${name} already exists; the bench only drops a database it created (unset BENCH_DATABASE, or drop it yourself)`);
  }
  await admin.query(`CREATE DATABASE ${name}`);
  const url = new URL(serverUrl);
  url.pathname = `/${name}`;
  let dropping: Promise<void> | undefined;
  return {
    name,
    url: url.href,
    admin,
    drop() {
      dropping ??= admin.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`).then(
        () => admin.end(),
        (err) => {
          console.error(`dropping database ${name} failed: ${err}; drop it by hand`);
          return admin.end();
        },
      );
      return dropping;
    },
  };
}

// PostgreSQL's processes serving the bench database (client backends only: not
// autovacuum, not the WAL writer or checkpointer, whose work is shared by the server).
export async function backendPids(db: BenchDatabase): Promise<number[]> {
  const { rows } = await db.admin.query<{ pid: number }>("SELECT pid FROM pg_stat_activity WHERE datname = $1 AND backend_type = 'client backend'", [db.name]);
  return rows.map((r) => r.pid);
}
