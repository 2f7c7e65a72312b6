import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createClient } from '../../src/windows/clients.ts';
import { seedWindowRegistry } from '../../src/windows/seed.ts';
import { listWindows } from '../../src/windows/windows.ts';
import { browser } from '../helpers/browser.ts';
import { onPostgres, testDatabase, type TestDatabase } from '../helpers/database.ts';
import { logContractBreaches } from '../helpers/log-lines.ts';
import { freePort, spawnNode, startNode, type Node } from '../helpers/processes.ts';
import { tcpProxy, type TcpProxy } from '../helpers/tcp-proxy.ts';
import { eventually } from '../helpers/wait.ts';

// The log contract (README, "Logs"): everything a server process writes, from its
// first line to its last and through a database outage, is one JSON object a line,
// with no SQL and no request path (routes by template only).

const parsed = (output: string) => output.split('\n').filter(Boolean).map((line) => JSON.parse(line) as Record<string, unknown>);

describe('what a node writes when it starts, stops, or cannot start', () => {
  let database: TestDatabase | undefined;
  let dataDir: string;
  beforeAll(async () => {
    if (onPostgres()) database = await testDatabase();
    dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'sme-passport-log-contract-'));
  });
  afterAll(async () => {
    await database?.close();
    fs.rmSync(dataDir, { recursive: true, force: true });
  });

  it('writes its start-up notes and its shutdown as JSON lines', async () => {
    const node = await startNode({ PORT: '0', DATA_DIR: dataDir, MASTER_KEY: crypto.randomBytes(32).toString('base64'), ...(database && { DATABASE_URL: database.url! }) });
    await node.stop();
    expect(logContractBreaches(node.output())).toEqual([]);
    const messages = parsed(node.output()).map((line) => line.msg);
    expect(messages).toContain(`sme-passport: OpenID Connect provider at ${node.url} on ${database ? 'PostgreSQL (DATABASE_URL)' : `embedded PGlite in ${dataDir}`}`);
    expect(messages).toContain('sme-passport: SIGTERM received, shutting down');
  });

  it('says why it could not start in a JSON line, without a stack on the terminal, and exits with 1', async () => {
    const nowhere = await freePort();
    const node = spawnNode({ PORT: '0', DATA_DIR: dataDir, DATABASE_URL: `postgres://postgres@127.0.0.1:${nowhere}/none` });
    await expect(node.started).rejects.toThrow(/node exited with 1/);
    expect(logContractBreaches(node.output())).toEqual([]);
    expect(parsed(node.output()).at(-1)).toMatchObject({ level: 'error', msg: 'sme-passport: could not start', err: { name: 'DatabaseUnavailable' } });
  });
});

// Over a TCP relay the test cuts: PostgreSQL only (an embedded database has no network).
describe.skipIf(!onPostgres())(`what a node answers and writes while its database is away${onPostgres() ? '' : ' (skipped: PostgreSQL only)'}`, () => {
  const redirectUri = 'http://127.0.0.1:9/log-contract/callback';
  let database: TestDatabase;
  let proxy: TcpProxy;
  let node: Node;
  let dataDir: string;
  let service: { clientId: string; clientSecret: string };
  let site: { clientId: string };

  beforeAll(async () => {
    database = await testDatabase();
    await seedWindowRegistry(database.db);
    const [window] = await listWindows(database.db);
    const machine = await createClient(database.db, { windowId: window!.id, name: 'log service', redirectUris: [], grantTypes: ['client_credentials'] });
    service = { clientId: machine.clientId, clientSecret: machine.clientSecret! };
    site = await createClient(database.db, { windowId: window!.id, name: 'log site', redirectUris: [redirectUri] });
    const url = new URL(database.url!);
    proxy = await tcpProxy({ host: url.hostname, port: Number(url.port || 5432) });
    url.host = `127.0.0.1:${proxy.port}`;
    dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'sme-passport-log-contract-'));
    node = await startNode({ PORT: '0', DATA_DIR: dataDir, DATABASE_URL: url.href, MASTER_KEY: crypto.randomBytes(32).toString('base64') });
  });

  afterAll(async () => {
    await node?.stop();
    await proxy?.close();
    await database?.close();
    if (dataDir) fs.rmSync(dataDir, { recursive: true, force: true });
  });

  const token = () =>
    fetch(`${node.url}/token`, {
      method: 'POST',
      headers: { authorization: `Basic ${Buffer.from(`${service.clientId}:${service.clientSecret}`).toString('base64')}`, 'content-type': 'application/x-www-form-urlencoded' },
      body: 'grant_type=client_credentials',
    });
  const unavailable = async (res: Response) => ({ status: res.status, retryAfter: res.headers.get('retry-after'), body: res.headers.get('content-type')?.includes('json') ? await res.json() : await res.text() });

  it('answers 503 with Retry-After everywhere, serves again once it is back, and logs JSON lines with route templates only', async () => {
    const issued = await token();
    expect(issued.status).toBe(200);
    // The provider prints a notice with console when its default revocation policy runs.
    const revoked = await fetch(`${node.url}/token/revocation`, {
      method: 'POST',
      headers: { authorization: `Basic ${Buffer.from(`${service.clientId}:${service.clientSecret}`).toString('base64')}`, 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ token: ((await issued.json()) as { access_token: string }).access_token }),
    });
    expect(revoked.status).toBe(200);
    const you = browser();
    const authorize = `${node.url}/auth?${new URLSearchParams({ client_id: site.clientId, response_type: 'code', scope: 'openid', redirect_uri: redirectUri, state: 'log-contract' })}`;
    const login = await you.visit(authorize, redirectUri);
    if (login.kind !== 'page') throw new Error('expected the login page');
    const interactionPath = login.url.pathname;
    const adminPath = '/api/admin/v1/clients/some-client-4711';

    proxy.down();
    expect(await unavailable(await token())).toEqual({ status: 503, retryAfter: '2', body: expect.objectContaining({ error: 'temporarily_unavailable' }) });
    const page = await you.fetch(login.url, { redirect: 'manual' });
    expect(await unavailable(page)).toEqual({ status: 503, retryAfter: '2', body: expect.stringContaining('temporarily_unavailable') });
    const admin = await fetch(`${node.url}${adminPath}`, { headers: { authorization: `Bearer ${crypto.randomBytes(32).toString('base64url')}` } });
    expect(await unavailable(admin)).toEqual({ status: 503, retryAfter: '2', body: expect.objectContaining({ error: 'temporarily_unavailable' }) });
    const ready = await fetch(`${node.url}/readyz`);
    expect(await unavailable(ready)).toEqual({ status: 503, retryAfter: '2', body: expect.objectContaining({ failed: ['database'] }) });
    const again = await fetch(authorize, { redirect: 'manual' });
    expect(await unavailable(again)).toEqual({ status: 503, retryAfter: '2', body: expect.stringContaining('temporarily_unavailable') });

    proxy.up();
    await eventually(async () => (await token()).status === 200, { every: 100 });

    const output = node.output();
    expect(logContractBreaches(output, [interactionPath, adminPath, 'POST /token', '/auth?', site.clientId, service.clientId])).toEqual([]);
    const lines = parsed(output);
    expect(lines.filter((l) => l.status === 503).map((l) => l.route)).toEqual(expect.arrayContaining(['token', '/interaction/:uid', '/api/admin/v1/clients/:clientId', '/readyz', 'authorization']));
    expect(lines.some((l) => l.level === 'error' && /database/.test(String(l.msg)))).toBe(true);
  });
});
