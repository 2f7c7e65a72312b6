import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as oidc from 'openid-client';
import { migrate } from '../../src/db/migrate.ts';
import { seedWindowRegistry } from '../../src/windows/seed.ts';
import { adminToken, api, makeAdmin } from '../helpers/admin.ts';
import { onPostgres, testDatabase, type TestDatabase } from '../helpers/database.ts';
import { freePort, runCli, startNode, type Node } from '../helpers/processes.ts';
import { eventually } from '../helpers/wait.ts';

// Two server processes on one PostgreSQL database, each caching clients, windows,
// accounts and roles (src/db/cache.ts). Whatever changes on node A, through the admin
// API, the command line or plain SQL, node B holds at its very next request, however
// warm its caches are: nothing waits for B to hear of the change (a cache hit waits for
// the change feed's fence); and a node that cannot hear of changes caches nothing.
describe.skipIf(!onPostgres())(`node caches on two nodes${onPostgres() ? '' : ' (skipped: PostgreSQL only: the embedded database belongs to one process)'}`, () => {
  let database: TestDatabase;
  let dataDir: string;
  // Node B listens for changes as a database role of its own (DATABASE_DIRECT_URL), so
  // the test can end its listening connection and keep it from coming back.
  const listenRole = `sme_passport_listen_${crypto.randomBytes(4).toString('hex')}`;
  let nodes: Node[] = [];
  let ports: number[] = [];
  let env: Record<string, string>;
  let system: string;
  let security: string;

  const A = () => ({ url: `http://127.0.0.1:${ports[0]}` });
  const B = () => ({ url: `http://127.0.0.1:${ports[1]}` });

  beforeAll(async () => {
    database = await testDatabase();
    dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'sme-passport-node-caches-'));
    await migrate(database);
    await seedWindowRegistry(database.db);
    await database.db.raw(`CREATE ROLE ${listenRole} LOGIN`);
    const listenUrl = new URL(database.url!);
    listenUrl.username = listenRole;
    ports = [await freePort(), await freePort()];
    env = { DATABASE_URL: database.url!, ISSUER: `http://localhost:${ports[0]}`, MASTER_KEY: crypto.randomBytes(32).toString('base64'), DATA_DIR: dataDir, SIGN_IN_RATE_LIMIT: '10000/60' };
    nodes = await Promise.all([startNode({ ...env, PORT: String(ports[0]) }), startNode({ ...env, PORT: String(ports[1]), DATABASE_DIRECT_URL: listenUrl.href })]);
    const target = { url: nodes[0]!.url, db: database.db, masterKey: env.MASTER_KEY! };
    system = await adminToken(target, await makeAdmin(target, 'caches.system', [{ role: 'system_admin' }]));
    security = await adminToken(target, await makeAdmin(target, 'caches.security', [{ role: 'security_admin' }]));
  });

  afterAll(async () => {
    await Promise.all(nodes.map((n) => n.stop()));
    await database?.db.raw(`DROP ROLE IF EXISTS ${listenRole}`);
    await database?.close();
    if (dataDir) fs.rmSync(dataDir, { recursive: true, force: true });
  });

  // A client_credentials client of a new window of its own.
  async function machineClient(name: string) {
    const window = (await (api(A(), system, 'POST', '/windows', { kind: 'service', name }))).body as { id: number };
    const made = await (api(A(), system, 'POST', `/windows/${window.id}/clients`, { name, grantTypes: ['client_credentials'] }));
    expect(made.status).toBe(201);
    return { windowId: window.id, clientId: made.body.clientId as string, secret: made.body.clientSecret as string };
  }

  const tokenAt = async (node: { url: string }, clientId: string, secret: string) => {
    const config = await oidc.discovery(new URL(nodes[0]!.url), clientId, secret, undefined, { execute: [oidc.allowInsecureRequests] });
    config[oidc.customFetch] = (url, options) => fetch(new URL(new URL(url).pathname + new URL(url).search, node.url), options as RequestInit);
    return oidc.clientCredentialsGrant(config, { scope: 'openid' }).then(
      () => 'issued',
      (err: { error?: string }) => err.error,
    );
  };

  // Node B's own account of its caches (/metrics).
  async function caches(node: { url: string }) {
    const text = await (await fetch(`${node.url}/metrics`)).text();
    const value = (pattern: RegExp) => Number(pattern.exec(text)?.[1] ?? 0);
    return {
      feedUp: value(/^sme_passport_change_feed_up (\d+)$/m),
      clientHits: value(/^sme_passport_cache_hits_total\{cache="client"\} (\d+)$/m),
      clientBypassed: value(/^sme_passport_cache_bypassed_total\{cache="client"\} (\d+)$/m),
    };
  }

  // B has answered from its cache: the client is warm there. (B keeps nothing it read
  // while the notification of the client's creation was still on its way.)
  async function warmOnB(clientId: string, secret: string) {
    await eventually(
      async () => {
        const before = (await caches(B())).clientHits;
        expect(await tokenAt(B(), clientId, secret)).toBe('issued');
        return (await caches(B())).clientHits > before;
      },
      { every: 50 },
    );
  }

  it('refuses a client disabled on node A at node B’s very next request, and takes it back when enabled', async () => {
    const c = await machineClient('缓存两节点甲');
    await warmOnB(c.clientId, c.secret);
    expect((await (api(A(), system, 'POST', `/clients/${c.clientId}/disable`))).status).toBe(200);
    expect(await tokenAt(B(), c.clientId, c.secret)).toBe('invalid_client');
    expect((await (api(A(), system, 'POST', `/clients/${c.clientId}/enable`))).status).toBe(200);
    expect(await tokenAt(B(), c.clientId, c.secret)).toBe('issued');
  });

  it('refuses the old secret at node B as soon as node A rotates it with no grace period', async () => {
    const c = await machineClient('缓存两节点乙');
    await warmOnB(c.clientId, c.secret);
    const rotated = await (api(A(), system, 'POST', `/clients/${c.clientId}/secret`, { graceSeconds: 0 }));
    expect(rotated.status).toBe(200);
    expect(await tokenAt(B(), c.clientId, c.secret)).toBe('invalid_client');
    expect(await tokenAt(B(), c.clientId, rotated.body.clientSecret)).toBe('issued');
  });

  it('refuses a client deleted on node A, and the clients of a window disabled with plain SQL, at node B’s next request', async () => {
    const deleted = await machineClient('缓存两节点丙');
    await warmOnB(deleted.clientId, deleted.secret);
    expect((await (api(A(), system, 'DELETE', `/clients/${deleted.clientId}`))).status).toBe(204);
    expect(await tokenAt(B(), deleted.clientId, deleted.secret)).toBe('invalid_client');

    const c = await machineClient('缓存两节点丁');
    await warmOnB(c.clientId, c.secret);
    await (database.db.raw('UPDATE windows SET disabled_at = now() WHERE id = ?', [c.windowId]));
    expect(await tokenAt(B(), c.clientId, c.secret)).toBe('invalid_client');
    await (database.db.raw('UPDATE windows SET disabled_at = NULL WHERE id = ?', [c.windowId]));
    expect(await tokenAt(B(), c.clientId, c.secret)).toBe('issued');
  });

  it('refuses a window API deleted on node A, or of a window disabled with plain SQL, at node B’s next request, and takes a new one at once', async () => {
    const c = await machineClient('缓存两节点己');
    const other = await machineClient('缓存两节点庚');
    const resource = 'https://cache.example.cn/api';
    const register = async () => {
      const made = await api(A(), system, 'POST', `/windows/${other.windowId}/apis`, { identifier: resource, name: '缓存', scopes: ['cache:read'], otherWindows: true });
      expect(made.status).toBe(201);
      return made.body.id as number;
    };
    const apiTokenAt = async (node: { url: string }) => {
      const config = await oidc.discovery(new URL(nodes[0]!.url), c.clientId, c.secret, undefined, { execute: [oidc.allowInsecureRequests] });
      config[oidc.customFetch] = (url, options) => fetch(new URL(new URL(url).pathname + new URL(url).search, node.url), options as RequestInit);
      return oidc.clientCredentialsGrant(config, { scope: 'cache:read', resource }).then(
        () => 'issued',
        (err: { error?: string }) => err.error,
      );
    };
    const apiHits = async () => Number(/^sme_passport_cache_hits_total\{cache="window_apis"\} (\d+)$/m.exec(await (await fetch(`${B().url}/metrics`)).text())?.[1] ?? 0);
    const id = await register();
    await eventually(
      async () => {
        const before = await apiHits();
        expect(await apiTokenAt(B())).toBe('issued');
        return (await apiHits()) > before;
      },
      { every: 50 },
    );
    expect((await api(A(), system, 'DELETE', `/apis/${id}`)).status).toBe(204);
    expect(await apiTokenAt(B())).toBe('invalid_target');
    await register();
    expect(await apiTokenAt(B())).toBe('issued');
    await database.db.raw('UPDATE windows SET disabled_at = now() WHERE id = ?', [other.windowId]);
    expect(await apiTokenAt(B())).toBe('invalid_target');
    await database.db.raw('UPDATE windows SET disabled_at = NULL WHERE id = ?', [other.windowId]);
    expect(await apiTokenAt(B())).toBe('issued');
  });

  it('stops a role revoked on node A, or from the command line, at the revoked administrator’s next call at node B', async () => {
    const target = { url: nodes[0]!.url, db: database.db, masterKey: env.MASTER_KEY! };
    const auditor = await adminToken(target, await (makeAdmin(target, 'caches.auditor', [{ role: 'audit_admin' }])));
    for (let i = 0; i < 2; i++) expect((await api(B(), auditor, 'GET', '/audit/events')).status).toBe(200);
    expect((await (api(A(), security, 'POST', '/administrators/revocations', { account: 'caches.auditor', role: 'audit_admin' }))).status).toBe(200);
    expect((await api(B(), auditor, 'GET', '/audit/events')).status).toBe(403);

    for (let i = 0; i < 2; i++) expect((await api(B(), system, 'GET', '/windows')).status).toBe(200);
    const revoked = await (runCli(['admin', 'revoke', '--account', 'caches.system', '--role', 'system_admin'], env));
    expect(revoked).toMatchObject({ code: 0, stderr: '' });
    expect((await api(B(), system, 'GET', '/windows')).status).toBe(403);
    const granted = await (runCli(['admin', 'grant', '--account', 'caches.system', '--role', 'system_admin'], env));
    expect(granted).toMatchObject({ code: 0, stderr: '' });
    expect((await api(B(), system, 'GET', '/windows')).status).toBe(200);
  });

  it('reads everything from the database while node B cannot hear of changes, and caches again once it can', async () => {
    const c = await machineClient('缓存两节点戊');
    await warmOnB(c.clientId, c.secret);
    expect((await caches(B())).feedUp).toBe(1);

    // B's listening connection is ended, and cannot be opened again until its role may log in.
    await database.db.raw(`ALTER ROLE ${listenRole} NOLOGIN`);
    const ended = await database.db.raw('SELECT pg_terminate_backend(pid) AS ended FROM pg_stat_activity WHERE usename = ?', [listenRole]);
    expect(ended.rows).toEqual([{ ended: true }]);
    await eventually(async () => (await caches(B())).feedUp === 0, { every: 50 });
    const before = await caches(B());
    // Nothing B would hear of now: it holds on the next request all the same.
    await database.db.raw('UPDATE clients SET disabled_at = now() WHERE client_id = ?', [c.clientId]);
    expect(await tokenAt(B(), c.clientId, c.secret)).toBe('invalid_client');
    await database.db.raw('UPDATE clients SET disabled_at = NULL WHERE client_id = ?', [c.clientId]);
    expect(await tokenAt(B(), c.clientId, c.secret)).toBe('issued');
    expect(await tokenAt(B(), c.clientId, c.secret)).toBe('issued');
    const during = await caches(B());
    expect(during.clientHits).toBe(before.clientHits);
    expect(during.clientBypassed).toBeGreaterThanOrEqual(before.clientBypassed + 3);

    await database.db.raw(`ALTER ROLE ${listenRole} LOGIN`);
    await eventually(async () => (await caches(B())).feedUp === 1, { every: 50 });
    await warmOnB(c.clientId, c.secret);
    expect(nodes[1]!.output()).toMatch(/change notifications lost: every cache is bypassed until they are back/);
    expect(nodes[1]!.output()).toMatch(/change notifications are back: caching again/);
  });
});
