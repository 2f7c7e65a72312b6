import { spawn } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import * as jose from 'jose';
import * as oidc from 'openid-client';
import { afterAll, describe, expect, inject, it } from 'vitest';
import { openPostgres } from '../../src/db/connect.ts';
import { browser } from '../helpers/browser.ts';
import { onPostgres } from '../helpers/database.ts';
import { missingTools, toolsPresent } from '../helpers/examples.ts';
import { privateCluster, whyNoPrivateCluster, type PostgresCluster } from '../helpers/postgres-cluster.ts';
import { freePort, ROOT, runCli, spawnNode, startNode, type Node } from '../helpers/processes.ts';
import { relyingParty } from '../helpers/window-site.ts';

// The restore drill (README, "Backup and restore"): a person signs in at a window; the
// database is backed up and restored into a new one with the README's commands, run
// exactly as written; a node on the copy, with the same master key, carries on as if
// nothing had happened: the session (an SSO hop without a password), the refresh token,
// the signing keys (the old ID token verifies), the audit trail. A node with another
// key is refused. Each step is timed, and the times printed, so they can be quoted.
// PostgreSQL with pg_dump and pg_restore; the embedded database's own recipe (stop,
// archive the data folder) runs without PostgreSQL.

const MISMATCH = 'MASTER_KEY does not open this database: its secrets were sealed with another master key. Start with the master key kept for this database (README, "Backup and restore").';
const TOOLS = { '/usr/bin/pg_dump': 'postgresql-client', '/usr/bin/pg_restore': 'postgresql-client', '/usr/bin/createdb': 'postgresql-client' };
const RESTORED_NAME = 'sme_passport_restored';
const person = { username: 'zhao.lei', displayName: '赵磊', password: 'Songshan-Mountain-1492' };
const redirectUri = 'http://127.0.0.1:9/restore-drill/callback';

// The section's shell blocks, as the README has them.
const section = fs.readFileSync(path.join(ROOT, 'README.md'), 'utf8').split('\n## Backup and restore\n')[1]!.split('\n## ')[0]!;
const blocks = [...section.matchAll(/```sh\n([\s\S]*?)```/g)].map((m) => m[1]!);
const readmeBlock = (command: string) => {
  const found = blocks.filter((b) => b.includes(command));
  if (found.length !== 1) throw new Error(`README, "Backup and restore": expected one sh block with ${command}, found ${found.length}`);
  return found[0]!;
};

// A README block run by bash as an operator would paste it, with the variables it names.
function shell(script: string, cwd: string, env: Record<string, string>): Promise<void> {
  const child = spawn('bash', ['-euo', 'pipefail', '-c', script], { cwd, env: { PATH: process.env.PATH ?? '', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout.on('data', (d) => (output += d));
  child.stderr.on('data', (d) => (output += d));
  return new Promise((resolve, reject) =>
    child.on('close', (code) => (code === 0 ? resolve() : reject(new Error(`exit ${code} from:\n${script}\n${output}`)))),
  );
}

// Each step's name and seconds, printed when the drill ends (also when it fails).
function stopwatch(title: string) {
  const steps: Array<{ step: string; seconds: number }> = [];
  return {
    async step<T>(step: string, work: () => Promise<T>): Promise<T> {
      const start = performance.now();
      const value = await work();
      steps.push({ step, seconds: Math.round(performance.now() - start) / 1000 });
      return value;
    },
    print() {
      const total = steps.reduce((sum, s) => sum + s.seconds, 0);
      console.log([`${title}:`, ...steps.map((s, i) => `  ${i + 1}. ${s.step}: ${s.seconds.toFixed(1)} s`), `  total: ${total.toFixed(1)} s`].join('\n'));
    },
  };
}

type Stoppable = Pick<Node, 'stop'>;

type Store = {
  // The environment of a node and of the command line on the original and on the copy.
  original: Record<string, string>;
  restored: Record<string, string>;
  // The embedded database is copied with its server stopped.
  stopFirst: boolean;
  backup(workDir: string): Promise<void>;
  restore(workDir: string): Promise<void>;
};

// The drill itself, on either database. Nodes it starts are left in `nodes` for the caller to stop.
async function drill(store: Store, watch: ReturnType<typeof stopwatch>, nodes: Stoppable[], workDir: string) {
  const port = await freePort();
  const masterKey = crypto.randomBytes(32).toString('base64');
  const issuer = `http://localhost:${port}`;
  const common = { PORT: String(port), ISSUER: issuer, MASTER_KEY: masterKey };
  const original = { ...store.original, ...common };
  const restored = { ...store.restored, ...common };

  const first = await watch.step('start a node on a fresh database', () => startNode(original));
  nodes.push(first);

  const { rp, you, signedIn, kids } = await watch.step('register a window client and a person, sign in with openid-client', async () => {
    const cli = async (argv: string[], stdin?: string) => {
      const r = await runCli([...argv, '--json'], original, stdin);
      if (r.code !== 0) throw new Error(`sme-passport ${argv.join(' ')}: exit ${r.code}\n${r.stderr}`);
      return JSON.parse(r.stdout) as Record<string, unknown>;
    };
    const windows = (await cli(['window', 'list'])).windows as Array<{ id: number }>;
    const client = await cli(['client', 'create', '--window', String(windows[0]!.id), '--name', 'restore drill', '--redirect-uri', redirectUri]);
    await cli(['account', 'create', '--username', person.username, '--name', person.displayName, '--password-stdin'], person.password);
    const rp = await relyingParty({ url: issuer }, { clientId: client.client_id as string, clientSecret: client.client_secret as string, redirectUri });
    const you = browser();
    const signedIn = await rp.signIn(you, { identifier: person.username, password: person.password });
    expect(signedIn.askedForPassword).toBe(true);
    expect(signedIn.tokens.refresh_token).toBeTruthy();
    const kids = ((await (await fetch(`${issuer}/jwks`)).json()) as jose.JSONWebKeySet).keys.map((k) => k.kid).sort();
    return { rp, you, signedIn, kids };
  });

  if (store.stopFirst) await watch.step('stop the node', () => first.stop());
  await watch.step('back up (README)', () => store.backup(workDir));
  await watch.step('restore into a new database (README)', () => store.restore(workDir));
  if (!store.stopFirst) await watch.step('stop the first node', () => first.stop());

  const second = await watch.step('start a node on the copy, same master key', () => startNode(restored));
  nodes.push(second);

  await watch.step('the session: an SSO hop without a password', async () => {
    const hop = await rp.signIn(you, undefined);
    expect(hop.askedForPassword).toBe(false);
    expect({ sub: hop.claims.sub, sid: hop.claims.sid }).toEqual({ sub: signedIn.claims.sub, sid: signedIn.claims.sid });
  });

  await watch.step('the refresh token refreshes', async () => {
    const refreshed = await oidc.refreshTokenGrant(rp.config, signedIn.tokens.refresh_token!);
    expect(refreshed.claims()!.sub).toBe(signedIn.claims.sub);
    expect((await oidc.fetchUserInfo(rp.config, refreshed.access_token, signedIn.claims.sub)).preferred_username).toBe(person.username);
  });

  await watch.step('the same signing keys: the old ID token verifies', async () => {
    const jwks = new URL(`${issuer}/jwks`);
    expect(((await (await fetch(jwks)).json()) as jose.JSONWebKeySet).keys.map((k) => k.kid).sort()).toEqual(kids);
    const { payload } = await jose.jwtVerify(signedIn.tokens.id_token!, jose.createRemoteJWKSet(jwks), { issuer, audience: rp.clientId });
    expect(payload.sub).toBe(signedIn.claims.sub);
  });

  await watch.step('audit verify on the copy', async () => {
    const r = await runCli(['audit', 'verify', '--json'], restored);
    expect({ code: r.code, stderr: r.stderr }).toEqual({ code: 0, stderr: '' });
    const verified = JSON.parse(r.stdout) as { ok: boolean; count: number };
    expect(verified.ok).toBe(true);
    expect(verified.count).toBeGreaterThan(0);
  });

  await watch.step('another master key on the copy: refused', async () => {
    // The embedded database belongs to one process: the node on it stops first.
    if (store.stopFirst) await second.stop();
    const refused = spawnNode({ ...restored, PORT: String(await freePort()), MASTER_KEY: crypto.randomBytes(32).toString('base64') });
    nodes.push(refused);
    await expect(refused.started).rejects.toThrow(/node exited with 2/);
    expect(refused.output()).toContain(`"msg":${JSON.stringify(`sme-passport: ${MISMATCH}`)}`);
  });
}

const present = onPostgres() && toolsPresent(import.meta.filename, missingTools(TOOLS));
it.runIf(present)('has its tools installed (PostgreSQL)', () => expect(missingTools(TOOLS)).toEqual([]));

// As the README has it: everything, the node included, as the role that owns the tables,
// which may create databases and is not a superuser. Restored on the same PostgreSQL
// server, and on another one (a cluster of the test's own) where the role is created
// first, as the README says.
function postgresDrill(elsewhere: boolean) {
  const watch = stopwatch(`restore drill, PostgreSQL (pg_dump, createdb, pg_restore)${elsewhere ? ', to another server' : ''}`);
  const nodes: Stoppable[] = [];
  // Made when the drill runs: a suite that is skipped still has its body read.
  let workDir: string | undefined;
  const suffix = crypto.randomBytes(6).toString('hex');
  const owner = `sme_passport_drill_${suffix}`;
  const originalName = `sme_passport_test_${suffix}`;
  const restoredName = `sme_passport_test_${suffix}_restored`;
  const shared = () => inject('postgres')!.url;
  let other: PostgresCluster | undefined;
  const asOwner = (server: string, database: string) => Object.assign(new URL(server), { username: owner, password: '', pathname: `/${database}` }).href;
  const createOwner = async (server: string) => {
    const admin = openPostgres(server);
    try {
      await admin.db.raw(`CREATE ROLE ${owner} LOGIN CREATEDB`);
    } finally {
      await admin.close();
    }
  };

  afterAll(async () => {
    watch.print();
    for (const node of nodes) await node.stop();
    await other?.drop();
    const admin = openPostgres(shared());
    for (const name of [originalName, restoredName]) await admin.db.raw(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
    await admin.db.raw(`DROP ROLE IF EXISTS ${owner}`);
    await admin.close();
    if (workDir) fs.rmSync(workDir, { recursive: true, force: true });
  });

  return async () => {
    workDir = fs.mkdtempSync(path.join(os.tmpdir(), 'sme-passport-drill-'));
    await createOwner(shared());
    const admin = openPostgres(shared());
    try {
      await admin.db.raw(`CREATE DATABASE ${originalName} OWNER ${owner}`);
    } finally {
      await admin.close();
    }
    if (elsewhere) {
      other = await privateCluster('postgres_spare');
      await createOwner(other.url);
    }
    const target = other?.url ?? shared();
    const dataDir = path.join(workDir, 'data');
    await drill(
      {
        original: { DATABASE_URL: asOwner(shared(), originalName), DATA_DIR: dataDir },
        restored: { DATABASE_URL: asOwner(target, restoredName), DATA_DIR: dataDir },
        stopFirst: false,
        backup: (cwd) => shell(readmeBlock('pg_dump'), cwd, { OWNER_URL: asOwner(shared(), originalName) }),
        restore: (cwd) => shell(readmeBlock('pg_restore').replaceAll(RESTORED_NAME, restoredName), cwd, { SERVER_URL: asOwner(target, 'postgres'), RESTORED_URL: asOwner(target, restoredName) }),
      },
      watch,
      nodes,
      workDir,
    );
  };
}

describe.runIf(present)(`the restore drill on PostgreSQL${onPostgres() ? '' : ' (skipped: PostgreSQL only)'}`, () => {
  it('restores a database whose sessions, refresh tokens, keys and audit trail carry on, and refuses another key', postgresDrill(false));
});

const noCluster = whyNoPrivateCluster();
describe.runIf(present && !noCluster)(`the restore drill to another PostgreSQL server${noCluster ? ` (skipped: ${noCluster})` : ''}`, () => {
  it('restores onto another server where the owner role was made first, and everything carries on there', postgresDrill(true));
});

describe.skipIf(onPostgres())(`the restore drill on the embedded database${onPostgres() ? ' (skipped: runs without TEST_DATABASE_URL)' : ''}`, () => {
  const watch = stopwatch('restore drill, embedded database (stop, tar, untar)');
  const nodes: Stoppable[] = [];
  let workDir: string | undefined;

  afterAll(async () => {
    watch.print();
    for (const node of nodes) await node.stop();
    if (workDir) fs.rmSync(workDir, { recursive: true, force: true });
  });

  it('restores a data folder whose sessions, refresh tokens, keys and audit trail carry on, and refuses another key', async () => {
    workDir = fs.mkdtempSync(path.join(os.tmpdir(), 'sme-passport-drill-'));
    const original = path.join(workDir, 'original');
    const restored = path.join(workDir, 'restored');
    await drill(
      {
        original: { DATA_DIR: original },
        restored: { DATA_DIR: restored },
        stopFirst: true,
        backup: (cwd) => shell(readmeBlock('tar --create'), cwd, { DATA_DIR: original }),
        restore: (cwd) => shell(readmeBlock('tar --extract'), cwd, { DATA_DIR: restored }),
      },
      watch,
      nodes,
      workDir,
    );
  });
});
