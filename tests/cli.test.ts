import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { recordEvent } from '../src/audit/trail.ts';
import { signInWithPassword } from '../src/accounts/accounts.ts';
import { PASSWORD_POLICIES } from '../src/accounts/password-policy.ts';
import { sha256 } from '../src/crypto/secrets.ts';
import type { Db } from '../src/db/connect.ts';
import { expectRefused, runCliInProcess } from './helpers/cli-in-process.ts';
import { onPostgres, testDatabase, withCliDatabase, type TestDatabase } from './helpers/database.ts';
import { runCli, startNode } from './helpers/processes.ts';

// The CLI as an operator runs it. Its commands run in this process on the test's
// database (tests/helpers/cli-in-process.ts); what only a process shows runs as its own
// process: the database it opens itself (DATABASE_URL, or the embedded one in its data
// folder), a password from a real pipe, a bad environment, and the relay to a server
// that holds the embedded database.

let database: TestDatabase;
let db: Db;
let dir: string;
const cli = (args: string[], stdin?: string) => runCliInProcess(db, args, { dir, stdin });

const counts = async () => Object.fromEntries(await Promise.all(['windows', 'clients', 'accounts'].map(async (t) => [t, Number((await db(t).count({ n: '*' }))[0]!.n)])));

const refused = expectRefused;

beforeAll(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sme-passport-cli-'));
  database = await testDatabase();
  db = database.db;
});

afterAll(async () => {
  await database?.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

describe('sme-passport command line', () => {
  let windowId: number;

  it('migrates, and says so in JSON', async () => {
    const r = await cli(['migrate', '--json']);
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout)).toEqual({ applied: [] });
  });

  it('creates and lists windows', async () => {
    const r = await cli(['window', 'create', '--kind', 'industry', '--name', '郑州市航空港产业集聚区产业窗口平台', '--region', '410100', '--cluster', '航空港产业集聚区', '--json']);
    expect(r.code).toBe(0);
    windowId = JSON.parse(r.stdout).id;
    expect(windowId).toBeGreaterThan(0);
    const list = JSON.parse((await cli(['window', 'list', '--json'])).stdout);
    expect(list.windows).toContainEqual(expect.objectContaining({ id: windowId, kind: 'industry', region: '410100', cluster: '航空港产业集聚区' }));
    const human = await cli(['window', 'list']);
    expect(human.stdout).toContain('郑州市航空港产业集聚区产业窗口平台');
  });

  it('creates a client and shows its secret once, storing only a digest', async () => {
    const r = await cli([
      'client', 'create', '--window', String(windowId), '--name', '航空港网站',
      '--redirect-uri', 'https://hkg.example.gov.cn/oidc/callback', '--redirect-uri', 'http://localhost:8080/cb',
      '--post-logout-redirect-uri', 'https://hkg.example.gov.cn/', '--backchannel-logout-uri', 'https://hkg.example.gov.cn/oidc/backchannel', '--json',
    ]);
    expect(r.code).toBe(0);
    const { client_id, client_secret } = JSON.parse(r.stdout);
    expect(client_secret).toMatch(/^[A-Za-z0-9_-]{43}$/);
    const row = await db('clients').where({ client_id }).first();
    expect(row.secret_digest).toBe(sha256(client_secret));
    expect(JSON.stringify(row)).not.toContain(client_secret);
    expect(row.metadata).toMatchObject({ token_endpoint_auth_method: 'client_secret_basic', grant_types: ['authorization_code', 'refresh_token'] });

    const spa = JSON.parse((await cli(['client', 'create', '--window', String(windowId), '--name', 'SPA', '--redirect-uri', 'https://spa.example.cn/cb', '--auth-method', 'none', '--grant-types', 'authorization_code', '--json'])).stdout);
    expect(spa.client_secret).toBeUndefined();

    // Listed, for one window or all, without secrets or their digests.
    const listed = await cli(['client', 'list', '--window', String(windowId), '--json']);
    expect(listed.code).toBe(0);
    const clients = JSON.parse(listed.stdout).clients as Array<Record<string, unknown>>;
    expect(clients.map((c) => c.clientId).sort()).toEqual([client_id, spa.client_id].sort());
    expect(clients.find((c) => c.clientId === spa.client_id)).toMatchObject({ windowId, authMethod: 'none', grantTypes: ['authorization_code'], thirdParty: false, disabled: false });
    expect(listed.stdout).not.toContain(client_secret);
    expect(listed.stdout).not.toContain(sha256(client_secret));
    const human = await cli(['client', 'list']);
    expect(human.stdout).toMatch(new RegExp(`^${spa.client_id}\t${windowId}\tnone\tauthorization_code\tfirst-party\tactive\tSPA$`, 'm'));
    refused(await cli(['client', 'list', '--window', '99999']), /--window: no window with id 99999/);
    refused(await cli(['client', 'list', '--window', 'constructor']), /--window/);
  });

  it('prints its version, and points a password given as an argument to --password-stdin', async () => {
    const version = await cli(['--version']);
    expect([version.code, version.stdout]).toEqual([0, `${JSON.parse(fs.readFileSync('package.json', 'utf8')).version}\n`]);
    const withPassword = await cli(['account', 'create', '--username', 'x', '--name', 'x', '--password', 'abc']);
    expect(withPassword.code).toBe(2);
    expect(withPassword.stderr).toContain("unknown option '--password'");
    expect(withPassword.stderr).toContain('--password-stdin');
    expect(await db('accounts').where({ username: 'x' }).first()).toBeUndefined();
  });

  it('creates an account from a password on standard input', async () => {
    const r = await cli(['account', 'create', '--username', 'wang.fang', '--name', '王芳', '--phone', '13700001111', '--email', 'wang@example.cn', '--password-stdin', '--json'], 'Peony-City-Luoyang-9\n');
    expect(r.code).toBe(0);
    const { id } = JSON.parse(r.stdout);
    const signedIn = await signInWithPassword(db, '13700001111', 'Peony-City-Luoyang-9', { lockout: { threshold: 5, seconds: 60 }, passwords: PASSWORD_POLICIES.mlps });
    expect(signedIn).toMatchObject({ outcome: 'signed-in', account: { id } });
  });

  it('registers enterprises, adds members and finds them', async () => {
    const created = await cli(['enterprise', 'create', '--uscc', '91410000170001401d', '--name', '宇通客车股份有限公司', '--type', 'enterprise', '--region', '410100', '--status', 'verified', '--json']);
    expect(created.code).toBe(0);
    const { id } = JSON.parse(created.stdout);
    const member = await cli(['enterprise', 'add-member', '--enterprise', '91410000170001401D', '--account', 'wang.fang', '--role', 'admin', '--json']);
    expect(member.code).toBe(0);
    expect(JSON.parse(member.stdout)).toMatchObject({ enterprise_id: id, role: 'admin' });
    const suspended = await cli(['enterprise', 'set-status', '--enterprise', '91410000170001401D', '--status', 'suspended', '--json']);
    expect(JSON.parse(suspended.stdout)).toEqual({ id, status: 'suspended' });
    expect(JSON.parse((await cli(['enterprise', 'set-status', '--enterprise', id, '--status', 'verified', '--json'])).stdout)).toEqual({ id, status: 'verified' });
    const found = JSON.parse((await cli(['enterprise', 'find', '客车', '--json'])).stdout);
    expect(found.enterprises).toEqual([expect.objectContaining({ id, uscc: '91410000170001401D', status: 'verified' })]);
    refused(await cli(['enterprise', 'create', '--uscc', '91410000170001402D', '--name', '某公司', '--type', 'enterprise', '--region', '410100']), /--uscc: .*organisation code check \(character 17\).*check character \(character 18\)/);
    refused(await cli(['enterprise', 'add-member', '--enterprise', '91410000170001401D', '--account', 'nobody', '--role', 'admin']), /--account: no account with id or username "nobody"/);
    refused(await cli(['enterprise', 'add-member', '--enterprise', '91440300192317458F', '--account', 'wang.fang', '--role', 'admin']), /--enterprise: no enterprise/);
  });

  it('imports enterprises from CSV, writing a report of rejected rows', async () => {
    const file = path.join(dir, 'registry.csv');
    fs.writeFileSync(file, 'uscc,name,type,region,industry\n91440300192317458F,比亚迪股份有限公司,enterprise,440300,汽车\n91440300192317458E,坏代码,enterprise,440300,\n,"未闭合\n');
    const dry = await cli(['enterprise', 'import', file, '--dry-run', '--json']);
    expect(dry.code).toBe(0);
    expect(JSON.parse(dry.stdout)).toMatchObject({ read: 3, inserted: 1, rejected: 2, dry_run: true });
    expect(JSON.parse((await cli(['enterprise', 'find', '91440300192317458F', '--json'])).stdout).enterprises).toEqual([]);

    const real = await cli(['enterprise', 'import', file, '--json']);
    expect(real.code).toBe(0);
    const summary = JSON.parse(real.stdout);
    expect(summary).toMatchObject({ read: 3, inserted: 1, existing: 0, rejected: 2, report: `${file}.rejected.csv` });
    const [head, ...rows] = fs.readFileSync(summary.report, 'utf8').trim().split('\n');
    expect(head).toBe('line,value,reason');
    // The parser reports malformed lines as it meets them, so rows need not be in line order.
    expect(rows.sort()).toEqual([expect.stringMatching(/^3,91440300192317458E,.*check character/), expect.stringMatching(/^4,.*malformed CSV/)]);
    expect(JSON.parse((await cli(['enterprise', 'import', file, '--json'])).stdout)).toMatchObject({ inserted: 0, existing: 1 });

    refused(await cli(['enterprise', 'import', path.join(dir, 'missing.csv')]), /missing\.csv: cannot read this file/);
    fs.writeFileSync(file, 'code,name\n');
    refused(await cli(['enterprise', 'import', file]), /unknown column "code"/);
  });

  it('puts what it changes on the audit trail, as the command line', async () => {
    const actor = `cli:${os.userInfo().username}`;
    const records = await db('audit_events')
      .whereIn('event', ['account.created', 'enterprise.created', 'membership.added', 'admin.setEnterpriseStatus', 'enterprise.imported'])
      .orderBy('id')
      .select('event', 'actor_type', 'actor_id', 'target', 'after');
    expect(records.map((r) => [r.event, r.actor_type, r.actor_id])).toEqual([
      ['account.created', 'system', actor],
      ['enterprise.created', 'system', actor],
      ['membership.added', 'system', actor],
      ['admin.setEnterpriseStatus', 'system', actor],
      ['admin.setEnterpriseStatus', 'system', actor],
      ['enterprise.imported', 'system', actor],
      ['enterprise.imported', 'system', actor],
    ]);
    expect(records.find((r) => r.event === 'enterprise.imported')).toMatchObject({ target: 'file:registry.csv', after: { read: 3, inserted: 1, existing: 0, rejected: 2 } });
  });

  it('prints service figures for a year, and refuses a bad year', async () => {
    const year = new Date(Date.now() + 8 * 3600_000).getUTCFullYear();
    const account = await db('accounts').where({ username: 'wang.fang' }).first('id');
    // Two sign-ins served at the first window, as the provider records them.
    for (const acr of ['urn:sme-passport:acr:password', 'urn:sme-passport:acr:mfa']) {
      await recordEvent(db, { actor: { type: 'account', id: account.id }, windowId, event: 'authorization', target: 'client:x', outcome: 'success', after: { acr } });
    }
    const one = await cli(['stats', '--window', String(windowId), '--year', String(year), '--json']);
    expect(one.code).toBe(0);
    expect(JSON.parse(one.stdout).windows).toEqual([expect.objectContaining({ windowId, year, signIns: 2, persons: 1, enterprises: 0, mfaShare: 0.5, failures: 0, lockouts: 0 })]);
    // Without --year: this year in China Standard Time.
    expect(JSON.parse((await cli(['stats', '--window', String(windowId), '--json'])).stdout)).toEqual(JSON.parse(one.stdout));
    const text = await cli(['stats', '--year', String(year)]);
    expect(text.stdout).toMatch(new RegExp(`^${windowId}\t2\t1\t0\t0\.0% of 1000\t50\.0%\t0\t0\t`, 'm'));
    // Every window is listed, one without activity at zero.
    const quiet = (await cli(['stats', '--year', String(year - 1)])).stdout;
    expect(quiet).toMatch(new RegExp(`^${windowId}\t0\t0\t0\t0\\.0% of 1000\t-\t0\t0\t`, 'm'));
    const windows = await db('windows').count({ n: '*' }).first();
    expect(quiet.trim().split('\n')).toHaveLength(1 + Number(windows?.n));
    refused(await cli(['stats', '--year', 'soon']), /--year: "soon" must be a year such as 2026/);
    refused(await cli(['stats', '--window', '99999', '--year', String(year)]), /--window: no window with id 99999/);
  });

  it('grants and revokes administrator roles, with their rules', async () => {
    const granted = await cli(['admin', 'grant', '--account', 'wang.fang', '--role', 'system_admin', '--json']);
    expect(granted.code).toBe(0);
    expect(JSON.parse(granted.stdout).roles).toEqual([{ role: 'system_admin', windowId: null }]);
    refused(await cli(['admin', 'grant', '--account', 'wang.fang', '--role', 'audit_admin']), /--role: audit_admin cannot be held together with system_admin/);
    refused(await cli(['admin', 'grant', '--account', 'wang.fang', '--role', 'window_admin']), /--window: is needed for window_admin/);
    refused(await cli(['admin', 'grant', '--account', 'nobody', '--role', 'system_admin']), /--account: no account/);
    const windowAdmin = await cli(['admin', 'grant', '--account', 'wang.fang', '--role', 'window_admin', '--window', String(windowId), '--json']);
    expect(JSON.parse(windowAdmin.stdout).roles).toContainEqual({ role: 'window_admin', windowId });
    expect((await cli(['admin', 'revoke', '--account', 'wang.fang', '--role', 'system_admin'])).stdout).toMatch(/holds: window_admin@\d+/);
    refused(await cli(['admin', 'revoke', '--account', 'wang.fang', '--role', 'system_admin']), /--role: the account does not hold system_admin/);
    // Each change is on record, once, as the command line's; refusals changed nothing.
    const records = await db('audit_events').whereIn('event', ['admin.grantRole', 'admin.revokeRole']).orderBy('id').select('event', 'actor_type', 'actor_id', 'window_id', 'before', 'after');
    expect(records).toEqual([
      { event: 'admin.grantRole', actor_type: 'system', actor_id: `cli:${os.userInfo().username}`, window_id: null, before: null, after: { role: 'system_admin', windowId: null } },
      { event: 'admin.grantRole', actor_type: 'system', actor_id: `cli:${os.userInfo().username}`, window_id: windowId, before: null, after: { role: 'window_admin', windowId } },
      { event: 'admin.revokeRole', actor_type: 'system', actor_id: `cli:${os.userInfo().username}`, window_id: null, before: { role: 'system_admin', windowId: null }, after: null },
    ]);
  });

  it('rotates, lists and retires signing keys', async () => {
    const rotated = await cli(['keys', 'rotate', '--delay', '0', '--json']);
    expect(rotated.code).toBe(0);
    const made: Array<{ kid: string; alg: string }> = JSON.parse(rotated.stdout).keys;
    expect(made.map((k) => k.alg).sort()).toEqual(['ES256', 'RS256']);
    const listed = JSON.parse((await cli(['keys', 'list', '--json'])).stdout).keys;
    expect(listed.map((k: { kid: string }) => k.kid)).toEqual(expect.arrayContaining(made.map((k) => k.kid)));
    refused(await cli(['keys', 'retire', '--kid', made[0]!.kid]), /signs now: rotate first/);
    refused(await cli(['keys', 'retire', '--kid', 'no-such-kid']), /--kid: no live key with kid no-such-kid/);
    refused(await cli(['keys', 'rotate', '--delay', 'soon']), /--delay: "soon" must be a whole number of seconds/);
    const again = JSON.parse((await cli(['keys', 'rotate', '--delay', '0', '--json'])).stdout).keys as Array<{ kid: string; alg: string }>;
    expect(again).toHaveLength(2);
    const retired = await cli(['keys', 'retire', '--kid', made[0]!.kid, '--json']);
    expect(JSON.parse(retired.stdout)).toEqual({ kid: made[0]!.kid, retired: true });
  });

  it('registers, lists, changes and deletes the APIs of a window, on the audit trail', async () => {
    const create = ['api', 'create', '--window', String(windowId), '--name', '订单服务', '--scope', 'orders:read', '--scope', 'orders:write'];
    const made = await cli([...create, '--identifier', 'https://orders.example.cn/api', '--token-ttl', '600', '--json']);
    expect(made.code).toBe(0);
    const api = JSON.parse(made.stdout);
    expect(api).toMatchObject({ windowId, identifier: 'https://orders.example.cn/api', scopes: ['orders:read', 'orders:write'], accessTokenTtlSeconds: 600, otherWindows: false });
    const human = await cli(['api', 'list', '--window', String(windowId)]);
    expect(human.stdout).toContain(`${api.id}\t${windowId}\thttps://orders.example.cn/api\torders:read orders:write\t600\town window\t订单服务`);
    const updated = await cli(['api', 'update', '--id', String(api.id), '--scope', 'orders:read', '--allow-other-windows', '--json']);
    expect(JSON.parse(updated.stdout)).toMatchObject({ scopes: ['orders:read'], accessTokenTtlSeconds: 600, otherWindows: true });

    const before = Number((await db('window_apis').count({ n: '*' }))[0]!.n);
    refused(await cli([...create, '--identifier', 'https://orders.example.cn/api']), /--identifier: an API with the identifier https:\/\/orders.example.cn\/api exists already/);
    refused(await cli([...create, '--identifier', 'https://x.example.cn/api#part']), /--identifier: .*must not have a fragment/);
    refused(await cli([...create, '--identifier', 'http://x.example.cn/api']), /--identifier: .*must use https/);
    refused(await cli([...create, '--identifier', 'javascript:alert(1)']), /--identifier: .*must use https/);
    refused(await cli([...create, '--identifier', `https://x.example.cn/${'a'.repeat(3000)}`]), /--identifier: must be at most 2000 characters/);
    refused(await cli([...create, '--identifier', '__proto__']), /--identifier: "__proto__" is not an absolute URI/);
    refused(await cli([...create, '--identifier', 'https://y.example.cn/api', '--scope', 'openid']), /--scope: "openid" is an OpenID Connect scope/);
    refused(await cli([...create, '--identifier', 'https://y.example.cn/api', '--scope', 'Bad Scope']), /--scope: each must be 1 to 64 of a-z/);
    refused(await cli([...create, '--identifier', 'https://y.example.cn/api', '--scope', 'orders:read']), /--scope: must not name a scope twice/);
    refused(await cli([...create, '--identifier', 'https://y.example.cn/api', '--token-ttl', '10']), /--token-ttl: must be at least 60 seconds/);
    refused(await cli([...create, '--identifier', 'https://y.example.cn/api', '--token-ttl', '1h']), /--token-ttl: "1h" must be a whole number of seconds/);
    refused(await cli(['api', 'create', '--window', '99999', '--name', 'x', '--scope', 'x:y', '--identifier', 'https://z.example.cn/api']), /--window: no window with id 99999/);
    refused(await cli(['api', 'update', '--id', '99999', '--name', 'x']), /--id: no API with id 99999/);
    refused(await cli(['api', 'delete', '--id', 'constructor']), /--id: "constructor" is not an API id/);
    expect(Number((await db('window_apis').count({ n: '*' }))[0]!.n)).toBe(before);

    expect((await cli(['api', 'delete', '--id', String(api.id)])).stdout).toBe(`deleted API ${api.id}: https://orders.example.cn/api\n`);
    expect(JSON.parse((await cli(['api', 'list', '--json'])).stdout).apis).toEqual([]);
    const records = await db('audit_events').where('target', `api:${api.id}`).orderBy('id').select('event', 'actor_type', 'window_id');
    expect(records).toEqual(['admin.createApi', 'admin.updateApi', 'admin.deleteApi'].map((event) => ({ event, actor_type: 'system', window_id: windowId })));
  });

  it('refuses bad input with one clear line and writes nothing', async () => {
    const before = await counts();
    const client = ['client', 'create', '--name', 'x', '--window'];
    refused(await cli([...client, '99999', '--redirect-uri', 'https://a.example.cn/cb']), /--window: no window with id 99999/);
    refused(await cli([...client, String(windowId), '--redirect-uri', 'not a uri']), /--redirect-uri: "not a uri" is not an absolute URI/);
    refused(await cli([...client, String(windowId), '--redirect-uri', 'https://a.example.cn/cb#frag']), /--redirect-uri: .*must not have a fragment/);
    refused(await cli([...client, String(windowId), '--redirect-uri', 'http://a.example.cn/cb']), /--redirect-uri: .*must use https/);
    refused(await cli([...client, 'abc', '--redirect-uri', 'https://a.example.cn/cb']), /--window: "abc" is not a window id/);
    refused(await cli([...client, String(windowId), '--grant-types', 'password']), /--grant-types: each must be one of/);
    // What the client is comes first: a public client cannot use client_credentials,
    // whatever its redirect URIs would need.
    refused(
      await cli([...client, String(windowId), '--redirect-uri', 'https://a.example.cn/cb', '--auth-method', 'none', '--grant-types', 'client_credentials']),
      /^error: --grant-types: client_credentials needs a client that can authenticate \(not auth method none\)\n$/,
    );
    refused(await cli(['window', 'create', '--kind', 'comprehensive', '--name', '某市综合窗口平台', '--region', '4101']), /--region: must be a 6-digit/);
    refused(await cli(['window', 'create', '--kind', 'industry', '--name', '郑州市航空港产业集聚区产业窗口平台', '--region', '410100', '--cluster', 'x']), /--name: a window with this name exists already/);
    const account = ['account', 'create', '--name', 'Someone', '--password-stdin', '--username'];
    refused(await cli([...account, 'wang.fang'], 'Another-Good-Passw0rd'), /--username: is already used/);
    refused(await cli([...account, 'someone'], 'password1'), /--password-stdin: is one of the most common passwords/);
    refused(await cli([...account, 'someone'], 'short'), /--password-stdin: must be at least 8 characters/);
    refused(await cli([...account, 'someone', '--phone', '12345'], 'Another-Good-Passw0rd'), /--phone: must be a mainland mobile number/);
    refused(await cli(['account', 'create', '--username', 'someone', '--name', 'S']), /--password-stdin is required/);
    expect(await counts()).toEqual(before);
  });

  it('answers a usage error with exit code 2', async () => {
    const unknown = await cli(['frobnicate']);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toMatch(/unknown command 'frobnicate'/);
  });
});

describe('sme-passport as its own process', { timeout: 300_000 }, () => {
  let own: TestDatabase | undefined;
  let dataDir: string;
  let env: Record<string, string>;
  const withOwnDb = <T>(work: (db: Db) => Promise<T>) => withCliDatabase(dataDir, own, work);

  beforeAll(async () => {
    dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'sme-passport-cli-process-'));
    if (onPostgres()) own = await testDatabase();
    env = { DATA_DIR: dataDir, ...(own && { DATABASE_URL: own.url! }) };
  });

  afterAll(async () => {
    await own?.close();
    fs.rmSync(dataDir, { recursive: true, force: true });
  });

  // The embedded database starts empty in a new data folder, and the next process finds
  // the migrations there; the PostgreSQL copy of the test template is migrated already.
  it('opens the database of its environment itself, and migrates it', async () => {
    const r = await runCli(['migrate', '--json'], env);
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout).applied.length > 0).toBe(!onPostgres());
  });

  it('creates an account from a password piped to its standard input', async () => {
    const r = await runCli(['account', 'create', '--username', 'pipe.user', '--name', '管道', '--phone', '13700002222', '--password-stdin', '--json'], env, 'Yellow-River-Kaifeng-7\n');
    expect(r.code).toBe(0);
    const { id } = JSON.parse(r.stdout);
    const signedIn = await withOwnDb((db) => signInWithPassword(db, '13700002222', 'Yellow-River-Kaifeng-7', { lockout: { threshold: 5, seconds: 60 }, passwords: PASSWORD_POLICIES.mlps }));
    expect(signedIn).toMatchObject({ outcome: 'signed-in', account: { id } });
  });

  it('answers a configuration error in its environment with exit code 2', async () => {
    const badEnv = await runCli(['window', 'list'], { ...env, DATABASE_URL: 'mysql://nope' });
    expect(badEnv.code).toBe(2);
    expect(badEnv.stderr).toMatch(/DATABASE_URL: must be a postgres/);
  });
});

describe.skipIf(onPostgres())('the embedded database while the server holds it', { timeout: 300_000 }, () => {
  it('runs CLI commands through the server, and refuses a second server on the same files', async () => {
    const held = fs.mkdtempSync(path.join(os.tmpdir(), 'sme-passport-held-'));
    const server = await startNode({ DATA_DIR: held, PORT: '0' });
    try {
      const created = await runCli(['window', 'create', '--kind', 'service', '--name', '河南某服务机构', '--json'], { DATA_DIR: held });
      expect(created.code).toBe(0);
      const { id } = JSON.parse(created.stdout);
      const list = JSON.parse((await runCli(['window', 'list', '--json'], { DATA_DIR: held })).stdout);
      expect(list.windows).toContainEqual(expect.objectContaining({ id, name: '河南某服务机构' }));
      refused(await runCli(['window', 'create', '--kind', 'service', '--name', 'x'], { DATA_DIR: held }), /--name: must be at least 2 characters/);
      const account = await runCli(['account', 'create', '--username', 'relay.user', '--name', 'R', '--password-stdin', '--json'], { DATA_DIR: held }, 'Relay-Through-Socket-1');
      expect(account.code).toBe(0);

      await expect(startNode({ DATA_DIR: held, PORT: '0' })).rejects.toThrow(/in use by process \d+ .*Stop it first, or point both at PostgreSQL/);
    } finally {
      await server.stop();
    }
    try {
      // With the server gone, the CLI opens the files itself and sees the same data.
      const list = JSON.parse((await runCli(['window', 'list', '--json'], { DATA_DIR: held })).stdout);
      expect(list.windows.map((w: { name: string }) => w.name)).toContain('河南某服务机构');
    } finally {
      fs.rmSync(held, { recursive: true, force: true });
    }
  });
});
