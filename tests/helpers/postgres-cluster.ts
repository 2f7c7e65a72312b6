import crypto from 'node:crypto';
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import { promisify } from 'node:util';
import { openPostgres } from '../../src/db/connect.ts';
import { freePort } from './processes.ts';

// A PostgreSQL cluster of a test's own (Debian's postgresql-common), for tests that
// stop or restart the database server: the shared one on 5432 serves other tests
// running at the same time and is never touched.

const run = promisify(execFile);

export type PostgresCluster = { url: string; restart(): Promise<void>; drop(): Promise<void> };

const VERSIONS_DIR = '/etc/postgresql';

// Why a private cluster cannot be made here, or undefined when it can.
export function whyNoPrivateCluster(): string | undefined {
  if (process.getuid?.() !== 0) return 'needs root to create a PostgreSQL cluster (pg_createcluster)';
  const tools = ['/usr/bin/pg_createcluster', '/usr/bin/pg_ctlcluster', '/usr/bin/pg_dropcluster'];
  if (!tools.every((tool) => fs.existsSync(tool))) return 'needs postgresql-common (pg_createcluster, pg_ctlcluster, pg_dropcluster)';
  if (!installedVersion()) return `needs a PostgreSQL server installed (nothing in ${VERSIONS_DIR})`;
  return undefined;
}

function installedVersion(): string | undefined {
  if (!fs.existsSync(VERSIONS_DIR)) return undefined;
  return fs
    .readdirSync(VERSIONS_DIR)
    .filter((name) => /^\d+$/.test(name))
    .sort((a, b) => Number(b) - Number(a))[0];
}

// Created, started, with a database `name` in it; drop() stops and removes it all.
export async function privateCluster(database: string): Promise<PostgresCluster> {
  const version = installedVersion()!;
  const name = `sme_fault_${crypto.randomBytes(4).toString('hex')}`;
  const port = await freePort();
  // Durability is not what these tests are about; fsync off keeps them quick.
  await run('pg_createcluster', [version, name, '-p', String(port), '--start-conf=manual', '-o', 'fsync=off', '--', '--auth=trust'], { timeout: 60_000 });
  const ctl = (action: string) => run('pg_ctlcluster', [version, name, action], { timeout: 60_000 });
  const drop = async () => {
    await run('pg_dropcluster', ['--stop', version, name], { timeout: 60_000 });
  };
  try {
    await ctl('start');
    const admin = openPostgres(`postgres://postgres@127.0.0.1:${port}/postgres`, 1);
    try {
      await admin.db.raw(`CREATE DATABASE ${database}`);
    } finally {
      await admin.close();
    }
  } catch (err) {
    await drop().catch(() => undefined);
    throw err;
  }
  return {
    url: `postgres://postgres@127.0.0.1:${port}/${database}`,
    restart: async () => {
      await ctl('restart');
    },
    drop,
  };
}
