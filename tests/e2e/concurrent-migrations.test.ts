import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MIGRATION_APPLICATION_NAME, MIGRATION_LOCK } from '../../src/db/migrate.ts';
import { emptyPostgresDatabase, onPostgres, testDatabase } from '../helpers/database.ts';
import { freePort, ROOT, runCli, spawnNode, startNode, type CliResult } from '../helpers/processes.ts';
import { eventually } from '../helpers/wait.ts';

// Nodes of a cluster start together, and an operator may run `sme-passport migrate` while
// they do: one migrates, the others wait for it and find nothing left to do. A migrator
// that died mid-way leaves nothing behind that stops the next. (The embedded database
// belongs to one process: PostgreSQL only.)

const MIGRATIONS = fs.readdirSync(path.join(ROOT, 'migrations')).filter((f) => f.endsWith('.ts')).sort();

async function appliedMigrations(url: string): Promise<string[]> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    const { rows } = await client.query<{ name: string }>('SELECT name FROM knex_migrations ORDER BY name');
    return rows.map((r) => r.name);
  } finally {
    await client.end();
  }
}

const outcome = (r: CliResult) => ({ code: r.code, stderr: r.stderr });

describe.skipIf(!onPostgres())(`several migrators on one database${onPostgres() ? '' : ' (skipped: PostgreSQL only, see the comment)'}`, () => {
  let dataDir: string;
  const masterKey = crypto.randomBytes(32).toString('base64');

  beforeAll(() => {
    dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'sme-passport-migrators-'));
  });

  afterAll(() => {
    if (dataDir) fs.rmSync(dataDir, { recursive: true, force: true });
  });

  it('runs three `sme-passport migrate` at once on a fresh database: all succeed, each migration applied once', async () => {
    const fresh = await emptyPostgresDatabase();
    try {
      const runs = await Promise.all([1, 2, 3].map(() => runCli(['migrate', '--json'], { DATABASE_URL: fresh.url, DATA_DIR: dataDir })));
      expect(runs.map(outcome)).toEqual(runs.map(() => ({ code: 0, stderr: expect.any(String) })));
      const applied = runs.flatMap((r) => (JSON.parse(r.stdout) as { applied: string[] }).applied);
      expect(applied.sort()).toEqual(MIGRATIONS);
      expect(await appliedMigrations(fresh.url)).toEqual(MIGRATIONS);
    } finally {
      await fresh.drop();
    }
  });

  it('starts three nodes together on a fresh database: all serve, the schema complete', async () => {
    const fresh = await emptyPostgresDatabase();
    const ports = [await freePort(), await freePort(), await freePort()];
    const env = { DATABASE_URL: fresh.url, ISSUER: `http://localhost:${ports[0]}`, MASTER_KEY: masterKey, DATA_DIR: dataDir };
    const nodes = ports.map((port) => spawnNode({ ...env, PORT: String(port) }));
    try {
      const started = await Promise.allSettled(nodes.map((n) => n.started));
      expect(started.map((s) => (s.status === 'fulfilled' ? 'started' : String(s.reason)))).toEqual(['started', 'started', 'started']);
      for (const port of ports) expect((await fetch(`http://127.0.0.1:${port}/.well-known/openid-configuration`)).status).toBe(200);
      expect(await appliedMigrations(fresh.url)).toEqual(MIGRATIONS);
    } finally {
      await Promise.all(nodes.map((n) => n.stop()));
      await fresh.drop();
    }
  });

  it('starts a node on a database whose knex migration lock a dead migrator left set', async () => {
    const database = await testDatabase();
    try {
      await database.db.raw('UPDATE knex_migrations_lock SET is_locked = 1');
      const port = await freePort();
      const node = await startNode({ DATABASE_URL: database.url!, PORT: String(port), MASTER_KEY: masterKey, DATA_DIR: dataDir });
      try {
        expect((await fetch(`http://127.0.0.1:${port}/.well-known/openid-configuration`)).status).toBe(200);
      } finally {
        await node.stop();
      }
      expect((await database.db('knex_migrations_lock').select('is_locked')).map((r) => Number(r.is_locked))).toEqual([0]);
    } finally {
      await database.close();
    }
  });

  it('waits while another session holds the migration lock, says so, and migrates once it is let go', async () => {
    const fresh = await emptyPostgresDatabase();
    const holder = new pg.Client({ connectionString: fresh.url });
    await holder.connect();
    try {
      await holder.query('SELECT pg_advisory_lock(hashtext($1))', [MIGRATION_LOCK]);
      let finished = false;
      const run = runCli(['migrate', '--json'], { DATABASE_URL: fresh.url, DATA_DIR: dataDir }).finally(() => (finished = true));
      // The command's session waits for the lock the test holds.
      await eventually(async () => {
        const { rows } = await holder.query("SELECT count(*)::int AS n FROM pg_locks l JOIN pg_stat_activity a USING (pid) WHERE l.locktype = 'advisory' AND NOT l.granted AND a.application_name = $1", [MIGRATION_APPLICATION_NAME]);
        return rows[0].n === 1;
      });
      expect(finished).toBe(false);
      const { rows } = await holder.query("SELECT to_regclass('knex_migrations') AS t");
      expect(rows[0].t).toBeNull();

      await holder.query('SELECT pg_advisory_unlock(hashtext($1))', [MIGRATION_LOCK]);
      const r = await run;
      expect(outcome(r)).toEqual({ code: 0, stderr: expect.stringMatching(/waiting for another node or command to finish migrating/) });
      expect((JSON.parse(r.stdout) as { applied: string[] }).applied).toEqual(MIGRATIONS);
    } finally {
      await holder.end();
      await fresh.drop();
    }
  });
});
