import { execFileSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import * as oidc from 'openid-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { browser, type Browser } from '../helpers/browser.ts';
import { runCliInProcess } from '../helpers/cli-in-process.ts';
import { emptyPostgresDatabase, onPostgres, testDatabase } from '../helpers/database.ts';
import { toolsPresent } from '../helpers/examples.ts';
import { freePort, ROOT, runCli, startNode, type Node } from '../helpers/processes.ts';

// A rolling upgrade (README, "Upgrades"): nodes of the release before the newest
// migration run; the new release's `sme-passport migrate` runs under them; a node of the
// new release joins on the same database. Both serve the same people: a session or a
// refresh token made on either works on the other, and both sign people in.
//
// The old release is the code as it was just before the commit that added the newest
// migration, taken from git history (a shallow clone has none: the file is then skipped,
// or fails under REQUIRE_TEST_TOOLS=1). (PostgreSQL only: the embedded database
// belongs to one process.)

const MIGRATIONS = fs.readdirSync(path.join(ROOT, 'migrations')).filter((f) => f.endsWith('.ts')).sort();
const NEWEST = MIGRATIONS.at(-1)!;

const git = (...args: string[]) => execFileSync('git', args, { cwd: ROOT, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }).trim();

// The commit before the one that added the newest migration, or why it cannot be found.
function oldRelease(): { commit: string } | { missing: string } {
  try {
    const added = git('log', '--diff-filter=A', '--format=%H', '--', `migrations/${NEWEST}`).split('\n')[0];
    if (!added) return { missing: `needs the git history of migrations/${NEWEST} (a full clone, not a shallow one)` };
    return { commit: git('rev-parse', '--verify', `${added}^`) };
  } catch {
    return { missing: `needs git and the history before migrations/${NEWEST} was added (a full clone, not a shallow one)` };
  }
}

const release = onPostgres() ? oldRelease() : undefined;
const missing = release && 'missing' in release ? [release.missing] : [];
const present = toolsPresent(import.meta.filename, missing);

describe.skipIf(!onPostgres() || !present)(`a rolling upgrade over the newest migration${onPostgres() ? '' : ' (skipped: PostgreSQL only, see the comment)'}`, () => {
  const person = { username: 'zhou.min', displayName: '周敏', password: 'Songshan-Shaolin-1928' };
  const redirectUri = 'http://127.0.0.1:9/upgrade/callback';
  let oldTree: string;
  let dataDir: string;
  let fresh: { url: string; drop(): Promise<void> } | undefined;
  let env: Record<string, string>;
  let ports: number[];
  let oldNode: Node | undefined;
  let newNode: Node | undefined;
  let client: { client_id: string; client_secret: string };
  let oldMigrations: string[];

  it('has the git history it needs', () => expect(missing).toEqual([]));

  beforeAll(async () => {
    if (!release || 'missing' in release) return;
    oldTree = fs.mkdtempSync(path.join(os.tmpdir(), 'sme-passport-old-release-'));
    dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'sme-passport-upgrade-'));
    const archive = execFileSync('git', ['archive', '--format=tar', release.commit], { cwd: ROOT, maxBuffer: 1 << 30 });
    execFileSync('tar', ['-x', '-C', oldTree], { input: archive });
    fs.symlinkSync(path.join(ROOT, 'node_modules'), path.join(oldTree, 'node_modules'));
    oldMigrations = fs.readdirSync(path.join(oldTree, 'migrations')).filter((f) => f.endsWith('.ts')).sort();

    fresh = await emptyPostgresDatabase();
    ports = [await freePort(), await freePort()];
    env = { DATABASE_URL: fresh.url, ISSUER: `http://localhost:${ports[0]}`, MASTER_KEY: crypto.randomBytes(32).toString('base64'), DATA_DIR: dataDir };
    // The old node migrates the fresh database to the old schema.
    oldNode = await startNode({ ...env, PORT: String(ports[0]) }, { cwd: oldTree });

    // The window site and the person, made by the old release's command line.
    const oldCli = async (args: string[], stdin?: string) => {
      const r = await runCli([...args, '--json'], env, stdin, { cwd: oldTree });
      expect({ code: r.code, stderr: r.stderr }).toEqual({ code: 0, stderr: '' });
      return JSON.parse(r.stdout);
    };
    const { windows } = (await oldCli(['window', 'list'])) as { windows: Array<{ id: number }> };
    client = await oldCli(['client', 'create', '--window', String(windows[0]!.id), '--name', '升级测试', '--redirect-uri', redirectUri]);
    await oldCli(['account', 'create', '--username', person.username, '--name', person.displayName, '--password-stdin'], `${person.password}\n`);
  });

  afterAll(async () => {
    await Promise.all([oldNode?.stop(), newNode?.stop()]);
    await fresh?.drop();
    for (const dir of [oldTree, dataDir]) if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  // openid-client as the window site, its requests sent to node i (0 old, 1 new); the
  // issuer is the same.
  const onNode = (url: URL | string, i: number) => Object.assign(new URL(url), { port: String(ports[i]) });
  async function viaNode(i: number) {
    const config = await oidc.discovery(new URL(env.ISSUER!), client.client_id, client.client_secret, undefined, { execute: [oidc.allowInsecureRequests] });
    config[oidc.customFetch] = (url, options) => fetch(onNode(url, i), options as RequestInit);
    return config;
  }

  // A code flow at node i in this browser: signed in already (single sign-on, no
  // password asked) or with the password; the tokens from that node.
  async function signIn(you: Browser, i: number, how: 'by single sign-on' | 'with the password') {
    const config = await viaNode(i);
    const verifier = oidc.randomPKCECodeVerifier();
    const state = oidc.randomState();
    const url = oidc.buildAuthorizationUrl(config, { redirect_uri: redirectUri, scope: 'openid profile', code_challenge: await oidc.calculatePKCECodeChallenge(verifier), code_challenge_method: 'S256', state });
    const first = await you.visit(onNode(url, i), redirectUri);
    const back = how === 'with the password' ? await you.submit(first, '/login', { identifier: person.username, password: person.password }, redirectUri) : first;
    expect(back.kind === 'redirect' ? 'redirected back with a code' : `a page at ${back.url.pathname}`).toBe('redirected back with a code');
    if (back.kind !== 'redirect') throw new Error('not signed in');
    return oidc.authorizationCodeGrant(config, back.to, { pkceCodeVerifier: verifier, expectedState: state });
  }

  it('serves both releases on one schema: sessions and refresh tokens cross between them, and each signs people in', async () => {
    const onOld = browser();
    const tokensOfOld = await signIn(onOld, 0, 'with the password');
    expect(tokensOfOld.refresh_token).toBeTruthy();
    const sub = tokensOfOld.claims()!.sub;

    // The new release's migrations, applied under the running old node.
    const migrated = await runCli(['migrate', '--json'], env);
    expect({ code: migrated.code, stderr: migrated.stderr }).toEqual({ code: 0, stderr: '' });
    expect((JSON.parse(migrated.stdout) as { applied: string[] }).applied).toEqual(MIGRATIONS.filter((f) => !oldMigrations.includes(f)));
    expect((JSON.parse(migrated.stdout) as { applied: string[] }).applied).toContain(NEWEST);

    newNode = await startNode({ ...env, PORT: String(ports[1]) });

    // The session made on the old node, on the new one; the old node's refresh token too.
    expect((await signIn(onOld, 1, 'by single sign-on')).claims()!.sub).toBe(sub);
    const refreshed = await oidc.refreshTokenGrant(await viaNode(1), tokensOfOld.refresh_token!);
    expect(refreshed.claims()!.sub).toBe(sub);

    // A sign-in on the new node, and its session on the old one; its refresh token there.
    const onNew = browser();
    const tokensOfNew = await signIn(onNew, 1, 'with the password');
    expect((await signIn(onNew, 0, 'by single sign-on')).claims()!.sub).toBe(sub);
    expect((await oidc.refreshTokenGrant(await viaNode(0), tokensOfNew.refresh_token!)).claims()!.sub).toBe(sub);

    // The old node, on the migrated schema, still signs a new browser in.
    expect((await signIn(browser(), 0, 'with the password')).claims()!.sub).toBe(sub);
  });
});

// During the rolling upgrade a node of the release before may restart, on a schema the new
// release's migrations have expanded: it starts, and its command line works. (Releases
// before this one refused: knex stops at an applied migration its directory lacks.)
describe('a schema a later release has migrated', () => {
  it('is used as it is; an applied migration older than the newest known that this code lacks is refused', async () => {
    const database = await testDatabase();
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sme-passport-later-release-'));
    const cli = (argv: string[]) => runCliInProcess(database.db, [...argv, '--json'], { dir });
    try {
      await database.db('knex_migrations').insert({ name: '99991231000000_a_later_release.ts', batch: 99, migration_time: new Date() });
      const migrated = await cli(['migrate']);
      expect({ ...migrated, stdout: JSON.parse(migrated.stdout) }).toEqual({ code: 0, stdout: { applied: [] }, stderr: '' });
      expect((await cli(['window', 'list'])).code).toBe(0);

      await database.db('knex_migrations').insert({ name: '20000101000000_not_here.ts', batch: 99, migration_time: new Date() });
      const refused = await cli(['migrate']);
      expect(refused).toEqual({ code: 3, stdout: '', stderr: expect.stringMatching(/^error: the database has migrations this code lacks: 20000101000000_not_here\.ts \(not a later release's/) });
      expect((await cli(['window', 'list'])).code).toBe(3);
    } finally {
      await database.close();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
