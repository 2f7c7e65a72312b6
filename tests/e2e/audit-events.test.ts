import http from 'node:http';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as oidc from 'openid-client';
import { generate } from 'otplib';
import { createAccount, type Account } from '../../src/accounts/accounts.ts';
import { PASSWORD_POLICIES } from '../../src/accounts/password-policy.ts';
import { completeUscc } from '../../src/enterprises/uscc.ts';
import { ACR } from '../../src/oidc/claims.ts';
import { grantsOf, sessionsOf } from '../../src/oidc/session-details.ts';
import { flushPendingCounts } from '../../src/audit/pending-counts.ts';
import { purgeExpired } from '../../src/purge.ts';
import { listWindows, type Window } from '../../src/windows/windows.ts';
import { adminToken, api, makeAdmin, type TestAdmin } from '../helpers/admin.ts';
import { browser, type Visit } from '../helpers/browser.ts';
import { startTestServer, type TestServer } from '../helpers/server.ts';
import { eventually } from '../helpers/wait.ts';
import { windowSite, type WindowSite } from '../helpers/window-site.ts';

// Every kind of audit record, produced by driving the real flows (windows through
// openid-client, people through a cookie-jar browser, administrators through the admin
// API), each found exactly once for the action that caused it, with the fields it must
// carry, and nothing secret anywhere on the trail.

let server: TestServer;
let zhengzhou: Window;
let luoyang: Window;
let a: WindowSite; // Zhengzhou's site, back-channel logout works
let b: WindowSite; // Luoyang's site, back-channel logout works
let failing: http.Server; // a back-channel receiver that answers 500
const admins = {} as Record<'system' | 'security' | 'window', TestAdmin & { token: string }>;

const password = 'Kaifeng-Iron-Pagoda-1049';
const IP = '127.0.0.1';
const now = () => Math.floor(Date.now() / 1000);
const html = (v: Visit) => (v.kind === 'page' ? v.html : `redirect to ${v.to.href}`);
const status = (v: Visit) => (v.kind === 'page' ? v.status : 0);

// Everything that must never reach the trail, collected as the flows use it. Codes of
// six digits are looked for as whole words (they could be digits inside a hash or id).
const secrets = new Set<string>([password]);
const codes = new Set<string>();
const keep = (...values: Array<string | undefined>) => values.forEach((v) => v && secrets.add(v));

type Row = Record<string, any>;
const FIELDS = ['actor_type', 'actor_id', 'actor_ip', 'enterprise_id', 'window_id', 'event', 'target', 'outcome', 'reason', 'before', 'after'] as const;
const BLANK = { actor_id: null, actor_ip: null, enterprise_id: null, window_id: null, target: null, reason: null, before: null, after: null };
const shape = (row: Row) => Object.fromEntries(FIELDS.map((f) => [f, f === 'window_id' && row[f] !== null ? Number(row[f]) : row[f]]));

// The id of the last record: what an action writes comes after it.
async function mark(): Promise<number> {
  const row = await server.db('audit_events').max({ m: 'id' }).first();
  return Number(row?.m ?? 0);
}
const since = (from: number, where: Record<string, unknown>) => server.db('audit_events').where('id', '>', from).where(where).orderBy('id');
const countOf = async (where: Record<string, unknown>) => Number((await server.db('audit_events').where(where).count({ n: '*' }).first())?.n);

// Exactly one record of this event and target since `from`, and it is this one (fields
// not given are empty).
async function once(from: number, where: { event: string; target?: string | null } & Record<string, unknown>, expected: Partial<Record<(typeof FIELDS)[number], unknown>>): Promise<Row> {
  const rows = await since(from, { target: null, ...where });
  expect(rows.map(shape), `${where.event} ${where.target}`).toEqual([{ ...BLANK, event: where.event, target: where.target ?? null, ...expected }]);
  return rows[0]!;
}

// The one record of a back-channel logout, once its delivery is settled (delivered or
// abandoned: logout-deliveries.ts), in the server's own time.
async function onceSettled(from: number, where: { event: string; target: string }, expected: Partial<Record<(typeof FIELDS)[number], unknown>>): Promise<Row> {
  await eventually(async () => (await since(from, where)).length > 0);
  return once(from, where, expected);
}

const person = (account: Account) => ({ actor_type: 'account', actor_id: account.id, actor_ip: IP, target: `account:${account.id}` });
const newAccount = (username: string, extra: { phone?: string; email?: string } = {}) =>
  createAccount(server.db, { username, displayName: username, password, ...extra }, PASSWORD_POLICIES.mlps);

async function codeFor(destination: string): Promise<string> {
  const row = await server.db('outbox').where({ destination }).orderBy('id', 'desc').first();
  const code = /(\d{6})/.exec(row?.body ?? '')?.[1];
  if (!code) throw new Error(`no code sent to ${destination}`);
  codes.add(code);
  return code;
}

// A port nothing listens on.
async function closedPort(): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((resolve) => s.listen(0, '127.0.0.1', resolve));
  const { port } = s.address() as AddressInfo;
  await new Promise((resolve) => s.close(resolve));
  return port;
}

// A six-digit code that is not the authenticator's code anywhere near now.
async function wrongTotp(secret: string): Promise<string> {
  const near = new Set(await Promise.all([-60, -30, 0, 30, 60, 90].map((d) => generate({ secret, epoch: now() + d }))));
  return ['000000', '111111', '222222', '333333'].find((c) => !near.has(c))!;
}

beforeAll(async () => {
  // Deliveries to a window that never answers are abandoned within seconds.
  server = await startTestServer({ LOGOUT_RETRY_FIRST: '1', LOGOUT_RETRY_MAX: '1', LOGOUT_GIVE_UP: '2', SIGN_IN_RATE_LIMIT: '1000/60', PASSWORD_POLICY: 'mlps', CODE_RATE_LIMIT: '100/3600', REGISTER_RATE_LIMIT: '100/3600' });
  const windows = await listWindows(server.db);
  zhengzhou = windows.find((w) => w.region === '410100')!;
  luoyang = windows.find((w) => w.region === '410300')!;
  a = await windowSite(server, { windowId: zhengzhou.id, name: 'zz-site', backchannel: true });
  b = await windowSite(server, { windowId: luoyang.id, name: 'ly-site', backchannel: true });
  failing = http.createServer((req, res) => {
    req.resume();
    req.on('end', () => res.writeHead(500).end());
  });
  await new Promise<void>((resolve) => failing.listen(0, '127.0.0.1', resolve));
  for (const [name, role] of [['system', 'system_admin'], ['security', 'security_admin'], ['window', 'window_admin']] as const) {
    const admin = await makeAdmin(server, `${name}.admin`, [{ role, ...(role === 'window_admin' && { windowId: zhengzhou.id }) }]);
    admins[name] = { ...admin, token: await adminToken(server, admin) };
    keep(admin.password, admin.totpSecret, admins[name].token);
  }
  keep(a.clientSecret, b.clientSecret);
});

afterAll(async () => {
  await a?.close();
  await b?.close();
  await new Promise((resolve) => (failing ? failing.close(resolve) : resolve(undefined)));
  await server?.close();
});

describe('the audit trail of real flows', () => {
  it('records a sign-in with a password, and the authorization at the window', async () => {
    const wang = await newAccount('wang.fang');
    const from = await mark();
    const signedIn = await a.signIn(browser(), { identifier: 'wang.fang', password });
    keep(signedIn.tokens.access_token, signedIn.tokens.id_token);
    expect(signedIn.claims.acr).toBe(ACR.password);

    await once(from, { event: 'sign_in', target: `account:${wang.id}` }, { ...person(wang), window_id: zhengzhou.id, outcome: 'success', after: { clientId: a.clientId, acr: ACR.password } });
    await once(from, { event: 'authorization', target: `client:${a.clientId}` }, { ...person(wang), target: `client:${a.clientId}`, window_id: zhengzhou.id, outcome: 'success', after: { acr: ACR.password } });

    // Single sign-on at a second window: an authorization, no second sign-in.
    const sso = await mark();
    const you = browser();
    await a.signIn(you, { identifier: 'wang.fang', password });
    const from2 = await mark();
    expect((await b.signIn(you, undefined)).askedForPassword).toBe(false);
    expect(await since(from2, { event: 'sign_in' })).toEqual([]);
    await once(from2, { event: 'authorization', target: `client:${b.clientId}` }, { ...person(wang), target: `client:${b.clientId}`, window_id: luoyang.id, outcome: 'success', after: { acr: ACR.password } });
    expect((await since(sso, { event: 'sign_in', target: `account:${wang.id}` })).length).toBe(1);
  });

  it('records refused sign-ins with their reason, and a lock once', async () => {
    const wang = (await server.db('accounts').where({ username: 'wang.fang' }).first()) as { id: string };
    const attempt = async (identifier: string, pw: string) => {
      const you = browser();
      const { visit } = await a.authorize(you);
      return you.submit(visit, '/login', { identifier, password: pw }, a.redirectUri);
    };

    let from = await mark();
    expect(status(await attempt('nobody.at.all', 'Wrong-Password-0001'))).toBe(401);
    const unknown = await since(from, { event: 'sign_in' });
    expect(unknown.map(shape)).toEqual([
      { ...BLANK, actor_type: 'system', actor_id: 'anonymous', actor_ip: IP, window_id: zhengzhou.id, event: 'sign_in', outcome: 'failure', reason: 'unknown_account', after: { clientId: a.clientId } },
    ]);
    keep('Wrong-Password-0001');

    from = await mark();
    expect(status(await attempt('wang.fang', 'Wrong-Password-0002'))).toBe(401);
    await once(from, { event: 'sign_in', target: `account:${wang.id}` }, {
      actor_type: 'account', actor_id: wang.id, actor_ip: IP, window_id: zhengzhou.id, outcome: 'failure', reason: 'wrong_password', after: { clientId: a.clientId },
    });
    keep('Wrong-Password-0002');

    // Five failures lock the account: each failure is on record, the lock once.
    const li = await newAccount('li.suo');
    from = await mark();
    for (let i = 1; i <= 5; i++) {
      keep(`Wrong-Password-10${i}0`);
      expect(status(await attempt('li.suo', `Wrong-Password-10${i}0`))).toBe(401);
    }
    const failures = await since(from, { event: 'sign_in', target: `account:${li.id}` });
    expect(failures.map(shape)).toEqual(
      Array(5).fill({ ...BLANK, ...person(li), window_id: zhengzhou.id, event: 'sign_in', outcome: 'failure', reason: 'wrong_password', after: { clientId: a.clientId } }),
    );
    const lock = await once(from, { event: 'account.locked', target: `account:${li.id}` }, {
      ...person(li), window_id: zhengzhou.id, outcome: 'success', after: { until: expect.stringMatching(/^\d{4}-\d\d-\d\dT/) },
    });
    const until = (await server.db('sign_in_throttle').where({ key: `account:${li.id}` }).first()).locked_until;
    expect(new Date(lock.after.until).getTime()).toBe(new Date(until).getTime());
    expect(Number(lock.id)).toBeLessThan(Number(failures.at(-1)!.id));

    // While locked, even the right password is refused as 'locked', and the lock is not recorded again.
    from = await mark();
    expect(status(await attempt('li.suo', password))).toBe(401);
    await once(from, { event: 'sign_in', target: `account:${li.id}` }, { ...person(li), window_id: zhengzhou.id, outcome: 'failure', reason: 'locked', after: { clientId: a.clientId } });
    expect(await since(from, { event: 'account.locked' })).toEqual([]);
    expect(await countOf({ event: 'account.locked', target: `account:${li.id}` })).toBe(1);
  });

  it('records the second factor: enrolled, a wrong code, a sign-in with it, removed', async () => {
    const guo = await newAccount('guo.tao');
    const you = browser();
    await a.signIn(you, { identifier: 'guo.tao', password });

    let from = await mark();
    const page = await you.visit(`${server.url}/account/mfa`);
    const secret = /<code>([A-Z2-7]+)<\/code>/.exec(html(page))![1]!;
    const enrolCode = await generate({ secret });
    const done = await you.submit(page, '/account/mfa', { code: enrolCode, password });
    const recovery = [...html(done).matchAll(/<code>([0-9a-f-]{19})<\/code>/g)].map((m) => m[1]!);
    expect(recovery).toHaveLength(10);
    keep(secret, ...recovery);
    codes.add(enrolCode);
    await once(from, { event: 'mfa.enrolled', target: `account:${guo.id}` }, { ...person(guo), outcome: 'success' });

    const phone = browser();
    const { visit, checks } = await b.authorize(phone);
    const mfa = await phone.submit(visit, '/login', { identifier: 'guo.tao', password }, b.redirectUri);
    expect(html(mfa)).toContain('/mfa"');
    from = await mark();
    const wrong = await wrongTotp(secret);
    const refused = await phone.submit(mfa, '/mfa', { code: wrong }, b.redirectUri);
    expect(status(refused)).toBe(401);
    await once(from, { event: 'sign_in', target: `account:${guo.id}` }, { ...person(guo), window_id: luoyang.id, outcome: 'failure', reason: 'mfa_failed', after: { clientId: b.clientId } });

    from = await mark();
    const right = await generate({ secret, epoch: now() + 30 });
    codes.add(right);
    const back = await phone.submit(refused, '/mfa', { code: right }, b.redirectUri);
    const tokens = await b.redeem(back, checks);
    keep(tokens.access_token, tokens.id_token);
    expect(tokens.claims()!.acr).toBe(ACR.mfa);
    await once(from, { event: 'sign_in', target: `account:${guo.id}` }, { ...person(guo), window_id: luoyang.id, outcome: 'success', after: { clientId: b.clientId, acr: ACR.mfa } });
    await once(from, { event: 'authorization', target: `client:${b.clientId}` }, { ...person(guo), target: `client:${b.clientId}`, window_id: luoyang.id, outcome: 'success', after: { acr: ACR.mfa } });

    from = await mark();
    const off = await phone.submit(await phone.visit(`${server.url}/account`), '/account/mfa/remove', { password });
    expect(html(off)).toContain('未启用');
    await once(from, { event: 'mfa.removed', target: `account:${guo.id}` }, { ...person(guo), outcome: 'success' });
  });

  it('records the change of an expired password at sign-in, then the sign-in', async () => {
    const gao = await newAccount('gao.fei');
    await server.db('accounts').where({ id: gao.id }).update({ password_changed_at: server.db.raw("now() - interval '91 days'") });
    const next = 'Yellow-River-Ferry-1952';
    keep(next);
    const you = browser();
    const { visit, checks } = await a.authorize(you);
    const change = await you.submit(visit, '/login', { identifier: 'gao.fei', password }, a.redirectUri);
    expect(html(change)).toContain('new_password');
    const from = await mark();
    const back = await you.submit(change, '/password', { password, new_password: next, confirm_password: next }, a.redirectUri);
    expect((await a.redeem(back, checks)).claims()!.preferred_username).toBe('gao.fei');
    await once(from, { event: 'password.changed', target: `account:${gao.id}` }, { ...person(gao), outcome: 'success', reason: 'expired' });
    await once(from, { event: 'sign_in', target: `account:${gao.id}` }, { ...person(gao), window_id: zhengzhou.id, outcome: 'success', after: { clientId: a.clientId, acr: ACR.password } });
  });

  it('records an RP-initiated sign-out and the back-channel logout of every window, abandoned ones included', async () => {
    const windows = await listWindows(server.db);
    const [w3, w4] = windows.filter((w) => w.id !== zhengzhou.id && w.id !== luoyang.id);
    const broken = await windowSite(server, { windowId: w3!.id, name: 'broken-site', backchannelLogoutUri: `http://127.0.0.1:${(failing.address() as AddressInfo).port}/backchannel-logout` });
    const gone = await windowSite(server, { windowId: w4!.id, name: 'gone-site', backchannelLogoutUri: `http://127.0.0.1:${await closedPort()}/backchannel-logout` });
    keep(broken.clientSecret, gone.clientSecret);
    const zhou = await newAccount('zhou.min');
    const you = browser();
    const atA = await a.signIn(you, { identifier: 'zhou.min', password });
    const atBroken = await broken.signIn(you, undefined);
    const atGone = await gone.signIn(you, undefined);
    keep(atA.tokens.access_token, atA.tokens.id_token, atBroken.tokens.access_token, atGone.tokens.access_token);
    const sids = { a: atA.claims.sid, broken: atBroken.claims.sid, gone: atGone.claims.sid };
    expect(sids.a).toBeTruthy();
    expect(server.errors).toEqual([]);

    const before = a.logoutTokens.length;
    const from = await mark();
    const endSession = oidc.buildEndSessionUrl(a.config, { id_token_hint: atA.tokens.id_token!, post_logout_redirect_uri: a.postLogoutUri, state: 'bye' });
    const confirm = await you.visit(endSession, a.postLogoutUri);
    const done = await you.submit(confirm, '/session/end/confirm', { logout: 'yes' }, a.postLogoutUri);
    expect(done.kind).toBe('redirect');
    await eventually(() => a.logoutTokens.length === before + 1);

    await once(from, { event: 'sign_out', target: `account:${zhou.id}` }, { ...person(zhou), window_id: zhengzhou.id, outcome: 'success', after: { clientId: a.clientId } });
    await onceSettled(from, { event: 'backchannel_logout', target: `client:${a.clientId}` }, { actor_type: 'system', window_id: zhengzhou.id, outcome: 'success', after: { accountId: zhou.id, sid: sids.a, attempts: 1 } });
    await onceSettled(from, { event: 'backchannel_logout', target: `client:${broken.clientId}` }, {
      actor_type: 'system', window_id: w3!.id, outcome: 'failure', reason: expect.stringMatching(/got: 500/), after: { accountId: zhou.id, sid: sids.broken, attempts: expect.any(Number) },
    });
    await onceSettled(from, { event: 'backchannel_logout', target: `client:${gone.clientId}` }, {
      actor_type: 'system', window_id: w4!.id, outcome: 'failure', reason: expect.stringMatching(/fetch failed|ECONNREFUSED/), after: { accountId: zhou.id, sid: sids.gone, attempts: expect.any(Number) },
    });

    // The two abandoned deliveries are also logged as errors, and nothing else is.
    const messages = server.errors.splice(0).map((e) => (e instanceof Error ? e.message : String(e))).sort();
    expect(messages).toHaveLength(2);
    expect(messages).toEqual(expect.arrayContaining([expect.stringMatching(/abandoned after \d+ attempts?: .*got: 500/), expect.stringMatching(/abandoned after \d+ attempts?: .*ECONNREFUSED/)]));
  });

  it('records a session that ran out once, when the purge clears it away', async () => {
    const sun = await newAccount('sun.hao');
    await a.signIn(browser(), { identifier: 'sun.hao', password });
    await server.db('oidc_artifacts').where({ model: 'Session' }).whereRaw("payload->>'accountId' = ?", [sun.id]).update({ expires_at: server.db.raw("now() - interval '1 minute'") });
    const session = await server.db('oidc_artifacts').where({ model: 'Session' }).whereRaw("payload->>'accountId' = ?", [sun.id]).first('uid', 'expires_at');
    const from = await mark();
    await purgeExpired(server.db);
    await once(from, { event: 'session.expired', target: `account:${sun.id}` }, {
      actor_type: 'system', outcome: 'success', after: { sessionUid: session.uid, expiredAt: new Date(session.expires_at).toISOString() },
    });
    expect(await server.db('oidc_artifacts').where({ model: 'Session' }).whereRaw("payload->>'accountId' = ?", [sun.id]).first()).toBeUndefined();
    await purgeExpired(server.db);
    expect(await countOf({ event: 'session.expired', target: `account:${sun.id}` })).toBe(1);
  });

  it('counts tokens issued and revoked per client and minute, and rolls the past minutes up into records', async () => {
    const windows = await listWindows(server.db);
    const w = windows.find((x) => x.region === '410200') ?? windows[5]!;
    const backend = await windowSite(server, { windowId: w.id, name: 'token-backend', grantTypes: ['client_credentials'], redirectUris: [], postLogoutRedirectUris: [] });
    const site = await windowSite(server, { windowId: w.id, name: 'token-site' });
    keep(backend.clientSecret, site.clientSecret);
    const mine = [backend.clientId, site.clientId];

    const first = await oidc.clientCredentialsGrant(backend.config);
    const second = await oidc.clientCredentialsGrant(backend.config);
    const user = await site.signIn(browser(), { identifier: 'wang.fang', password });
    keep(first.access_token, second.access_token, user.tokens.access_token, user.tokens.id_token);
    await oidc.tokenRevocation(backend.config, first.access_token);
    await oidc.tokenRevocation(site.config, user.tokens.access_token);

    // Counts are written once a second, and revocations are counted after the answer:
    // write what this node counted until they are there.
    const counts = () => server.db('audit_token_counts').whereIn('client_id', mine).orderBy(['minute', 'client_id', 'action', 'kind']);
    const total = (rows: Row[], clientId: string, action: string, kind: string) =>
      rows.filter((r) => r.client_id === clientId && r.action === action && r.kind === kind).reduce((n, r) => n + Number(r.count), 0);
    await eventually(async () => {
      await flushPendingCounts(server.db);
      const rows = await counts();
      return total(rows, backend.clientId, 'revoked', 'client_credentials') === 1 && total(rows, site.clientId, 'revoked', 'access_token') === 1;
    });
    const pending = await counts();
    expect(total(pending, backend.clientId, 'issued', 'client_credentials')).toBe(2);
    expect(total(pending, site.clientId, 'issued', 'authorization_code')).toBe(1);
    expect([...new Set(pending.map((r) => `${r.client_id} ${r.action} ${r.kind}`))].sort()).toEqual(
      [`${backend.clientId} issued client_credentials`, `${backend.clientId} revoked client_credentials`, `${site.clientId} issued authorization_code`, `${site.clientId} revoked access_token`].sort(),
    );

    // The current minute is not rolled up; move these into the past, then purge.
    let from = await mark();
    await purgeExpired(server.db);
    expect(await since(from, { event: 'token.issued', target: `client:${site.clientId}` })).toEqual([]);
    await server.db('audit_token_counts').whereIn('client_id', mine).update({ minute: server.db.raw("minute - interval '2 minutes'") });
    const moved = await counts();
    from = await mark();
    await purgeExpired(server.db);
    const rolled = await server.db('audit_events').where('id', '>', from).whereIn('event', ['token.issued', 'token.revoked']).whereIn('target', mine.map((id) => `client:${id}`)).orderBy('id');
    const order = (rows: Row[]) => rows.map(shape).sort((x, y) => (`${x.event} ${x.target} ${x.after.minute} ${x.after.kind}` < `${y.event} ${y.target} ${y.after.minute} ${y.after.kind}` ? -1 : 1));
    expect(order(rolled)).toEqual(
      order(
        moved.map((r) => ({
          ...BLANK,
          actor_type: 'client',
          actor_id: r.client_id,
          window_id: w.id,
          event: `token.${r.action}`,
          target: `client:${r.client_id}`,
          outcome: 'success',
          after: { minute: new Date(r.minute).toISOString(), kind: r.kind, count: Number(r.count) },
        })),
      ),
    );
    expect(await counts()).toEqual([]);
    from = await mark();
    await purgeExpired(server.db);
    expect(await since(from, { event: 'token.issued' })).toEqual([]);
    expect(await since(from, { event: 'token.revoked' })).toEqual([]);
  });

  it('records what a person changes in the account center: name, contact, password, sessions, a site’s access', async () => {
    const yang = await newAccount('yang.fan', { phone: '13712340001' });
    secrets.add('13712340001');
    const laptop = browser();
    await a.signIn(laptop, { identifier: 'yang.fan', password });

    let from = await mark();
    await laptop.submit(await laptop.visit(`${server.url}/account`), '/account/profile', { name: '杨远帆' });
    await once(from, { event: 'account.changed', target: `account:${yang.id}` }, { ...person(yang), outcome: 'success', before: { displayName: 'yang.fan' }, after: { displayName: '杨远帆' } });

    secrets.add('13712340002');
    const sent = await laptop.submit(await laptop.visit(`${server.url}/account`), '/account/contact/code', { contact: '137 1234 0002' });
    const code = await codeFor('13712340002');
    from = await mark();
    await laptop.submit(sent, '/account/contact', { code });
    expect(await server.db('accounts').where({ id: yang.id }).first()).toMatchObject({ phone: '13712340002', phone_verified: true });
    await once(from, { event: 'account.changed', target: `account:${yang.id}` }, { ...person(yang), outcome: 'success', before: { phone: '137****0001' }, after: { phone: '137****0002' } });

    // A new password signs the other device out: its window is told.
    const phone = browser();
    const onPhone = await b.signIn(phone, { identifier: 'yang.fan', password });
    keep(onPhone.tokens.access_token);
    const next = 'Brand-New-Sail-2026';
    keep(next);
    from = await mark();
    const changed = await laptop.submit(await laptop.visit(`${server.url}/account`), '/account/password', { password, new_password: next, confirm_password: next });
    expect(html(changed)).toContain('密码已修改');
    await once(from, { event: 'password.changed', target: `account:${yang.id}` }, { ...person(yang), outcome: 'success' });
    await onceSettled(from, { event: 'backchannel_logout', target: `client:${b.clientId}` }, { actor_type: 'system', window_id: luoyang.id, outcome: 'success', after: { accountId: yang.id, sid: onPhone.claims.sid, attempts: 1 } });

    // Signing the phone out from the laptop.
    const again = await b.signIn(phone, { identifier: 'yang.fan', password: next });
    const phoneSession = (await sessionsOf(server.db, yang.id)).find((s) => s.clientIds.includes(b.clientId))!;
    from = await mark();
    await laptop.submit(await laptop.visit(`${server.url}/account`), `/account/sessions/${phoneSession.sessionUid}/end`);
    await once(from, { event: 'sign_out', target: `account:${yang.id}` }, {
      ...person(yang), outcome: 'success', reason: 'one session, from the account center', after: { sessions: 1, notified: 1 },
    });
    await onceSettled(from, { event: 'backchannel_logout', target: `client:${b.clientId}` }, { actor_type: 'system', window_id: luoyang.id, outcome: 'success', after: { accountId: yang.id, sid: again.claims.sid, attempts: 1 } });

    // Revoking what site A was granted.
    const grant = (await grantsOf(server.db, yang.id)).find((g) => g.clientId === a.clientId)!;
    from = await mark();
    await laptop.submit(await laptop.visit(`${server.url}/account`), `/account/grants/${grant.grantId}/revoke`);
    await once(from, { event: 'token.revoked', target: `client:${a.clientId}` }, {
      ...person(yang), target: `client:${a.clientId}`, window_id: zhengzhou.id, outcome: 'success', reason: 'the person revoked the site’s access', after: { grantId: grant.grantId },
    });
  });

  it('records a registration and a password reset', async () => {
    secrets.add('13712340003');
    const you = browser();
    const step2 = await you.submit(await you.visit(`${server.url}/register`), '/register/code', { contact: '137 1234 0003' });
    const code = await codeFor('13712340003');
    let from = await mark();
    const done = await you.submit(step2, '/register', { code, username: 'new.comer', name: '新来者', password, confirm_password: password });
    expect(html(done)).toContain('注册成功');
    const comer = (await server.db('accounts').where({ username: 'new.comer' }).first()) as { id: string };
    await once(from, { event: 'account.created', target: `account:${comer.id}` }, {
      actor_type: 'account', actor_id: comer.id, actor_ip: IP, outcome: 'success', reason: 'registration', after: { username: 'new.comer', proven: 'phone' },
    });
    expect(await countOf({ event: 'account.created', target: `account:${comer.id}` })).toBe(1);

    const luo = await newAccount('luo.bin', { email: 'luo.bin@example.cn' });
    const resetter = browser();
    const asked = await resetter.submit(await resetter.visit(`${server.url}/reset`), '/reset/code', { contact: 'Luo.Bin@example.cn' });
    const resetCode = await codeFor('luo.bin@example.cn');
    const fresh = 'Luoyang-Peony-Garden-2026';
    keep(fresh);
    from = await mark();
    expect(html(await resetter.submit(asked, '/reset', { code: resetCode, password: fresh, confirm_password: fresh }))).toContain('密码已重置');
    await once(from, { event: 'password.reset', target: `account:${luo.id}` }, { ...person(luo), outcome: 'success', reason: 'code sent by email' });
  });

  it('records enterprises and memberships, and authorizations for the enterprise a person acts for', async () => {
    const lead = await newAccount('lead.rep');
    const op = await newAccount('op.erator');
    const owner = browser();
    await a.signIn(owner, { identifier: 'lead.rep', password });

    const uscc = completeUscc('9141010000000777');
    let from = await mark();
    const form = await owner.visit(`${server.url}/account/enterprises/new`);
    await owner.submit(form, '/account/enterprises', { uscc, name: '中原审计科技有限公司', type: 'enterprise', region: '410100', industry: '软件' });
    const e = await server.db('enterprises').where({ uscc }).first();
    expect(e).toMatchObject({ status: 'pending' });
    const enterprise = { id: e.id, uscc, name: '中原审计科技有限公司', type: 'enterprise', region: '410100', industry: '软件', status: 'pending' };
    const about = { enterprise_id: e.id, target: `enterprise:${e.id}` };
    await once(from, { event: 'enterprise.created', target: about.target }, { ...person(lead), ...about, outcome: 'success', after: enterprise });
    await once(from, { event: 'membership.added', target: about.target }, { ...person(lead), ...about, outcome: 'success', after: { accountId: lead.id, role: 'legal_rep' } });

    // Acting for it at a window (the only membership is chosen without asking).
    from = await mark();
    const acting = await a.signIn(owner, undefined, { scope: 'openid enterprise' });
    expect(acting.claims.enterprise).toMatchObject({ id: e.id });
    await once(from, { event: 'authorization', target: `client:${a.clientId}` }, { ...person(lead), enterprise_id: e.id, target: `client:${a.clientId}`, window_id: zhengzhou.id, outcome: 'success', after: { acr: ACR.password } });

    from = await mark();
    const members = await owner.visit(`${server.url}/account/enterprises/${e.id}`);
    const added = await owner.submit(members, '/operators', { identifier: 'op.erator' });
    expect(html(added)).toContain('op.erator');
    await once(from, { event: 'membership.added', target: about.target }, { ...person(lead), ...about, outcome: 'success', after: { accountId: op.id, role: 'operator' } });

    const operator = browser();
    from = await mark();
    const opAt = await b.signIn(operator, { identifier: 'op.erator', password }, { scope: 'openid enterprise' });
    expect(opAt.claims.enterprise).toMatchObject({ id: e.id, role: 'operator' });
    await once(from, { event: 'authorization', target: `client:${b.clientId}` }, { ...person(op), enterprise_id: e.id, target: `client:${b.clientId}`, window_id: luoyang.id, outcome: 'success', after: { acr: ACR.password } });

    from = await mark();
    await owner.submit(added, `/operators/${op.id}/remove`);
    await once(from, { event: 'membership.removed', target: about.target }, { ...person(lead), ...about, outcome: 'success', before: { accountId: op.id, role: 'operator' } });

    // No longer a member: the window is not told of the enterprise, and neither is the trail.
    from = await mark();
    const after = await b.signIn(operator, undefined, { scope: 'openid enterprise' });
    expect(after.claims.enterprise).toBeUndefined();
    await once(from, { event: 'authorization', target: `client:${b.clientId}` }, { ...person(op), target: `client:${b.clientId}`, window_id: luoyang.id, outcome: 'success', after: { acr: ACR.password } });

    // Administrators verify it (a window administrator of its region) and suspend it (a system administrator).
    from = await mark();
    const verified = await api(server, admins.window.token, 'POST', `/enterprises/${e.id}/status`, { status: 'verified' });
    expect(verified.status).toBe(200);
    await once(from, { event: 'admin.setEnterpriseStatus', target: about.target }, {
      ...person(admins.window.account), target: about.target, enterprise_id: e.id, window_id: zhengzhou.id, outcome: 'success', before: enterprise, after: { ...enterprise, status: 'verified' },
    });
    from = await mark();
    const suspended = await api(server, admins.system.token, 'POST', `/enterprises/${e.id}/status`, { status: 'suspended' });
    expect(suspended.status).toBe(200);
    await once(from, { event: 'admin.setEnterpriseStatus', target: about.target }, {
      ...person(admins.system.account), target: about.target, enterprise_id: e.id, outcome: 'success', before: { ...enterprise, status: 'verified' }, after: { ...enterprise, status: 'suspended' },
    });
    expect(await countOf({ event: 'admin.setEnterpriseStatus', target: about.target })).toBe(2);
  });

  it('records administrators disabling an account (and its windows being told), a refused attempt, and a key rotation', async () => {
    const dis = await newAccount('dis.abled');
    const device = browser();
    const signedIn = await a.signIn(device, { identifier: 'dis.abled', password });
    keep(signedIn.tokens.access_token);

    let from = await mark();
    const refused = await api(server, admins.window.token, 'POST', `/accounts/${dis.id}/disable`);
    expect(refused.status).toBe(403);
    const refusals = await since(from, { event: 'admin.disableAccount' });
    expect(refusals.map(shape)).toEqual([
      { ...BLANK, actor_type: 'account', actor_id: admins.window.account.id, actor_ip: IP, event: 'admin.disableAccount', outcome: 'failure', reason: 'forbidden: role' },
    ]);

    from = await mark();
    const disabled = await api(server, admins.security.token, 'POST', `/accounts/${dis.id}/disable`);
    expect(disabled).toMatchObject({ status: 200, body: { status: 'disabled', sessions: 1, notified: 1 } });
    await once(from, { event: 'admin.disableAccount', target: `account:${dis.id}` }, {
      ...person(admins.security.account), target: `account:${dis.id}`, outcome: 'success', before: { status: 'active' }, after: { status: 'disabled' },
    });
    await onceSettled(from, { event: 'backchannel_logout', target: `client:${a.clientId}` }, { actor_type: 'system', window_id: zhengzhou.id, outcome: 'success', after: { accountId: dis.id, sid: signedIn.claims.sid, attempts: 1 } });

    from = await mark();
    const stranger = browser();
    const start = await a.authorize(stranger);
    expect(status(await stranger.submit(start.visit, '/login', { identifier: 'dis.abled', password }, a.redirectUri))).toBe(401);
    await once(from, { event: 'sign_in', target: `account:${dis.id}` }, { ...person(dis), window_id: zhengzhou.id, outcome: 'failure', reason: 'account_disabled', after: { clientId: a.clientId } });

    from = await mark();
    const rotated = await api(server, admins.security.token, 'POST', '/keys/rotations', { delaySeconds: 3600 });
    expect(rotated.status).toBe(201);
    const target = rotated.body.map((k: { kid: string }) => `key:${k.kid}`).join(' ');
    await once(from, { event: 'admin.rotateKeys', target }, { ...person(admins.security.account), target, outcome: 'success', after: rotated.body });
  });

  it('puts nothing secret on record', async () => {
    const rows = await server.db('audit_events').orderBy('id');
    expect(rows.length).toBeGreaterThan(50);
    const text = JSON.stringify(rows.map(shape));
    for (const secret of secrets) expect(text.includes(secret), `a secret on record: ${secret.slice(0, 6)}…`).toBe(false);
    for (const code of codes) expect(new RegExp(`\\b${code}\\b`).test(text), `a code on record: ${code}`).toBe(false);
    // Nor any private key material.
    for (const key of await server.db('keys').select('private_sealed')) expect(text).not.toContain(key.private_sealed);
    expect(text).not.toMatch(/"d":"/);
    expect(server.errors).toEqual([]);
  });
});
