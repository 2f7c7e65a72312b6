import { spawn } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import * as oidc from 'openid-client';
import { openPostgres, type Database } from '../../src/db/connect.ts';
import { fixedStatement } from '../../src/db/fixed-statements.ts';
import { adminToken, api, makeAdmin } from '../helpers/admin.ts';
import { browser } from '../helpers/browser.ts';
import { onPostgres } from '../helpers/database.ts';
import { missingTools, requireTools, toolsPresent } from '../helpers/examples.ts';
import { freePort, runCli, startNode, type Node } from '../helpers/processes.ts';
import { eventually } from '../helpers/wait.ts';

// Issue 14: nodes behind Debian's PgBouncer (1.18) in transaction mode, where a server
// connection is another client's at the next transaction: the nodes' statements go
// through it with DATABASE_PREPARED_STATEMENTS=false, and what needs a session (the
// change feed's LISTEN) goes to PostgreSQL itself through DATABASE_DIRECT_URL.

const PGBOUNCER = '/usr/sbin/pgbouncer';
const TOOLS = { [PGBOUNCER]: 'pgbouncer' };

// PgBouncer refuses to run as root; the test runs it as nobody.
const asRoot = process.getuid?.() === 0;
const NOBODY = { uid: 65534, gid: 65534 };

type Pooler = { port: number; output: () => string; stop(): Promise<void> };

// PgBouncer in the foreground with an ini of its own in `dir`. `databases`: the name
// clients give, and the pool size of each (every one is `target` on the server).
async function startPgBouncer(dir: string, server: URL, target: string, databases: Record<string, number>): Promise<Pooler> {
  const port = await freePort();
  const user = decodeURIComponent(server.username);
  fs.writeFileSync(path.join(dir, 'userlist.txt'), `"${user}" "${decodeURIComponent(server.password)}"\n`);
  const ini = path.join(dir, 'pgbouncer.ini');
  fs.writeFileSync(
    ini,
    [
      '[databases]',
      ...Object.entries(databases).map(([name, size]) => `${name} = host=${server.hostname} port=${server.port || 5432} dbname=${target} pool_size=${size}`),
      '[pgbouncer]',
      'listen_addr = 127.0.0.1',
      `listen_port = ${port}`,
      'unix_socket_dir =',
      'auth_type = trust',
      `auth_file = ${dir}/userlist.txt`,
      'pool_mode = transaction',
      'max_client_conn = 200',
      `logfile = ${dir}/pgbouncer.log`,
      `pidfile = ${dir}/pgbouncer.pid`,
    ].join('\n'),
  );
  if (asRoot) for (const p of [dir, ...fs.readdirSync(dir).map((f) => path.join(dir, f))]) fs.chownSync(p, NOBODY.uid, NOBODY.gid);
  const child = spawn(PGBOUNCER, [ini], { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'], ...(asRoot ? NOBODY : {}) });
  let output = '';
  child.stdout.on('data', (d) => (output += d));
  child.stderr.on('data', (d) => (output += d));
  const closed = new Promise<void>((resolve) => child.once('close', () => resolve()));
  const pooler: Pooler = {
    port,
    output: () => output + (fs.existsSync(path.join(dir, 'pgbouncer.log')) ? fs.readFileSync(path.join(dir, 'pgbouncer.log'), 'utf8') : ''),
    stop: () => {
      // SIGTERM: PgBouncer's immediate shutdown.
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      return closed;
    },
  };
  const first = Object.keys(databases)[0]!;
  try {
    await eventually(async () => {
      if (child.exitCode !== null) throw new Error(`pgbouncer exited with ${child.exitCode}`);
      const probe = new pg.Client({ connectionString: `postgres://${encodeURIComponent(user)}@127.0.0.1:${port}/${first}` });
      probe.on('error', () => {});
      try {
        await probe.connect();
        await probe.query('SELECT 1');
        return true;
      } catch {
        return false;
      } finally {
        await probe.end().catch(() => {});
      }
    });
  } catch (err) {
    await pooler.stop();
    throw new Error(`pgbouncer did not start: ${(err as Error).message}\n${pooler.output()}`);
  }
  return pooler;
}

describe.skipIf(!onPostgres())('nodes behind PgBouncer in transaction mode (PostgreSQL only: the embedded database has no pooler)', () => {
  // Outside the describe block below, so that under .ci/run a missing tool is a failed
  // test, not skipped ones; on the embedded database, where all is skipped, not looked for.
  const present = onPostgres() && toolsPresent(import.meta.filename, missingTools(TOOLS));
  it.runIf(present)('has its tools installed', () => expect(missingTools(TOOLS)).toEqual([]));

  describe.runIf(present)('two nodes and the command line through PgBouncer', () => {
    const name = `sme_passport_pgb_${crypto.randomBytes(6).toString('hex')}`;
    const person = { username: 'zhao.lei', displayName: '赵磊', password: 'Songshan-Peak-1440' };
    const redirectUri = 'http://127.0.0.1:9/pgbouncer/callback';
    let admin: Database;
    let direct: Database | undefined;
    let dir: string;
    let pooler: Pooler | undefined;
    let nodes: Node[] = [];
    let ports: number[] = [];
    let env: Record<string, string>;
    let client: { client_id: string; client_secret: string };
    const closeLater: Database[] = [];

    beforeAll(async () => {
      requireTools(TOOLS);
      const server = new URL(inject('postgres')!.url);
      admin = openPostgres(server.href, 1);
      // A fresh database: the first node migrates it through the pooler.
      await admin.db.raw(`CREATE DATABASE ${name}`);
      dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sme-passport-pgbouncer-'));
      // 4 server connections for two nodes of up to 10 each and the command line, so
      // that they really are shared; `_one`, a single one, for the failure below.
      pooler = await startPgBouncer(dir, server, name, { [name]: 4, [`${name}_one`]: 1 });
      const directUrl = Object.assign(new URL(server.href), { pathname: `/${name}` }).href;
      direct = openPostgres(directUrl, 2);
      ports = [await freePort(), await freePort()];
      env = {
        DATABASE_URL: `postgres://${server.username}@127.0.0.1:${pooler.port}/${name}`,
        DATABASE_DIRECT_URL: directUrl,
        DATABASE_PREPARED_STATEMENTS: 'false',
        ISSUER: `http://localhost:${ports[0]}`,
        MASTER_KEY: crypto.randomBytes(32).toString('base64'),
        DATA_DIR: dir,
        SIGN_IN_RATE_LIMIT: '10000/60',
      };
      // One after the other: the first migrates and seeds.
      for (const port of ports) nodes.push(await startNode({ ...env, PORT: String(port) }));
    });

    afterAll(async () => {
      await Promise.all(nodes.map((n) => n.stop()));
      for (const d of closeLater) await d.close();
      await direct?.close();
      await pooler?.stop();
      if (admin) {
        await admin.db.raw(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
        await admin.close();
      }
      if (dir) fs.rmSync(dir, { recursive: true, force: true });
    });

    const onNode = (url: URL | string, i: number) => Object.assign(new URL(url), { port: String(ports[i]) });

    async function viaNode(i: number, id = client.client_id, secret = client.client_secret) {
      const config = await oidc.discovery(new URL(nodes[0]!.url), id, secret, undefined, { execute: [oidc.allowInsecureRequests] });
      config[oidc.customFetch] = (url, options) => fetch(onNode(url, i), options as RequestInit);
      return config;
    }

    const cli = async (args: string[], stdin?: string) => {
      const result = await runCli([...args, '--json'], env, stdin);
      expect(result.stderr).toBe('');
      expect(result.code).toBe(0);
      return JSON.parse(result.stdout);
    };

    it('registers a client and a person with the command line through the pooler', async () => {
      const window = await cli(['window', 'create', '--kind', 'service', '--name', '连接池服务机构']);
      client = await cli(['client', 'create', '--window', String(window.id), '--name', 'pgbouncer', '--redirect-uri', redirectUri, '--grant-types', 'authorization_code,refresh_token,client_credentials']);
      await cli(['account', 'create', '--username', person.username, '--name', person.displayName, '--password-stdin'], person.password);
      expect((await cli(['client', 'list', '--window', String(window.id)])).clients).toHaveLength(1);
    });

    it('signs a person in on node 1, answers node 2 from the same session, redeems and refreshes', async () => {
      const you = browser();
      const authorize = async (i: number) => {
        const config = await viaNode(i);
        const verifier = oidc.randomPKCECodeVerifier();
        const state = oidc.randomState();
        const url = oidc.buildAuthorizationUrl(config, { redirect_uri: redirectUri, scope: 'openid profile', code_challenge: await oidc.calculatePKCECodeChallenge(verifier), code_challenge_method: 'S256', state });
        return { config, visit: await you.visit(onNode(url, i), redirectUri), checks: { pkceCodeVerifier: verifier, expectedState: state } };
      };
      const first = await authorize(0);
      const back = await you.submit(first.visit, '/login', { identifier: person.username, password: person.password }, redirectUri);
      if (back.kind !== 'redirect') throw new Error(`sign-in on node 1 failed:\n${back.html.slice(0, 1500)}`);
      const atFirst = await oidc.authorizationCodeGrant(first.config, back.to, first.checks);
      expect(atFirst.claims()!.preferred_username).toBe(person.username);

      // The SSO hop: node 2 knows the session, no password asked.
      const second = await authorize(1);
      if (second.visit.kind !== 'redirect') throw new Error(`node 2 asked again:\n${second.visit.html.slice(0, 1500)}`);
      const atSecond = await oidc.authorizationCodeGrant(second.config, second.visit.to, second.checks);
      expect(atSecond.claims()!.sid).toBe(atFirst.claims()!.sid);

      const refreshed = await oidc.refreshTokenGrant(await viaNode(0), atSecond.refresh_token!);
      expect(refreshed.refresh_token).toBeTruthy();
      expect((await oidc.fetchUserInfo(await viaNode(1), refreshed.access_token, atFirst.claims()!.sub)).sub).toBe(atFirst.claims()!.sub);
      // The code was consumed: a second redemption at node 1 is refused (and revokes
      // what the code gave, so last).
      await expect(oidc.authorizationCodeGrant(await viaNode(0), second.visit.to, second.checks)).rejects.toMatchObject({ error: 'invalid_grant' });
    });

    it('issues client_credentials tokens on both nodes, and stops them on node 2 at once when node 1 disables the client', async () => {
      const tokenAt = async (i: number) =>
        oidc.clientCredentialsGrant(await viaNode(i), { scope: 'openid' }).then(
          () => 'issued',
          (err: { error?: string }) => err.error,
        );
      // Many at once, more than the pooler's 4 server connections.
      const many = await Promise.all(Array.from({ length: 24 }, (_, n) => tokenAt(n % 2)));
      expect(new Set(many)).toEqual(new Set(['issued']));

      const target = { url: nodes[0]!.url, db: direct!.db, masterKey: env.MASTER_KEY! };
      const token = await adminToken(target, await makeAdmin(target, 'pool.admin', [{ role: 'system_admin' }]));
      expect((await api(target, token, 'POST', `/clients/${client.client_id}/disable`)).status).toBe(200);
      // Heard over the direct connection's LISTEN before node 2 answers from its cache.
      expect(await tokenAt(1)).toBe('invalid_client');
      expect((await api({ url: `http://127.0.0.1:${ports[1]}` }, token, 'POST', `/clients/${client.client_id}/enable`)).status).toBe(200);
      expect([await tokenAt(0), await tokenAt(1)]).toEqual(['issued', 'issued']);
    });

    // Two nodes (here two pools) sharing PgBouncer's one server connection: the name the
    // first prepared there is taken for the second, whose own connection has not
    // prepared it. Deterministic with one server connection.
    const read = fixedStatement<{ n: number }>('SELECT ?::int AS n', true);
    const pools = (preparedStatements: boolean) => {
      const url = `postgres://${new URL(inject('postgres')!.url).username}@127.0.0.1:${pooler!.port}/${name}_one`;
      const made = [0, 1].map(() => openPostgres(url, 1, undefined, { preparedStatements }));
      closeLater.push(...made);
      return made;
    };

    it('fails with named prepared statements through PgBouncer 1.18 in transaction mode', async () => {
      const [one, two] = pools(true);
      expect(await read(one!.db, [1])).toEqual([{ n: 1 }]);
      await expect(read(two!.db, [2])).rejects.toThrow(/prepared statement "sme_passport_\w+" already exists/);
    });

    it('works with DATABASE_PREPARED_STATEMENTS=false on the same pooler', async () => {
      const [one, two] = pools(false);
      for (let n = 0; n < 3; n++) {
        expect(await read(one!.db, [n])).toEqual([{ n }]);
        expect(await read(two!.db, [n])).toEqual([{ n }]);
      }
    });
  });
});
