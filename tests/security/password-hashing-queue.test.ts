import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createAccount } from '../../src/accounts/accounts.ts';
import { PASSWORD_POLICIES } from '../../src/accounts/password-policy.ts';
import { listWindows } from '../../src/windows/windows.ts';
import { browser } from '../helpers/browser.ts';
import { freePort, startNode, type Node } from '../helpers/processes.ts';
import { startTestServer, type TestServer } from '../helpers/server.ts';
import { windowSite, type WindowSite } from '../helpers/window-site.ts';

// A flood of password sign-ins on a node whose argon2 queue is tiny (one hash at a time,
// one waiting): the node answers what it has room for, refuses the rest at once with
// 503 and Retry-After having written nothing for them, and serves normally afterwards.

const PEOPLE = 20;
const password = 'Baima-Temple-Bell-68';
const people = Array.from({ length: PEOPLE }, (_, i) => `flood.person${i}`);

async function passwordChecks(server: TestServer): Promise<number> {
  const text = await (await fetch(`${server.url}/metrics`)).text();
  return Number(/^sme_passport_password_checks_total (\d+)/m.exec(text)![1]);
}

describe('argon2 queue under a flood of sign-ins', () => {
  let server: TestServer;
  let site: WindowSite;
  beforeAll(async () => {
    server = await startTestServer({ PASSWORD_HASH_CONCURRENCY: '1', PASSWORD_HASH_QUEUE: '1', SIGN_IN_RATE_LIMIT: '10000/60' });
    const windows = await listWindows(server.db);
    site = await windowSite(server, { windowId: windows[0]!.id, name: 'flood' });
    for (const username of people) await createAccount(server.db, { username, displayName: username, password }, PASSWORD_POLICIES.mlps);
  });
  afterAll(() => server?.close());

  it('answers 503 with Retry-After past the queue, writes nothing for those, and then signs them in normally', async () => {
    const checksBefore = await passwordChecks(server);
    const pages = await Promise.all(
      people.map(async (username) => {
        const b = browser();
        return { username, b, page: (await site.authorize(b)).visit };
      }),
    );
    // The raw answer, to read its status and headers.
    const answers = await Promise.all(
      pages.map(async ({ username, b, page }) => {
        if (page.kind !== 'page') throw new Error('expected the login page');
        const csrf = /name="csrf" value="([^"]+)"/.exec(page.html)![1]!;
        const res = await b.fetch(new URL(/action="([^"]*\/login)"/.exec(page.html)![1]!, page.url), {
          method: 'POST',
          redirect: 'manual',
          headers: { 'content-type': 'application/x-www-form-urlencoded' },
          body: new URLSearchParams({ csrf, identifier: username, password }),
        });
        return { username, status: res.status, retryAfter: res.headers.get('retry-after'), html: await res.text() };
      }),
    );
    const busy = answers.filter((a) => a.status === 503);
    const served = answers.filter((a) => a.status === 303);
    expect(busy.length).toBeGreaterThan(0);
    expect(served.length).toBeGreaterThan(0);
    expect(busy.length + served.length).toBe(PEOPLE);
    for (const a of busy) {
      expect(Number(a.retryAfter)).toBeGreaterThanOrEqual(1);
      expect(a.html).toContain('服务器正忙');
      expect(a.html).not.toMatch(/at .*\.ts:\d+/);
    }

    // Only the sign-ins that were served checked a password, counted an attempt or went on record.
    expect(await passwordChecks(server)).toBe(checksBefore + served.length);
    expect(await server.db('sign_in_throttle').pluck('key')).toEqual([]);
    const records = await server.db('audit_events').where({ event: 'sign_in' }).select('outcome', 'actor_id');
    expect(records.map((r) => r.outcome)).toEqual(Array(served.length).fill('success'));

    // The refused ones sign in now, one after another, as if nothing had happened.
    for (const { username } of busy) {
      const you = browser();
      const { claims } = await site.signIn(you, { identifier: username, password });
      expect(claims.sub).toBeTruthy();
    }
    expect(await server.db('audit_events').where({ event: 'sign_in', outcome: 'success' }).pluck('id')).toHaveLength(PEOPLE);
    expect(server.errors).toEqual([]);
  });
});

// glibc and V8 read these only when the process starts: the server's entry point
// (src/memory-settings.ts) starts itself again with them, keeping its pid.
describe.skipIf(process.platform !== 'linux')('the server process and the memory argon2 frees', () => {
  let node: Node | undefined;
  let dataDir: string;
  beforeAll(async () => {
    dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'sme-passport-memory-'));
    node = await startNode({ PORT: String(await freePort()), DATA_DIR: dataDir });
  });
  afterAll(async () => {
    await node?.stop();
    if (dataDir) fs.rmSync(dataDir, { recursive: true, force: true });
  });

  it('runs with a fixed mmap threshold, bounded malloc arenas and small young-generation semi-spaces, as the same pid', async () => {
    if (!node) throw new Error('the node did not start');
    const pid = node.process.pid!;
    const environ = fs.readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0');
    expect(environ).toContain('MALLOC_MMAP_THRESHOLD_=131072');
    expect(environ).toContain('MALLOC_ARENA_MAX=2');
    expect(fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0')).toContain('--max-semi-space-size=8');
    expect((await fetch(`${node.url}/healthz`)).status).toBe(200);
  });
});
