import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { onPostgres, testDatabase, type TestDatabase } from '../helpers/database.ts';
import { logContractBreaches } from '../helpers/log-lines.ts';
import { freePort, portOpen, spawnNode } from '../helpers/processes.ts';
import { eventually } from '../helpers/wait.ts';

// A node's port opens before it can serve (without ISSUER the issuer is the bound
// port). Whatever arrives in between is answered at once: 503, Retry-After, and
// /readyz says "starting"; nothing is left hanging until a load balancer gives up. The
// liveness probe says the process is up, so that no orchestrator kills a long start.
//
// Start-up is held at a known point the honest way: the test holds the advisory lock
// under which a starting node registers the account centre's client, as a second node
// starting at the same moment would. (An embedded database belongs to one process, so
// nothing outside the node can hold it up: PostgreSQL only.)

const ACCOUNT_CENTER_LOCK = 'sme-passport:account-center-client';
const ANSWER_CEILING_MS = 5000;

describe.skipIf(!onPostgres())(`requests while a node starts${onPostgres() ? '' : ' (skipped: PostgreSQL only, see the comment)'}`, () => {
  let database: TestDatabase;
  let holder: pg.Client;
  let dataDir: string;

  beforeAll(async () => {
    database = await testDatabase();
    dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'sme-passport-start-up-'));
    holder = new pg.Client({ connectionString: database.url });
    await holder.connect();
  });

  afterAll(async () => {
    await holder?.end();
    await database?.close();
    if (dataDir) fs.rmSync(dataDir, { recursive: true, force: true });
  });

  it('answers 503 with Retry-After and /readyz "starting" until it is ready (the liveness probe 200), then serves', async () => {
    await holder.query('SELECT pg_advisory_lock(hashtext($1))', [ACCOUNT_CENTER_LOCK]);
    const port = await freePort();
    const node = spawnNode({ DATABASE_URL: database.url!, PORT: String(port), MASTER_KEY: crypto.randomBytes(32).toString('base64'), DATA_DIR: dataDir });
    node.started.catch(() => undefined);
    try {
      await eventually(() => portOpen(port), { every: 50 });
      const base = `http://localhost:${port}`;
      const ask = (p: string, init: RequestInit = {}) => fetch(`${base}${p}`, { ...init, signal: AbortSignal.timeout(ANSWER_CEILING_MS) });

      const ready = await ask('/readyz');
      expect({ status: ready.status, retryAfter: ready.headers.get('retry-after'), body: await ready.json() }).toEqual({ status: 503, retryAfter: '2', body: { status: 'starting' } });
      const alive = await ask('/healthz');
      expect({ status: alive.status, body: await alive.json() }).toEqual({ status: 200, body: { status: 'ok' } });
      const discovery = await ask('/.well-known/openid-configuration', { headers: { accept: 'application/json' } });
      expect({ status: discovery.status, retryAfter: discovery.headers.get('retry-after'), body: await discovery.json() }).toMatchObject({
        status: 503,
        retryAfter: '2',
        body: { error: 'temporarily_unavailable' },
      });
      const page = await ask('/interaction/abc/login', { method: 'POST', body: new URLSearchParams({ identifier: 'x', password: 'y' }) });
      expect({ status: page.status, retryAfter: page.headers.get('retry-after') }).toEqual({ status: 503, retryAfter: '2' });
      expect(await page.text()).toContain('Try again in a few seconds');

      await holder.query('SELECT pg_advisory_unlock(hashtext($1))', [ACCOUNT_CENTER_LOCK]);
      expect(await node.started).toBe(base);
      const served = await ask('/readyz');
      expect({ status: served.status, body: await served.json() }).toMatchObject({ status: 200, body: { status: 'ok' } });
      expect((await ask('/.well-known/openid-configuration')).status).toBe(200);
    } finally {
      await node.stop();
    }
    expect(logContractBreaches(node.output())).toEqual([]);
  });
});
