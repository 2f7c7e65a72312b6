import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generate } from 'otplib';
import { createAccount } from '../../src/accounts/accounts.ts';
import { grantRole } from '../../src/accounts/admin-roles.ts';
import { PASSWORD_POLICIES } from '../../src/accounts/password-policy.ts';
import { confirmEnrolment, startEnrolment } from '../../src/accounts/totp.ts';
import { ConflictError } from '../../src/errors.ts';
import { ACR } from '../../src/oidc/claims.ts';
import { createClient } from '../../src/windows/clients.ts';
import { seedWindowRegistry } from '../../src/windows/seed.ts';
import { listWindows } from '../../src/windows/windows.ts';
import { migrate } from '../../src/db/migrate.ts';
import { makeAdmin } from '../helpers/admin.ts';
import { browser, type Visit } from '../helpers/browser.ts';
import { onPostgres, testDatabase, type TestDatabase } from '../helpers/database.ts';
import { freePort, startNode, type Node } from '../helpers/processes.ts';
import { startTestServer, type TestServer } from '../helpers/server.ts';
import { relyingParty, windowSite, type WindowSite } from '../helpers/window-site.ts';

// Defect 1 of issue 10: after the password alone, the in-sign-in enrolment step used to
// issue and confirm a new authenticator for an account that already had one, and its
// recovery codes then completed the sign-in as a second-factor sign-in.

let server: TestServer;
let site: WindowSite;
const password = 'Shaolin-Temple-495';
const html = (v: Visit) => (v.kind === 'page' ? v.html : `redirect to ${v.to.href}`);
const status = (v: Visit) => (v.kind === 'page' ? v.status : 303);
const now = () => Math.floor(Date.now() / 1000);

beforeAll(async () => {
  server = await startTestServer();
  const [first] = await listWindows(server.db);
  site = await windowSite(server, { windowId: first!.id, name: 'site' });
});

afterAll(async () => {
  await server?.close();
});

const factorRows = async (accountId: string) => ({
  totp: await server.db('totp_factors').where({ account_id: accountId }).select('secret_sealed', 'last_time_step'),
  recovery: await server.db('recovery_codes').where({ account_id: accountId }).orderBy('code_hash').select('code_hash', 'used_at'),
});

// The attack as reported: password, then the enrolment step instead of the code, first
// without a code (to be shown a new secret), then with that secret's code.
async function tryToReplace(username: string, accountPassword: string) {
  const you = browser();
  const { visit } = await site.authorize(you);
  const mfa = await you.submit(visit, '/login', { identifier: username, password: accountPassword }, site.redirectUri);
  expect(html(mfa)).toContain('/mfa"');
  const uid = /\/interaction\/([^/"]+)\/mfa"/.exec(html(mfa))![1]!;
  const csrf = /name="csrf" value="([^"]+)"/.exec(html(mfa))![1]!;
  const post = (fields: Record<string, string>) =>
    you.fetch(`${server.url}/interaction/${uid}/mfa-enrol`, {
      method: 'POST',
      redirect: 'manual',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ csrf, password: accountPassword, ...fields }),
    });
  const first = await post({ code: '000000', sealed: '' });
  const firstHtml = await first.text();
  const issued = /<code>([A-Z2-7]{16,})<\/code>/.exec(firstHtml)?.[1];
  const sealed = /name="sealed" value="([^"]+)"/.exec(firstHtml)?.[1] ?? '';
  const second = await post({ sealed, code: issued ? await generate({ secret: issued }) : '123456' });
  const secondHtml = await second.text();
  return { first: { status: first.status, issued }, second: { status: second.status, recoveryCodes: [...secondHtml.matchAll(/<code>([0-9a-f-]{19})<\/code>/g)].map((m) => m[1]!) } };
}

describe('the second factor cannot be replaced during a sign-in', () => {
  it('refuses in-sign-in enrolment for a person who already has an authenticator, issues no secret, and changes nothing', async () => {
    const person = await createAccount(server.db, { username: 'victim.person', displayName: '受害人', password }, PASSWORD_POLICIES.mlps);
    const masterKey = Buffer.from(server.masterKey, 'base64');
    const enrolment = await startEnrolment(masterKey, person);
    await confirmEnrolment(server.db, masterKey, person.id, enrolment.sealed, await generate({ secret: enrolment.secret }));
    const before = await factorRows(person.id);
    const eventsBefore = await server.db('audit_events').where({ event: 'mfa.enrolled' }).count({ n: '*' });

    const attempt = await tryToReplace('victim.person', password);
    expect(attempt.first.status).toBe(400);
    expect(attempt.first.issued).toBeUndefined();
    expect(attempt.second.status).toBe(400);
    expect(attempt.second.recoveryCodes).toEqual([]);
    expect(await factorRows(person.id)).toEqual(before);
    expect(await server.db('audit_events').where({ event: 'mfa.enrolled' }).count({ n: '*' })).toEqual(eventsBefore);

    // The person's own authenticator still signs them in.
    const you = browser();
    const { visit, checks } = await site.authorize(you);
    const mfa = await you.submit(visit, '/login', { identifier: 'victim.person', password }, site.redirectUri);
    const back = await you.submit(mfa, '/mfa', { code: await generate({ secret: enrolment.secret, epoch: now() + 30 }) }, site.redirectUri);
    expect((await site.redeem(back, checks)).claims()).toMatchObject({ acr: ACR.mfa, sub: person.id });
  });

  it('refuses it for a system administrator who already has an authenticator, so no admin sign-in comes of the password alone', async () => {
    const admin = await makeAdmin(server, 'victim.admin', [{ role: 'system_admin' }]);
    const before = await factorRows(admin.account.id);
    const attempt = await tryToReplace('victim.admin', admin.password);
    expect(attempt.first.status).toBe(400);
    expect(attempt.second.status).toBe(400);
    expect(attempt.first.issued).toBeUndefined();
    expect(attempt.second.recoveryCodes).toEqual([]);
    expect(await factorRows(admin.account.id)).toEqual(before);
  });

  it('refuses to enrol a non-administrator inside a sign-in, even one without a second factor', async () => {
    const person = await createAccount(server.db, { username: 'plain.person', displayName: '普通人', password }, PASSWORD_POLICIES.mlps);
    const you = browser();
    const { visit } = await site.authorize(you, { acr_values: ACR.mfa });
    // Step-up is asked of someone without a factor: they are told to set one up in the account center.
    const asked = await you.submit(visit, '/login', { identifier: 'plain.person', password }, site.redirectUri);
    expect(status(asked)).toBe(403);
    const uid = /\/interaction\/([^/"?]+)/.exec(asked.kind === 'page' ? asked.url.pathname : '')![1]!;
    const csrf = /name="csrf" value="([^"]+)"/.exec(html(visit))![1]!;
    const res = await you.fetch(`${server.url}/interaction/${uid}/mfa-enrol`, {
      method: 'POST',
      redirect: 'manual',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ csrf, password, code: '000000', sealed: '' }),
    });
    expect(res.status).toBeGreaterThanOrEqual(400);
    expect(res.status).toBeLessThan(500);
    expect(await res.text()).not.toMatch(/<code>[A-Z2-7]{16,}<\/code>/);
    expect(await factorRows(person.id)).toEqual({ totp: [], recovery: [] });
  });

  it('confirmEnrolment never replaces an existing factor: of concurrent confirmations exactly one wins', async () => {
    const person = await createAccount(server.db, { username: 'race.person', displayName: '并发', password }, PASSWORD_POLICIES.mlps);
    const masterKey = Buffer.from(server.masterKey, 'base64');
    const enrolments = await Promise.all([1, 2, 3, 4].map(() => startEnrolment(masterKey, person)));
    const outcomes = await Promise.allSettled(
      enrolments.map(async (e) => confirmEnrolment(server.db, masterKey, person.id, e.sealed, await generate({ secret: e.secret }))),
    );
    expect(outcomes.filter((o) => o.status === 'fulfilled')).toHaveLength(1);
    for (const o of outcomes.filter((o) => o.status === 'rejected')) expect((o as PromiseRejectedResult).reason).toBeInstanceOf(ConflictError);
    const rows = await factorRows(person.id);
    expect(rows.totp).toHaveLength(1);
    expect(rows.recovery).toHaveLength(10);
  });

  it('records an in-sign-in enrolment as an administrator’s only for an administrator', async () => {
    const admin = await createAccount(server.db, { username: 'new.admin', displayName: '新管理员', password }, PASSWORD_POLICIES.mlps);
    await grantRole(server.db, { accountId: admin.id, role: 'audit_admin' });
    const you = browser();
    const { visit, checks } = await site.authorize(you);
    const enrol = await you.submit(visit, '/login', { identifier: 'new.admin', password }, site.redirectUri);
    const secret = /<code>([A-Z2-7]+)<\/code>/.exec(html(enrol))![1]!;
    const codes = await you.submit(enrol, '/mfa-enrol', { password, code: await generate({ secret }) }, site.redirectUri);
    expect([...html(codes).matchAll(/<code>[0-9a-f-]{19}<\/code>/g)]).toHaveLength(10);
    const done = await you.submit(codes, '/enrolled', {}, site.redirectUri);
    expect((await site.redeem(done, checks)).claims()).toMatchObject({ acr: ACR.mfa });
    const records = await server.db('audit_events').where({ event: 'mfa.enrolled', target: `account:${admin.id}` }).select('reason');
    expect(records).toEqual([{ reason: 'administrator, during sign-in' }]);
  });
});

// The step the pending cookie names holds whichever node takes the next post. PostgreSQL
// only: an embedded database belongs to one process.
describe.skipIf(!onPostgres())('the enrolment step on two nodes', () => {
  let database: TestDatabase;
  let dataDir: string;
  let nodes: Node[] = [];
  let ports: number[] = [];
  const masterKey = crypto.randomBytes(32).toString('base64');
  const redirectUri = 'http://127.0.0.1:9/two-nodes-mfa/callback';
  let rp: Awaited<ReturnType<typeof relyingParty>>;

  beforeAll(async () => {
    database = await testDatabase();
    dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'sme-passport-nodes-'));
    await migrate(database);
    await seedWindowRegistry(database.db);
    const [first] = await listWindows(database.db);
    const client = await createClient(database.db, { windowId: first!.id, name: 'two-nodes-mfa', redirectUris: [redirectUri] });
    ports = [await freePort(), await freePort()];
    const env = { DATABASE_URL: database.url!, ISSUER: `http://localhost:${ports[0]}`, MASTER_KEY: masterKey, DATA_DIR: dataDir, SIGN_IN_RATE_LIMIT: '10000/60' };
    nodes = await Promise.all(ports.map((port) => startNode({ ...env, PORT: String(port) })));
    rp = await relyingParty({ url: nodes[0]!.url }, { clientId: client.clientId, clientSecret: client.clientSecret, redirectUri });
  });

  afterAll(async () => {
    await Promise.all(nodes.map((n) => n.stop()));
    await database?.close();
    if (dataDir) fs.rmSync(dataDir, { recursive: true, force: true });
  });

  const onNode = (url: URL, i: number) => Object.assign(new URL(url), { port: String(ports[i]) });

  it('refuses on node 2 an enrolment after a password on node 1 for an account with a factor, and completes a first one', async () => {
    const withFactor = await makeAdmin({ db: database.db, masterKey }, 'nodes.with.factor', [{ role: 'system_admin' }]);
    const before = await database.db('totp_factors').where({ account_id: withFactor.account.id }).select('secret_sealed');
    const you = browser();
    const { visit } = await rp.authorize(you);
    const mfa = await you.submit(visit, '/login', { identifier: withFactor.account.username, password: withFactor.password }, redirectUri);
    if (mfa.kind !== 'page') throw new Error('expected the second-factor page');
    const csrf = /name="csrf" value="([^"]+)"/.exec(mfa.html)![1]!;
    const uid = /\/interaction\/([^/"]+)\/mfa"/.exec(mfa.html)![1]!;
    const elsewhere = onNode(new URL(`/interaction/${uid}/mfa-enrol`, mfa.url), 1);
    const res = await you.fetch(elsewhere, { method: 'POST', redirect: 'manual', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams({ csrf, password: withFactor.password, code: '000000', sealed: '' }) });
    expect(res.status).toBe(400);
    expect(await res.text()).not.toMatch(/<code>[A-Z2-7]{16,}<\/code>/);
    expect(await database.db('totp_factors').where({ account_id: withFactor.account.id }).select('secret_sealed')).toEqual(before);

    const firstTime = await createAccount(database.db, { username: 'nodes.first.admin', displayName: '首次', password }, PASSWORD_POLICIES.mlps);
    await grantRole(database.db, { accountId: firstTime.id, role: 'security_admin' });
    const admin = browser();
    const start = await rp.authorize(admin);
    const enrol = await admin.submit(start.visit, '/login', { identifier: 'nodes.first.admin', password }, redirectUri);
    if (enrol.kind !== 'page') throw new Error('expected the enrolment page');
    const secret = /<code>([A-Z2-7]+)<\/code>/.exec(enrol.html)![1]!;
    const codes = await admin.submit({ ...enrol, url: onNode(enrol.url, 1) }, '/mfa-enrol', { password, code: await generate({ secret }) }, redirectUri);
    expect([...html(codes).matchAll(/<code>[0-9a-f-]{19}<\/code>/g)]).toHaveLength(10);
    // The enrolment's code was the second factor, kept in the interaction: node 0 completes the sign-in.
    const done = await admin.submit({ ...codes, url: enrol.url } as Visit, '/enrolled', {}, redirectUri);
    expect((await rp.redeem(done, start.checks)).claims()).toMatchObject({ acr: ACR.mfa, sub: firstTime.id });
  });
});
