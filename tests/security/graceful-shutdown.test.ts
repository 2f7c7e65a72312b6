import crypto from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { onPostgres, testDatabase, type TestDatabase } from '../helpers/database.ts';
import { freePort, portOpen, startNode, type Node } from '../helpers/processes.ts';
import { eventually } from '../helpers/wait.ts';

// A node stopped with SIGTERM (systemd, a rolling restart) as a balancer sees it:
// /readyz says "stopping" at once, what a balancer would send elsewhere is turned away
// with nothing done, what it would not is served, the port closes once requests stop
// coming, a request in flight is answered, idle kept-alive connections are closed, and
// the process exits 0; what outlives SHUTDOWN_GRACE_SECONDS is cut. (The rolling
// restart behind nginx is tests/deploy/.)

type RawConnection = { socket: net.Socket; received: () => string; closed: Promise<void> };

function connect(port: number): Promise<RawConnection> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1');
    let received = '';
    socket.on('data', (d) => (received += d));
    const closed = new Promise<void>((done) => socket.once('close', () => done()));
    socket.once('error', reject);
    socket.once('connect', () => resolve({ socket, received: () => received, closed }));
  });
}

// A token request whose body has not all arrived: in flight for as long as the test likes.
// The server's "100 Continue" says the request has reached the provider.
async function slowTokenRequest(port: number): Promise<RawConnection & { finish(): void }> {
  const body = 'grant_type=client_credentials&client_id=nobody&client_secret=wrong';
  const connection = await connect(port);
  connection.socket.write(
    `POST /token HTTP/1.1\r\nHost: localhost:${port}\r\nContent-Type: application/x-www-form-urlencoded\r\n` +
      `Content-Length: ${body.length}\r\nExpect: 100-continue\r\n\r\n${body.slice(0, 10)}`,
  );
  await eventually(() => connection.received().startsWith('HTTP/1.1 100 Continue'));
  return { ...connection, finish: () => connection.socket.write(body.slice(10)) };
}

const exited = (node: Node) => new Promise<number | null>((resolve) => (node.process.exitCode !== null ? resolve(node.process.exitCode) : node.process.once('exit', (code) => resolve(code))));

describe('stopping a node with SIGTERM', () => {
  let database: TestDatabase | undefined;
  let node: Node | undefined;
  const dataDirs: string[] = [];
  const masterKey = crypto.randomBytes(32).toString('base64');

  beforeAll(async () => {
    if (onPostgres()) database = await testDatabase();
  });

  afterEach(async () => {
    if (node && node.process.exitCode === null && node.process.signalCode === null) node.process.kill('SIGKILL');
    await node?.stop();
    node = undefined;
  });

  afterAll(async () => {
    await database?.close();
    for (const dir of dataDirs) fs.rmSync(dir, { recursive: true, force: true });
  });

  async function start(graceSeconds: number): Promise<{ node: Node; port: number }> {
    const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'sme-passport-shutdown-'));
    dataDirs.push(dataDir);
    const port = await freePort();
    node = await startNode({
      ...(database ? { DATABASE_URL: database.url! } : {}),
      PORT: String(port),
      DATA_DIR: dataDir,
      MASTER_KEY: masterKey,
      SHUTDOWN_GRACE_SECONDS: String(graceSeconds),
    });
    return { node, port };
  }

  it('turns away what a balancer sends elsewhere, serves the rest, stops listening once requests stop, answers what is in flight, exits 0', async () => {
    const { node, port } = await start(120);
    const base = `http://127.0.0.1:${port}`;
    const inFlight = await slowTokenRequest(port);
    node.process.kill('SIGTERM');
    // A second signal (an impatient operator, systemd and a script at once) changes nothing.
    node.process.kill('SIGTERM');

    // Requests keep coming (as from a balancer that has not yet moved away): the node
    // keeps its port open while they do.
    let keepComing = true;
    const visitors = Promise.all(
      [1, 2, 3].map(async () => {
        while (keepComing) await fetch(`${base}/healthz`).then((r) => r.arrayBuffer()).catch(() => undefined);
      }),
    );
    try {
      const ready = await eventually(async () => {
        const r = await fetch(`${base}/readyz`);
        return r.status === 503 ? r : (await r.arrayBuffer(), false);
      });
      expect({ body: await ready.json(), connection: ready.headers.get('connection'), retryAfter: ready.headers.get('retry-after') }).toEqual({
        body: { status: 'stopping' },
        connection: 'close',
        retryAfter: '2',
      });
      const discovery = await fetch(`${base}/.well-known/openid-configuration`, { headers: { accept: 'application/json' } });
      expect({ status: discovery.status, body: await discovery.json() }).toMatchObject({ status: 503, body: { error: 'temporarily_unavailable' } });
      // A POST is not sent again by nginx: this node answers it itself.
      const token = await fetch(`${base}/token`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: 'grant_type=client_credentials&client_id=nobody&client_secret=wrong' });
      expect({ status: token.status, error: ((await token.json()) as { error: string }).error, connection: token.headers.get('connection') }).toEqual({
        status: 401,
        error: 'invalid_client',
        connection: 'close',
      });
      expect(node.process.exitCode).toBeNull();
    } finally {
      keepComing = false;
      await visitors;
    }

    // Once nothing comes, the port closes; the request in flight is still answered.
    await eventually(async () => !(await portOpen(port)), { every: 100 });
    expect(node.process.exitCode).toBeNull();
    inFlight.finish();
    await inFlight.closed;
    expect(inFlight.received()).toMatch(/^HTTP\/1\.1 100 Continue\r\n\r\nHTTP\/1\.1 401 Unauthorized\r\n/);
    expect(inFlight.received()).toMatch(/\r\nConnection: close\r\n/i);
    expect(await exited(node)).toBe(0);
    expect(node.output()).toMatch(/SIGTERM received, shutting down/);
    expect(node.output()).toMatch(/sme-passport: stopped/);
    expect(node.output()).not.toMatch(/were cut/);
    expect(node.output().match(/SIGTERM received/g)).toHaveLength(1);
  });

  it('closes idle kept-alive connections rather than waiting for them', async () => {
    // A grace period far beyond the patience of `eventually`: the node exits only
    // because it closes the idle connection itself.
    const { node, port } = await start(600);
    const idle = await connect(port);
    idle.socket.write(`GET /healthz HTTP/1.1\r\nHost: localhost:${port}\r\n\r\n`);
    await eventually(() => /\r\n\r\n\{"status":"ok"\}$/.test(idle.received()));
    expect(idle.received()).toMatch(/\r\nConnection: keep-alive\r\n/i);
    node.process.kill('SIGTERM');
    await idle.closed;
    expect(await eventually(() => node.process.exitCode ?? false)).toBe(0);
  });

  it('cuts what is still in flight after SHUTDOWN_GRACE_SECONDS, says so, and exits 0', async () => {
    const { node, port } = await start(2);
    const stuck = await slowTokenRequest(port);
    node.process.kill('SIGTERM');
    await stuck.closed;
    expect(stuck.received()).toBe('HTTP/1.1 100 Continue\r\n\r\n');
    expect(await exited(node)).toBe(0);
    expect(node.output()).toMatch(/shutdown: 1 requests still in flight after 2 s \(SHUTDOWN_GRACE_SECONDS\) were cut/);
  });
});
