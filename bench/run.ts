// npm run bench: our server against bare oidc-provider, in one run, on this machine.
// A measurement, never pass/fail. Each server runs in its own process and only one
// runs at a time, so the server and this load generator each get a core (a local
// PostgreSQL takes its share of the same cores while ours runs).
//
//   BENCH_SECONDS      measured seconds per scenario (default 10, after a 2 s warm-up)
//   BENCH_CONNECTIONS  concurrent connections, and people hopping at once (default 16)
//   BENCH_DATABASE_URL maintenance database used to create and drop sme_passport_bench
//                      (default postgres://postgres@127.0.0.1:5432/postgres)
//   BENCH_REGISTRY_ROWS enterprises and persons for the registry at scale (default
//                      1000000; 0 skips it)
//   BENCH_AUDIT_ROWS   chained audit records written for timing `audit verify` (default
//                      1000000; 0 skips it)
//
//   BENCH_ONLY         memory: only the memory scenario below (default: everything)
//
// The resident memory (RSS) of ours is read from /proc (Linux) while idle and after a
// mixed load: client_credentials, SSO hops and password sign-ins all at once.
import { spawn, type ChildProcess } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import type { Ready, Spec } from './common.ts';
import { auditAtScale, type AuditFigures } from './audit.ts';
import { clientCredentials, passwordSignIns, signIn, ssoHops, type Stats } from './load.ts';
import { registryAtScale, signInLatency, type Latency, type RegistryFigures } from './registry.ts';

const seconds = Number(process.env.BENCH_SECONDS ?? 10);
const connections = Number(process.env.BENCH_CONNECTIONS ?? 16);
const maintenanceUrl = process.env.BENCH_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
const registryRows = Number(process.env.BENCH_REGISTRY_ROWS ?? 1_000_000);
const auditRows = Number(process.env.BENCH_AUDIT_ROWS ?? 1_000_000);
const BENCH_DB = 'sme_passport_bench';
if (!(seconds > 0 && Number.isInteger(connections) && connections > 0)) throw new Error('BENCH_SECONDS and BENCH_CONNECTIONS must be positive numbers');
if (!(Number.isInteger(registryRows) && registryRows >= 0)) throw new Error('BENCH_REGISTRY_ROWS must be a whole number (0 skips the registry at scale)');
if (!(Number.isInteger(auditRows) && auditRows >= 0)) throw new Error('BENCH_AUDIT_ROWS must be a whole number (0 skips the audit trail at scale)');
if (![undefined, '', 'memory'].includes(process.env.BENCH_ONLY)) throw new Error('BENCH_ONLY must be memory, or unset for every scenario');
const memoryOnly = process.env.BENCH_ONLY === 'memory';
const SIGN_INS = 100;

// Every child we start is killed, and the scratch directory removed, when we exit,
// however we exit. (An interrupted run leaves the database; the next run drops it.)
const children = new Set<ChildProcess>();
const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'sme-passport-bench-'));
process.on('exit', () => {
  children.forEach((c) => c.kill('SIGKILL'));
  fs.rmSync(dataDir, { recursive: true, force: true });
});
for (const signal of ['SIGINT', 'SIGTERM'] as const) process.once(signal, () => process.exit(130));

async function admin(sql: string): Promise<void> {
  const client = new pg.Client(maintenanceUrl);
  await client.connect();
  try {
    await client.query(sql);
  } finally {
    await client.end();
  }
}

// Starts `script` in its own Node process and waits for its one JSON "ready" line.
async function startServer(name: string, script: string, env: Record<string, string>) {
  const child = spawn(process.execPath, [fileURLToPath(new URL(script, import.meta.url))], {
    env: { ...process.env, ...env },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  children.add(child);
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  exited.then(() => children.delete(child));
  readline.createInterface({ input: child.stderr! }).on('line', (line) => console.error(`[${name}] ${line}`));

  const ready = await new Promise<Ready>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${name} did not start within 60 s`)), 60_000);
    // Anything else the server prints is passed on, marked with its name.
    readline.createInterface({ input: child.stdout! }).on('line', (line) => {
      const ready = line.startsWith('{"url":') ? (JSON.parse(line) as Ready) : undefined;
      if (!ready) return console.error(`[${name}] ${line}`);
      clearTimeout(timer);
      resolve(ready);
    });
    child.once('error', reject);
    exited.then(() => {
      clearTimeout(timer);
      reject(new Error(`${name} exited before it was ready`));
    });
  });
  // The servers listen on 127.0.0.1 only; ours names itself localhost. Talk to the address.
  const url = ready.url.replace('//localhost:', '//127.0.0.1:');
  return {
    url,
    clients: ready.clients,
    pid: child.pid!,
    async stop() {
      child.kill('SIGTERM');
      const force = setTimeout(() => child.kill('SIGKILL'), 5000);
      await exited;
      clearTimeout(force);
    },
  };
}

type Row = { scenario: string; server: string; stats: Stats };

async function measureSignIns(script: string, spec: Spec, env: Record<string, string>): Promise<Latency> {
  const s = await startServer('ours', script, env);
  try {
    console.error(`ours: ${SIGN_INS} password sign-ins ...`);
    return await signInLatency(s.url, s.clients.a, spec.redirectUri, spec.people[0]!, SIGN_INS);
  } finally {
    await s.stop();
  }
}

// Whole password sign-ins, one loop per person, on ours started with the audit trail on or off.
async function measureSignInThroughput(trail: 'on' | 'off', spec: Spec, env: Record<string, string>): Promise<Stats> {
  const s = await startServer(`ours, trail ${trail}`, './serve-ours.ts', { ...env, BENCH_OURS_AUDIT_TRAIL: trail });
  try {
    console.error(`ours, audit trail ${trail}: ${spec.people.length} people signing in over and over ...`);
    return await passwordSignIns({ base: s.url, redirectUri: spec.redirectUri }, s.clients.a, spec.people, seconds);
  } finally {
    await s.stop();
  }
}

async function measure(server: string, script: string, spec: Spec, env: Record<string, string>): Promise<Row[]> {
  const s = await startServer(server, script, env);
  try {
    console.error(`${server}: ${s.url}, client_credentials ...`);
    const cc = await clientCredentials(s.url, s.clients.service, seconds, connections);
    console.error(`${server}: ${spec.people.length} sign-ins, then SSO hops ...`);
    const cookies: string[] = [];
    for (const person of spec.people) cookies.push(await signIn(s.url, s.clients.a, spec.redirectUri, person));
    const sso = await ssoHops({ base: s.url, redirectUri: spec.redirectUri }, cookies, s.clients.b, seconds);
    return [
      { scenario: 'client_credentials', server, stats: cc },
      { scenario: 'sso_hop', server, stats: sso },
    ];
  } finally {
    await s.stop();
  }
}

type Memory = { idle: number; afterLoad: number; settled: number; peak: number; load: Record<'clientCredentials' | 'ssoHops' | 'signIns', Stats> };

// VmRSS (resident now) and VmHWM (highest resident so far) of a process, in MB.
function residentMb(pid: number): { rss: number; peak: number } {
  const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (field: string) => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? NaN);
  return { rss: kb('VmRSS') / 1024, peak: kb('VmHWM') / 1024 };
}

const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function measureMemory(spec: Spec, env: Record<string, string>): Promise<Memory> {
  const s = await startServer('ours, memory', './serve-ours.ts', env);
  try {
    await pause(2000);
    const idle = residentMb(s.pid).rss;
    console.error(`ours, memory: idle ${idle.toFixed(0)} MB; client_credentials, SSO hops and password sign-ins at once ...`);
    const cookies: string[] = [];
    for (const person of spec.people) cookies.push(await signIn(s.url, s.clients.a, spec.redirectUri, person));
    const flow = { base: s.url, redirectUri: spec.redirectUri };
    const [clientCredentialsStats, ssoHopsStats, signInsStats] = await Promise.all([
      clientCredentials(s.url, s.clients.service, seconds, connections),
      ssoHops(flow, cookies, s.clients.b, seconds),
      passwordSignIns(flow, s.clients.a, spec.people, seconds),
    ]);
    const { rss: afterLoad } = residentMb(s.pid);
    await pause(5000);
    const { rss: settled, peak } = residentMb(s.pid);
    return { idle, afterLoad, settled, peak, load: { clientCredentials: clientCredentialsStats, ssoHops: ssoHopsStats, signIns: signInsStats } };
  } finally {
    await s.stop();
  }
}

function printTable(rows: Row[]): void {
  const header = ['scenario', 'server', 'req/s', 'p50 ms', 'p99 ms', 'errors'];
  const lines = rows.map(({ scenario, server, stats: s }) => [scenario, server, s.perSecond.toFixed(1), s.p50.toFixed(1), s.p99.toFixed(1), String(s.errors)]);
  const widths = header.map((h, i) => Math.max(h.length, ...lines.map((l) => l[i]!.length)));
  // Text columns left-aligned, numbers right-aligned.
  const fmt = (cells: string[]) => cells.map((c, i) => (i < 2 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ');
  console.log(fmt(header));
  for (const l of lines) console.log(fmt(l));
  const ratio = (scenario: string) => {
    const get = (server: string) => rows.find((r) => r.scenario === scenario && r.server === server)!.stats.perSecond;
    return `${scenario} ${(get('ours') / get('bare')).toFixed(2)}`;
  };
  console.log('(sso_hop rows count hops: one GET /auth and one POST /token each)');
  console.log(`ratio ours/bare: ${ratio('client_credentials')}, ${ratio('sso_hop')}`);
  for (const { scenario, server, stats } of rows) if (stats.firstError) console.log(`first error, ${scenario} ${server}: ${stats.firstError}`);
}

const secret = () => crypto.randomBytes(32).toString('base64url');
const spec: Spec = {
  clients: {
    service: { id: 'bench-service', secret: secret() },
    a: { id: 'bench-a', secret: secret() },
    b: { id: 'bench-b', secret: secret() },
  },
  redirectUri: 'http://127.0.0.1:9/cb', // never called: the code is read off the Location header
  people: Array.from({ length: connections }, (_, i) => ({ username: `bench-person-${i + 1}`, password: 'bench-Passw0rd-42' })),
};
const specEnv = { BENCH_SPEC: JSON.stringify(spec) };

// How busy the CPUs are just before we start: anything else running (tests, builds)
// takes cores from the servers and PostgreSQL, and the numbers are worth less.
async function cpuBusyPercent(ms: number): Promise<number> {
  const total = () => os.cpus().reduce((t, c) => ({ idle: t.idle + c.times.idle, all: t.all + Object.values(c.times).reduce((x, y) => x + y, 0) }), { idle: 0, all: 0 });
  const before = total();
  await new Promise((resolve) => setTimeout(resolve, ms));
  const after = total();
  return 100 * (1 - (after.idle - before.idle) / (after.all - before.all || 1));
}
const busyBefore = await cpuBusyPercent(1000);
const benchUrl = new URL(maintenanceUrl);
benchUrl.pathname = `/${BENCH_DB}`;
await admin(`DROP DATABASE IF EXISTS ${BENCH_DB} WITH (FORCE)`);
await admin(`CREATE DATABASE ${BENCH_DB}`);
let everything: { rows: Row[]; signInsEmpty: Latency; throughput: Record<'on' | 'off', Stats> } | undefined;
let registry: { figures: RegistryFigures; signIns: Latency } | undefined;
let audit: AuditFigures | undefined;
let memory: Memory;
// One master key for every start of ours on the bench database (keys are sealed with it).
const oursEnv = { ...specEnv, BENCH_OURS_DATABASE_URL: benchUrl.href, BENCH_OURS_DATA_DIR: dataDir, BENCH_MASTER_KEY: crypto.randomBytes(32).toString('base64') };
try {
  if (!memoryOnly) {
    const rows = [...(await measure('ours', './serve-ours.ts', spec, oursEnv)), ...(await measure('bare', './serve-bare.ts', spec, specEnv))];
    const signInsEmpty = await measureSignIns('./serve-ours.ts', spec, oursEnv);
    const throughput = { on: await measureSignInThroughput('on', spec, oursEnv), off: await measureSignInThroughput('off', spec, oursEnv) };
    everything = { rows, signInsEmpty, throughput };
  }
  memory = await measureMemory(spec, oursEnv);
  if (!memoryOnly && registryRows > 0) {
    console.error(`registry: generating and importing ${registryRows} enterprises, then ${registryRows} persons ...`);
    const figures = await registryAtScale(benchUrl.href, dataDir, registryRows, spec.people[0]!.password);
    registry = { figures, signIns: await measureSignIns('./serve-ours.ts', spec, oursEnv) };
  }
  if (!memoryOnly && auditRows > 0) {
    console.error(`audit: writing ${auditRows} chained records, then verifying the whole trail ...`);
    audit = await auditAtScale(benchUrl.href, auditRows);
  }
} finally {
  await admin(`DROP DATABASE IF EXISTS ${BENCH_DB} WITH (FORCE)`);
}

console.log(`\nnode ${process.version}, ${os.cpus().length} CPUs (${os.cpus()[0]?.model.trim()}), ${seconds} s per scenario after 2 s warm-up, ${connections} connections`);
const busyNote = busyBefore > 20 ? ': something else is running, so these numbers are low and noisy' : '';
console.log(`CPUs ${busyBefore.toFixed(0)}% busy just before the run${busyNote}; PostgreSQL on ${benchUrl.host} (shares these CPUs if local)`);

const ms = (l: Latency) => `p50 ${l.p50.toFixed(1)} ms  p99 ${l.p99.toFixed(1)} ms  (${l.count})`;
if (everything) {
  const { rows, signInsEmpty, throughput } = everything;
  rows.sort((x, y) => x.scenario.localeCompare(y.scenario));
  printTable(rows);

  console.log(`\npassword sign-in, ours (authorize, login page, password, code; argon2id m=19456 t=2), one after another`);
  console.log(`  almost empty database         ${ms(signInsEmpty)}`);
  if (registry) {
    const f = registry.figures;
    console.log(`  ${f.rows} persons + enterprises  ${ms(registry.signIns)}`);
    console.log(`\nregistry at ${f.rows} rows (ours, PostgreSQL)`);
    console.log(`  enterprise import   ${(f.rows / f.importSeconds).toFixed(0)} rows/s (${f.importSeconds.toFixed(1)} s, ${f.rejected} rejected)`);
    console.log(`  persons (SQL)       ${(f.rows / f.personsSeconds).toFixed(0)} rows/s`);
    console.log(`  lookup by USCC      ${ms(f.byUscc)}`);
    console.log(`  name search         ${ms(f.search)}  (half 2-character prefixes, half 8+-character fragments)`);
  }

  const rate = (s: Stats) => `${s.perSecond.toFixed(1)} sign-ins/s  p50 ${s.p50.toFixed(1)} ms  p99 ${s.p99.toFixed(1)} ms  (${s.errors} errors)`;
  console.log(`\npassword sign-ins, ours, ${connections} people at once, each over and over from a fresh browser`);
  console.log(`  audit trail on                ${rate(throughput.on)}`);
  console.log(`  audit trail off               ${rate(throughput.off)}  (AUDIT_TRAIL=off: measuring only)`);
  console.log(`  ratio on/off: ${(throughput.on.perSecond / throughput.off.perSecond).toFixed(2)}  (argon2id dominates a sign-in, so near 1; one run is noisy, compare a few)`);
  for (const [trail, stats] of Object.entries(throughput)) if (stats.firstError) console.log(`first error, sign-ins with the trail ${trail}: ${stats.firstError}`);
}

const mb = (n: number) => `${n.toFixed(0)} MB`;
console.log(`\nmemory of ours (resident set, RSS), ${seconds} s of client_credentials, SSO hops and ${connections} people signing in with passwords, all at once`);
console.log(`  idle                          ${mb(memory.idle)}`);
console.log(`  right after the load          ${mb(memory.afterLoad)}  (highest during it ${mb(memory.peak)})`);
console.log(`  5 s later                     ${mb(memory.settled)}`);
const { clientCredentials: ccLoad, ssoHops: hopLoad, signIns: signInLoad } = memory.load;
console.log(`  during it: ${ccLoad.perSecond.toFixed(0)} client_credentials/s, ${hopLoad.perSecond.toFixed(0)} hops/s, ${signInLoad.perSecond.toFixed(1)} sign-ins/s; errors ${ccLoad.errors + hopLoad.errors + signInLoad.errors}`);
for (const [name, stats] of Object.entries(memory.load)) if (stats.firstError) console.log(`first error, ${name} under the mixed load: ${stats.firstError}`);
if (audit) {
  const { result, verifySeconds } = audit;
  console.log(`\naudit trail at ${audit.rows} records (written straight into the table by the bench, chained as recordEvent does)`);
  console.log(`  written (bench, SQL)  ${(audit.rows / audit.writeSeconds).toFixed(0)} records/s`);
  if (result.ok) {
    const perMillion = (verifySeconds / result.count) * 1e6;
    console.log(`  audit verify          ${(result.count / verifySeconds).toFixed(0)} records/s, ${perMillion.toFixed(1)} s per million (${verifySeconds.toFixed(1)} s for ${result.count}), intact`);
  } else {
    // The bench's own records must verify: this is a bug, not a measurement.
    console.log(`  audit verify          ERROR: the trail is not intact after ${verifySeconds.toFixed(1)} s: ${result.message} (${result.count} records checked)`);
    process.exitCode = 1;
  }
}
