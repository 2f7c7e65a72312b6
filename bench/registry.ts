// The registry at scale: a million enterprises loaded through the real import, a
// million persons, then lookups and searches through the real domain functions.
import fs from 'node:fs';
import path from 'node:path';
import { openPostgres } from '../src/db/connect.ts';
import { importEnterprises } from '../src/enterprises/import.ts';
import { findEnterprise, searchEnterprises } from '../src/enterprises/enterprises.ts';
import { hashPassword } from '../src/accounts/passwords.ts';
import { enterpriseCsv, enterpriseRow } from './registry-data.ts';
import { signIn } from './load.ts';
import type { Credentials, Person } from './common.ts';

export type Latency = { p50: number; p99: number; count: number };
export type RegistryFigures = { rows: number; importSeconds: number; rejected: number; personsSeconds: number; byUscc: Latency; search: Latency };

function latency(samples: number[]): Latency {
  const sorted = [...samples].sort((x, y) => x - y);
  const pct = (p: number) => sorted[Math.max(0, Math.ceil((p / 100) * sorted.length) - 1)] ?? NaN;
  return { p50: pct(50), p99: pct(99), count: sorted.length };
}

async function timeEach<T>(items: T[], work: (item: T) => Promise<unknown>): Promise<Latency> {
  const samples: number[] = [];
  for (const item of items) {
    const t0 = performance.now();
    await work(item);
    samples.push(performance.now() - t0);
  }
  return latency(samples);
}

// Deterministic sample of row numbers, spread over the whole table.
const sample = (rows: number, count: number) => Array.from({ length: count }, (_, i) => Math.floor(((i * 7919) % count) * (rows / count)));

export async function registryAtScale(databaseUrl: string, dir: string, rows: number, password: string): Promise<RegistryFigures> {
  const file = path.join(dir, 'registry.csv');
  const out = fs.createWriteStream(file);
  for (const line of enterpriseCsv(rows)) if (!out.write(line)) await new Promise<void>((resolve) => out.once('drain', () => resolve()));
  await new Promise<void>((resolve) => out.end(() => resolve()));

  const { db, close } = openPostgres(databaseUrl);
  try {
    let rejected = 0;
    const t0 = performance.now();
    await importEnterprises(db, fs.createReadStream(file), { onRejected: () => rejected++ });
    const importSeconds = (performance.now() - t0) / 1000;
    fs.rmSync(file);

    // A million argon2 hashes would take hours; every synthetic person shares one.
    const hash = await hashPassword(password);
    const t1 = performance.now();
    await db.raw(
      `INSERT INTO accounts (username, display_name, phone, password_hash)
       SELECT 'person-' || g, '居民' || g, '139' || lpad(g::text, 8, '0'), ? FROM generate_series(1, ?) g`,
      [hash, rows],
    );
    const personsSeconds = (performance.now() - t1) / 1000;
    // Settle the tables now rather than let autovacuum share the cores with the measurements.
    await db.raw('VACUUM (ANALYZE) enterprises');
    await db.raw('VACUUM (ANALYZE) accounts');

    const picks = sample(rows, 2000);
    const byUscc = await timeEach(picks, (n) => findEnterprise(db, enterpriseRow(n).uscc));
    // Half prefix queries (the first characters of a name), half fragments from the middle.
    const queries = picks.slice(0, 1000).map((n, i) => (i % 2 ? enterpriseRow(n).name.slice(0, 2) : `有限公司${n}`));
    const search = await timeEach(queries, (q) => searchEnterprises(db, q, 20));
    return { rows, importSeconds, rejected, personsSeconds, byUscc, search };
  } finally {
    await close();
  }
}

// Whole password sign-ins, one after another: authorize, login page, password, code.
export async function signInLatency(base: string, client: Credentials, redirectUri: string, person: Person, count: number): Promise<Latency> {
  await signIn(base, client, redirectUri, person); // warm-up
  return timeEach(Array.from({ length: count }), () => signIn(base, client, redirectUri, person));
}
