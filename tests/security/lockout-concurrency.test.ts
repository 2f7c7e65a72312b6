import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generate } from 'otplib';
import { createAccount } from '../../src/accounts/accounts.ts';
import { PASSWORD_POLICIES } from '../../src/accounts/password-policy.ts';
import { confirmEnrolment, startEnrolment } from '../../src/accounts/totp.ts';
import type { Db } from '../../src/db/connect.ts';
import { createClient } from '../../src/windows/clients.ts';
import { seedWindowRegistry } from '../../src/windows/seed.ts';
import { listWindows } from '../../src/windows/windows.ts';
import { browser, type Browser, type Visit } from '../helpers/browser.ts';
import { onPostgres, testDatabase, type TestDatabase } from '../helpers/database.ts';
import { freePort, startNode, type Node } from '../helpers/processes.ts';
import { startTestServer, type TestServer } from '../helpers/server.ts';
import { windowSite, type WindowSite } from '../helpers/window-site.ts';

// The lockout under an attacker who does not wait for one answer before sending the
// next: many wrong passwords for one account at once, on one node and split over two.
// The per-IP limit is set out of the way; the lockout is on its default settings
// (5 attempts, 15 minutes). How many passwords argon2 checked is read from the nodes'
// own counter (/metrics), which counts every argon2 verification a request makes.

const THRESHOLD = 5;
const ATTEMPTS = 24;
const password = 'Songshan-Shaolin-Temple-8';
const BAD_CREDENTIALS = '账号或密码不正确。';
const alert = (v: Visit) => (v.kind === 'page' ? /role="alert">([^<]*)</.exec(v.html)?.[1] : undefined);

async function passwordChecks(baseUrl: string): Promise<number> {
  const text = await (await fetch(`${baseUrl}/metrics`)).text();
  const line = /^sme_passport_password_checks_total (\d+)/m.exec(text);
  if (!line) throw new Error('no sme_passport_password_checks_total in /metrics');
  return Number(line[1]);
}

// Every login page is opened first, then all the passwords are sent at once.
async function concurrentAttempts(openLogin: (b: Browser, i: number) => Promise<Visit>, stopAt: string, identifier: string): Promise<Visit[]> {
  const pages = await Promise.all(
    Array.from({ length: ATTEMPTS }, async (_, i) => {
      const b = browser();
      return { b, page: await openLogin(b, i) };
    }),
  );
  return Promise.all(pages.map(({ b, page }, i) => b.submit(page, '/login', { identifier, password: `Wrong-${i}-Password-x` }, stopAt)));
}

async function signInRecords(db: Db, accountId: string) {
  const failures = await db('audit_events').where({ event: 'sign_in', target: `account:${accountId}`, outcome: 'failure' }).pluck('reason');
  const locks = await db('audit_events').where({ event: 'account.locked', target: `account:${accountId}` }).pluck('id');
  const tally = failures.reduce<Record<string, number>>((t, reason: string) => ({ ...t, [reason]: (t[reason] ?? 0) + 1 }), {});
  return { tally, locks: locks.length };
}

function expectHeldLock(answers: Visit[]) {
  expect.soft(answers.map((a) => (a.kind === 'page' ? a.status : a.kind))).toEqual(Array(ATTEMPTS).fill(401));
  const alerts = answers.map(alert);
  // The attempts counted before the lock are told the password is wrong; the one that
  // locked the account, and every one after it, that the account is locked.
  expect.soft(alerts.filter((a) => a === BAD_CREDENTIALS)).toHaveLength(THRESHOLD - 1);
  expect.soft(alerts.filter((a) => a !== BAD_CREDENTIALS).every((a) => /锁定.*15 分钟/.test(a ?? ''))).toBe(true);
}

describe('lockout under concurrent attempts, one node', () => {
  let server: TestServer;
  let site: WindowSite;
  let accountId: string;
  beforeAll(async () => {
    server = await startTestServer({ SIGN_IN_RATE_LIMIT: '10000/60' });
    const windows = await listWindows(server.db);
    site = await windowSite(server, { windowId: windows[0]!.id, name: 'lockout-one-node' });
    accountId = (await createAccount(server.db, { username: 'zhou.min', displayName: '周敏', password }, PASSWORD_POLICIES.mlps)).id;
  });
  afterAll(() => server?.close());

  it(`checks at most ${THRESHOLD} of ${ATTEMPTS} concurrent wrong passwords with argon2, answers the rest as locked, and then refuses the right password`, async () => {
    const checksBefore = await passwordChecks(server.url);
    const answers = await concurrentAttempts(async (b) => (await site.authorize(b)).visit, site.redirectUri, 'zhou.min');
    expect.soft(await passwordChecks(server.url)).toBe(checksBefore + THRESHOLD);
    expectHeldLock(answers);
    expect.soft(await signInRecords(server.db, accountId)).toEqual({ tally: { wrong_password: THRESHOLD, locked: ATTEMPTS - THRESHOLD }, locks: 1 });

    const you = browser();
    const { visit } = await site.authorize(you);
    const right = await you.submit(visit, '/login', { identifier: 'zhou.min', password }, site.redirectUri);
    expect(right.kind).toBe('page');
    expect(alert(right)).toMatch(/锁定/);
    expect(await passwordChecks(server.url)).toBe(checksBefore + THRESHOLD);
    expect(server.errors).toEqual([]);
  });

  it('holds the same way for an identifier that has no account', async () => {
    const checksBefore = await passwordChecks(server.url);
    const answers = await concurrentAttempts(async (b) => (await site.authorize(b)).visit, site.redirectUri, 'nobody.here');
    expect.soft(await passwordChecks(server.url)).toBe(checksBefore + THRESHOLD);
    expectHeldLock(answers);
  });

  it(`lets ${ATTEMPTS} concurrent wrong second-factor codes check at most ${THRESHOLD}, and then refuses a good recovery code`, async () => {
    const masterKey = Buffer.from(server.masterKey, 'base64');
    const account = await createAccount(server.db, { username: 'han.xue', displayName: '韩雪', password }, PASSWORD_POLICIES.mlps);
    const enrolment = await startEnrolment(masterKey, account);
    const [recovery] = await confirmEnrolment(server.db, masterKey, account.id, enrolment.sealed, await generate({ secret: enrolment.secret }));

    const you = browser();
    const { visit } = await site.authorize(you);
    const mfa = await you.submit(visit, '/login', { identifier: 'han.xue', password }, site.redirectUri);
    expect(mfa.kind === 'page' && mfa.html).toContain('/mfa"');
    const answers = await Promise.all(Array.from({ length: ATTEMPTS }, (_, i) => you.submit(mfa, '/mfa', { code: `dead-beef-${String(i).padStart(4, '0')}-0000` }, site.redirectUri)));
    expect.soft(answers.map((a) => (a.kind === 'page' ? a.status : a.kind))).toEqual(Array(ATTEMPTS).fill(401));
    expect.soft(await signInRecords(server.db, account.id)).toEqual({ tally: { mfa_failed: THRESHOLD, locked: ATTEMPTS - THRESHOLD }, locks: 1 });

    const right = await you.submit(mfa, '/mfa', { code: recovery! }, site.redirectUri);
    expect(right.kind).toBe('page');
    expect(alert(right)).toMatch(/锁定/);
    expect(await server.db('recovery_codes').where({ account_id: account.id }).whereNotNull('used_at').pluck('account_id')).toEqual([]);
  });
});

// Two server processes on one PostgreSQL database, the attempts alternating between them.
describe.skipIf(!onPostgres())('lockout under concurrent attempts, two nodes on one database', () => {
  const redirectUri = 'http://127.0.0.1:9/lockout-two-nodes/callback';
  let database: TestDatabase;
  let dataDir: string;
  let ports: number[] = [];
  let nodes: Node[] = [];
  let clientId: string;
  let accountId: string;

  beforeAll(async () => {
    database = await testDatabase();
    dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'sme-passport-lockout-'));
    await seedWindowRegistry(database.db);
    const [first] = await listWindows(database.db);
    ({ clientId } = await createClient(database.db, { windowId: first!.id, name: 'lockout-two-nodes', redirectUris: [redirectUri] }));
    accountId = (await createAccount(database.db, { username: 'wu.lei', displayName: '吴磊', password }, PASSWORD_POLICIES.mlps)).id;
    ports = [await freePort(), await freePort()];
    const env = { DATABASE_URL: database.url!, ISSUER: `http://localhost:${ports[0]}`, MASTER_KEY: crypto.randomBytes(32).toString('base64'), DATA_DIR: dataDir, SIGN_IN_RATE_LIMIT: '10000/60' };
    nodes = await Promise.all(ports.map((port) => startNode({ ...env, PORT: String(port) })));
  });

  afterAll(async () => {
    await Promise.all(nodes.map((n) => n.stop()));
    await database?.close();
    if (dataDir) fs.rmSync(dataDir, { recursive: true, force: true });
  });

  const nodeUrl = (i: number) => `http://127.0.0.1:${ports[i % 2]}`;
  const openLogin = (b: Browser, i: number) => {
    const query = new URLSearchParams({ client_id: clientId, response_type: 'code', scope: 'openid', redirect_uri: redirectUri, state: crypto.randomUUID() });
    return b.visit(`${nodeUrl(i)}/auth?${query}`, redirectUri);
  };
  const checksOnBoth = async () => (await passwordChecks(nodeUrl(0))) + (await passwordChecks(nodeUrl(1)));

  it(`checks at most ${THRESHOLD} of ${ATTEMPTS} concurrent wrong passwords across both nodes, and then neither node takes the right password`, async () => {
    const checksBefore = await checksOnBoth();
    const answers = await concurrentAttempts(openLogin, redirectUri, 'wu.lei');
    expect.soft(await checksOnBoth()).toBe(checksBefore + THRESHOLD);
    expectHeldLock(answers);
    expect.soft(await signInRecords(database.db, accountId)).toEqual({ tally: { wrong_password: THRESHOLD, locked: ATTEMPTS - THRESHOLD }, locks: 1 });

    for (const i of [0, 1]) {
      const you = browser();
      const right = await you.submit(await openLogin(you, i), '/login', { identifier: 'wu.lei', password }, redirectUri);
      expect(right.kind).toBe('page');
      expect(alert(right)).toMatch(/锁定/);
    }
    expect(await checksOnBoth()).toBe(checksBefore + THRESHOLD);
  });
});
