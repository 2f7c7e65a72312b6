// npm run bench: ours against bare oidc-provider, in one run, on this machine. A
// measurement, never pass/fail. Three servers are up at once, each in its own process:
// bare oidc-provider in memory (the ceiling), ours on PostgreSQL (a database of the
// bench's own, created and dropped here) and ours on embedded PGlite. Each scenario
// runs in paired, rotated rounds (rounds.ts); the table (table.ts) gives medians of
// the per-round ratios with their spread. Settings: settings.ts, and README.md.
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Spec } from './common.ts';
import { auditAtScale, type AuditFigures } from './audit.ts';
import { backendPids, createBenchDatabase, type BenchDatabase } from './database.ts';
import { clientCredentials, passwordSignIns, signIn, ssoHops, type Stats } from './load.ts';
import { cpuBusyPercent, resetPeak, residentMb } from './proc.ts';
import { registryAtScale, signInLatency, type Latency, type RegistryFigures } from './registry.ts';
import { pairedRounds, type Target } from './rounds.ts';
import { scenarios, type Scenario } from './scenarios.ts';
import { killServers, startServer, type Server } from './servers.ts';
import { readSettings, SettingsError, type ScenarioName, type Settings } from './settings.ts';
import { BARE, benchTable, PG, PGLITE, type Memory, type MixedResult, type ScenarioResult, type TrailResult } from './table.ts';

let settings: Settings;
try {
  settings = readSettings(process.env);
} catch (err) {
  if (!(err instanceof SettingsError)) throw err;
  console.error(err.message);
  process.exit(2);
}

const secret = () => crypto.randomBytes(32).toString('base64url');
const spec: Spec = {
  clients: {
    service: { id: 'bench-service', secret: secret() },
    a: { id: 'bench-a', secret: secret() },
    b: { id: 'bench-b', secret: secret() },
  },
  redirectUri: 'http://127.0.0.1:9/cb', // never called: the code is read off the Location header
  people: Array.from({ length: settings.connections }, (_, i) => ({ username: `bench-person-${i + 1}`, password: 'bench-Passw0rd-42' })),
};

const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

const busyBefore = await cpuBusyPercent(1000);
const database = await createBenchDatabase(settings.serverUrl, settings.databaseName);
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sme-passport-bench-'));
process.on('exit', () => fs.rmSync(dir, { recursive: true, force: true }));
let cleaning: Promise<void> | undefined;
const cleanUp = () => (cleaning ??= database.drop().finally(() => fs.rmSync(dir, { recursive: true, force: true })));
// Ctrl-C or a kill: the servers go first (they hold the database), then the database.
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    console.error(`${signal}: stopping the servers and dropping database ${database.name} ...`);
    killServers();
    void cleanUp().finally(() => process.exit(130));
  });
}
console.error(`bench database ${database.name} on ${new URL(settings.serverUrl).host}; ${settings.rounds} rounds of ${settings.roundSeconds} s per server and scenario`);

const specEnv = { BENCH_SPEC: JSON.stringify(spec) };
// One master key for the run: two nodes on one database unseal the same signing keys.
const masterKey = crypto.randomBytes(32).toString('base64');
const oursEnv = (dataDir: string, databaseUrl?: string) => ({
  ...specEnv,
  BENCH_OURS_DATA_DIR: path.join(dir, dataDir),
  BENCH_MASTER_KEY: masterKey,
  ...(databaseUrl && { BENCH_OURS_DATABASE_URL: databaseUrl, BENCH_OURS_PREPARED_STATEMENTS: String(settings.preparedStatements) }),
});
const startOursOnPostgres = (name: string, extra: Record<string, string> = {}) => startServer(name, './serve-ours.ts', { ...oursEnv(name, database.url), ...extra });
const targetOn = (server: Server, pg: BenchDatabase | undefined): Target => ({
  server,
  countsStatements: server.name !== BARE,
  ...(pg && { backends: () => backendPids(pg) }),
});

type Prepared = (seconds: number) => Promise<Stats>;

async function runScenario(targets: Target[], scenario: Scenario): Promise<ScenarioResult> {
  const loads = new Map<string, Prepared>();
  for (const { server } of targets) loads.set(server.name, await scenario.prepare(server, spec, settings.connections));
  // JIT, connection pools, caches; not measured.
  if (settings.warmupSeconds > 0) for (const { server } of targets) await loads.get(server.name)!(settings.warmupSeconds);
  const rounds = await pairedRounds(scenario.name, targets, settings.rounds, (server) => loads.get(server.name)!(settings.roundSeconds));
  return { scenario, rounds };
}

// Everything at once on one server: tokens, hops and password sign-ins.
async function mixedLoad(server: Server, seconds: number): Promise<Record<ScenarioName, Stats>> {
  const cookies: string[] = [];
  for (const person of spec.people) cookies.push(await signIn(server.url, server.clients.a, spec.redirectUri, person));
  const flow = { base: server.url, redirectUri: spec.redirectUri };
  const [client_credentials, sso_hop, sign_in] = await Promise.all([
    clientCredentials(server.url, server.clients.service, seconds, settings.connections),
    ssoHops(flow, cookies, server.clients.b, seconds),
    passwordSignIns(flow, server.clients.a, spec.people, seconds),
  ]);
  return { client_credentials, sso_hop, sign_in };
}

const results: ScenarioResult[] = [];
const memory: Memory = {};
let mixed: MixedResult | undefined;
let trail: TrailResult | undefined;
let scale: { registry?: { figures: RegistryFigures; before: Latency; after: Latency }; audit?: AuditFigures } | undefined;
const servers: Server[] = [];
try {
  console.error('starting bare oidc-provider, ours on PostgreSQL and ours on PGlite ...');
  servers.push(
    ...(await Promise.all([
      startServer(BARE, './serve-bare.ts', specEnv),
      startOursOnPostgres(PG),
      startServer(PGLITE, './serve-ours.ts', oursEnv(PGLITE)),
    ])),
  );
  const [bare, ours, embedded] = servers as [Server, Server, Server];
  const targets = [targetOn(bare, undefined), targetOn(ours, database), targetOn(embedded, undefined)];

  await pause(2000);
  for (const server of servers) {
    memory[server.name] = { idle: residentMb(server.pid).rss, peak: NaN };
    resetPeak(server.pid);
  }

  for (const name of settings.scenarios) results.push(await runScenario(targets, scenarios[name]));

  if (settings.mixedSeconds > 0) {
    mixed = {};
    for (const server of servers) {
      console.error(`${server.name}: mixed load for ${settings.mixedSeconds} s ...`);
      mixed[server.name] = await mixedLoad(server, settings.mixedSeconds);
    }
  }
  for (const server of servers) memory[server.name]!.peak = residentMb(server.pid).peak;

  if (settings.scale) {
    scale = {};
    // A second node on the same database without the audit trail, against ours with it.
    const off = await startOursOnPostgres(`${PG}-trail-off`, { BENCH_OURS_AUDIT_TRAIL: 'off' });
    servers.push(off);
    const sign = await runScenario([targetOn(ours, database), targetOn(off, database)], scenarios.sign_in);
    trail = { rounds: sign.rounds, on: PG, off: off.name };
    const { registryRows, auditRows } = settings.scale;
    if (registryRows > 0) {
      const person = spec.people[0]!;
      const before = await signInLatency(ours.url, ours.clients.a, spec.redirectUri, person, 100);
      console.error(`registry: generating and importing ${registryRows} enterprises, then ${registryRows} persons ...`);
      const figures = await registryAtScale(database.url, dir, registryRows, person.password);
      scale.registry = { figures, before, after: await signInLatency(ours.url, ours.clients.a, spec.redirectUri, person, 100) };
    }
    if (auditRows > 0) {
      console.error(`audit: writing ${auditRows} chained records, then verifying the whole trail ...`);
      scale.audit = await auditAtScale(database.url, auditRows);
    }
  }
} finally {
  await Promise.all(servers.map((s) => s.stop()));
  // Any that started while another failed to.
  killServers();
  await cleanUp();
}

const cpu = os.cpus();
console.log(`\nnode ${process.version}, ${cpu.length} CPUs (${cpu[0]?.model.trim()}); CPUs ${busyBefore.toFixed(0)}% busy just before the run${busyBefore > 20 ? ' (something else is running: absolute figures are low and noisy, ratios less so)' : ''}`);
console.log(`${settings.rounds} rounds × ${settings.roundSeconds} s per server and scenario after ${settings.warmupSeconds} s of warm-up, ${settings.connections} connections; PostgreSQL on ${new URL(settings.serverUrl).host}, database ${database.name}\n`);
console.log(benchTable(results, memory, mixed && { result: mixed, seconds: settings.mixedSeconds }, trail));
console.log(`
- ratios: per round, the two servers' operations per second in that round; the median over the rounds, (min–max) across them.
- statements: counted in the server process at the driver (pg's Client.query, PGlite's query and exec), per completed operation; BEGIN/COMMIT (and ROLLBACK, SAVEPOINT) shown apart. Background work (key reload, purge, flushes) falls into whatever stretch it happens in.
- CPU: user + system time from /proc of the server process, per operation; "PG backends" adds the PostgreSQL client backends of the bench database (not autovacuum, WAL writer or checkpointer). PGlite runs inside its server process. The load generator's own CPU is not counted.
- RSS: resident set of each server process; idle after start-up, peak (VmHWM) from then to the end of the load.
- sso_hop: authorize with the session cookie -> code -> token with PKCE; sign_in: authorize -> login page -> password -> code, argon2id on ours, any password on bare.`);

// Every failed operation is a finding: a measurement with errors is not comparable.
for (const { scenario, rounds } of [...results, ...(trail ? [{ scenario: scenarios.sign_in, rounds: trail.rounds }] : [])]) {
  for (const server of rounds[0]!.keys()) {
    const errors = rounds.reduce((n, round) => n + round.get(server)!.stats.errors, 0);
    const first = rounds.map((round) => round.get(server)!.stats.firstError).find(Boolean);
    if (errors) console.log(`errors, ${scenario.name} on ${server}: ${errors}${first ? `, first: ${first}` : ''}`);
  }
}
for (const [server, load] of Object.entries(mixed ?? {})) {
  for (const [name, stats] of Object.entries(load)) if (stats.errors) console.log(`errors, mixed ${name} on ${server}: ${stats.errors}, first: ${stats.firstError}`);
}

const ms = (l: Latency) => `p50 ${l.p50.toFixed(1)} ms  p99 ${l.p99.toFixed(1)} ms  (${l.count})`;
if (scale?.registry) {
  const { figures: f, before, after } = scale.registry;
  console.log(`\nregistry at ${f.rows} rows (ours, PostgreSQL)`);
  console.log(`  enterprise import   ${(f.rows / f.importSeconds).toFixed(0)} rows/s (${f.importSeconds.toFixed(1)} s, ${f.rejected} rejected)`);
  console.log(`  persons (SQL)       ${(f.rows / f.personsSeconds).toFixed(0)} rows/s`);
  console.log(`  lookup by USCC      ${ms(f.byUscc)}`);
  console.log(`  name search         ${ms(f.search)}  (half 2-character prefixes, half 8+-character fragments)`);
  console.log(`  password sign-ins, one after another: before the import ${ms(before)}; after ${ms(after)}`);
}
if (scale?.audit) {
  const { result, verifySeconds, rows, writeSeconds } = scale.audit;
  console.log(`\naudit trail at ${rows} records (written straight into the table by the bench, chained as recordEvent does)`);
  console.log(`  written (bench, SQL)  ${(rows / writeSeconds).toFixed(0)} records/s`);
  if (result.ok) {
    const perMillion = (verifySeconds / result.count) * 1e6;
    console.log(`  audit verify          ${(result.count / verifySeconds).toFixed(0)} records/s, ${perMillion.toFixed(1)} s per million (${verifySeconds.toFixed(1)} s for ${result.count}), intact`);
  } else {
    // The bench's own records must verify: this is a bug, not a measurement.
    console.log(`  audit verify          ERROR: the trail is not intact after ${verifySeconds.toFixed(1)} s: ${result.message} (${result.count} records checked)`);
    process.exitCode = 1;
  }
}
