import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { countClientAuth } from '../src/audit/client-auth-counts.ts';
import { flushCountsEverySecond, flushPendingCounts, MAX_PENDING_KEYS, pendingCountKeys } from '../src/audit/pending-counts.ts';
import { countToken } from '../src/audit/token-counts.ts';
import type { Db } from '../src/db/connect.ts';
import { purgeExpired } from '../src/purge.ts';
import { createClient } from '../src/windows/clients.ts';
import { seedWindowRegistry } from '../src/windows/seed.ts';
import { listWindows } from '../src/windows/windows.ts';
import { onPostgres, testDatabase, type TestDatabase } from './helpers/database.ts';
import { freePort, startNode, type Node } from './helpers/processes.ts';
import { startTestServer, type TestServer } from './helpers/server.ts';
import { eventually } from './helpers/wait.ts';

// Tokens and failed client authentications are counted per minute in memory, and each
// node adds its counts to the tables once a second, in one statement per table: nothing
// on the request path updates a shared row. Nothing is lost on the way: a failed write
// is tried again, closing writes what is left, past the cap a count is written at once,
// and the counts of several nodes add up.

const basic = (id: string, secret: string) => `Basic ${Buffer.from(`${encodeURIComponent(id)}:${encodeURIComponent(secret)}`).toString('base64')}`;
const tokenAt = async (url: string, client: { clientId: string; clientSecret: string | undefined }) => {
  const res = await fetch(`${url}/token`, {
    method: 'POST',
    headers: { authorization: basic(client.clientId, client.clientSecret!), 'content-type': 'application/x-www-form-urlencoded' },
    body: 'grant_type=client_credentials',
  });
  await res.body?.cancel();
  return res.status;
};
const issued = async (db: Db, clientId: string) =>
  Number((await db('audit_token_counts').where({ client_id: clientId, action: 'issued' }).sum({ n: 'count' }))[0]!.n ?? 0);
const backendOf = async (db: Db, name: string) => {
  const [first] = await listWindows(db);
  return createClient(db, { windowId: first!.id, name, grantTypes: ['client_credentials'], redirectUris: [], postLogoutRedirectUris: [] });
};

describe('counts of one server', () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer();
  });
  afterAll(async () => {
    await server?.close();
  });

  it('writes the counts of tokens by its own timer, within a second or so', async () => {
    const backend = await backendOf(server.db, 'counted-backend');
    for (let i = 0; i < 3; i++) expect(await tokenAt(server.url, backend)).toBe(200);
    // The server's own timer writes them.
    await eventually(async () => (await issued(server.db, backend.clientId)) === 3);
    expect(await server.db('audit_token_counts').where({ client_id: backend.clientId })).toEqual([
      expect.objectContaining({ action: 'issued', kind: 'client_credentials', count: 3, window_id: expect.any(Number) }),
    ]);
    expect(server.errors).toEqual([]);
  });
});

describe('counts kept in memory', () => {
  let database: TestDatabase;
  let db: Db;
  const errors: unknown[] = [];
  const logger = { error: (message: string, err?: unknown) => errors.push(err ?? message), info: () => {} };
  beforeAll(async () => {
    database = await testDatabase();
    db = database.db;
  });
  afterAll(async () => {
    await database?.close();
  });

  it('counts without a statement, and writes what is left when the server closes', async () => {
    const counting = flushCountsEverySecond(db, logger);
    const statements: string[] = [];
    const seen = (q: { sql: string }) => statements.push(q.sql);
    db.on('query', seen);
    try {
      for (let i = 0; i < 4; i++) await countToken(db, { clientId: 'closing-client', windowId: null, action: 'issued', kind: 'client_credentials' });
    } finally {
      db.off('query', seen);
    }
    // No timer can have run between these lines: the counts are only in memory.
    expect(statements).toEqual([]);
    expect(pendingCountKeys(db)).toBe(1);
    await counting.stop();
    expect(await issued(db, 'closing-client')).toBe(4);
    // With nothing flushing, a count is written at once (the command line).
    await countToken(db, { clientId: 'closing-client', windowId: null, action: 'issued', kind: 'client_credentials' });
    expect(await issued(db, 'closing-client')).toBe(5);
    expect(errors).toEqual([]);
  });

  it('keeps the counts of a failed write and writes them the next time', async () => {
    const counting = flushCountsEverySecond(db, logger);
    try {
      await countToken(db, { clientId: 'retried-client', windowId: 4, action: 'revoked', kind: 'access_token' });
      await db.raw('ALTER TABLE audit_token_counts RENAME TO audit_token_counts_away');
      try {
        await expect(flushPendingCounts(db)).rejects.toThrow(/audit_token_counts/);
        await countToken(db, { clientId: 'retried-client', windowId: 4, action: 'revoked', kind: 'access_token' });
        expect(pendingCountKeys(db)).toBe(1);
      } finally {
        await db.raw('ALTER TABLE audit_token_counts_away RENAME TO audit_token_counts');
        // The timer may have found the table away too, and said so.
        errors.length = 0;
      }
      await flushPendingCounts(db);
      expect(await db('audit_token_counts').where({ client_id: 'retried-client' }).select('window_id', 'action', 'count')).toEqual([{ window_id: 4, action: 'revoked', count: 2 }]);
    } finally {
      await counting.stop();
    }
  });

  it(`holds at most ${MAX_PENDING_KEYS} keys; past them a count is written at once`, async () => {
    const counting = flushCountsEverySecond(db, logger);
    try {
      const ip = (i: number) => `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`;
      for (let i = 0; i < MAX_PENDING_KEYS; i++) await countClientAuth(db, { clientId: 'guessed', windowId: null, ip: ip(i), reason: 'invalid_client' });
      expect(pendingCountKeys(db)).toBe(MAX_PENDING_KEYS);
      await countClientAuth(db, { clientId: 'guessed', windowId: null, ip: '192.0.2.1', reason: 'invalid_client' });
      expect(await db('audit_client_auth_counts').where({ ip: '192.0.2.1' }).select('client_id', 'count')).toEqual([{ client_id: 'guessed', count: 1 }]);
    } finally {
      await counting.stop();
    }
    const [{ rows, n }] = await db('audit_client_auth_counts').where({ client_id: 'guessed' }).select(db.raw('count(*)::int AS rows'), db.raw('sum(count)::int AS n'));
    expect({ rows, n }).toEqual({ rows: MAX_PENDING_KEYS + 1, n: MAX_PENDING_KEYS + 1 });
    expect(errors).toEqual([]);
  });

  it('rolls a minute up only once it has been over for a while, so that the last writes are in', async () => {
    // 5 s ago: this minute, or one that ended less than 10 s ago; neither is rolled up.
    await db('audit_token_counts').insert([
      { minute: db.raw("date_trunc('minute', now() - interval '5 seconds')"), client_id: 'rolled-client', window_id: null, action: 'issued', kind: 'client_credentials', count: 2 },
      { minute: db.raw("date_trunc('minute', now()) - interval '2 minutes'"), client_id: 'rolled-client', window_id: null, action: 'issued', kind: 'refresh_token', count: 3 },
    ]);
    const before = Number((await db('audit_events').max({ id: 'id' }))[0]!.id ?? 0);
    await purgeExpired(db);
    const rolled = await db('audit_events').where('id', '>', before).where({ event: 'token.issued', actor_id: 'rolled-client' }).pluck('after');
    expect(rolled).toEqual([expect.objectContaining({ kind: 'refresh_token', count: 3 })]);
    expect(await db('audit_token_counts').where({ client_id: 'rolled-client' }).pluck('kind')).toEqual(['client_credentials']);
  });
});

// Two server processes on one PostgreSQL database count tokens of one client at once.
describe.skipIf(!onPostgres())('counts of two nodes', () => {
  let database: TestDatabase;
  let dataDir: string;
  let nodes: Node[] = [];
  let urls: string[] = [];
  beforeAll(async () => {
    database = await testDatabase();
    dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'sme-passport-counts-'));
    await seedWindowRegistry(database.db);
    const ports = [await freePort(), await freePort()];
    const env = { DATABASE_URL: database.url!, ISSUER: `http://localhost:${ports[0]}`, MASTER_KEY: crypto.randomBytes(32).toString('base64'), DATA_DIR: dataDir };
    nodes = await Promise.all(ports.map((port) => startNode({ ...env, PORT: String(port) })));
    urls = ports.map((port) => `http://127.0.0.1:${port}`);
  });
  afterAll(async () => {
    await Promise.all(nodes.map((n) => n.stop()));
    await database?.close();
    if (dataDir) fs.rmSync(dataDir, { recursive: true, force: true });
  });

  it('adds up the counts of both nodes, the last of them written as each stops', async () => {
    const backend = await backendOf(database.db, 'two-node-counted');
    const statuses = await Promise.all(Array.from({ length: 40 }, (_, i) => tokenAt(urls[i % 2]!, backend)));
    expect(statuses.every((s) => s === 200)).toBe(true);
    await Promise.all(nodes.map((n) => n.stop()));
    expect(await issued(database.db, backend.clientId)).toBe(40);
    await database.db('audit_token_counts').update({ minute: database.db.raw("minute - interval '2 minutes'") });
    await purgeExpired(database.db);
    const records = await database.db('audit_events').where({ event: 'token.issued', actor_id: backend.clientId }).pluck('after');
    expect(records.reduce((n: number, a: { count: number }) => n + a.count, 0)).toBe(40);
  });
});
