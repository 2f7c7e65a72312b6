import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generate } from 'otplib';
import { createAccount, type Account } from '../../src/accounts/accounts.ts';
import { PASSWORD_POLICIES } from '../../src/accounts/password-policy.ts';
import { confirmEnrolment, startEnrolment } from '../../src/accounts/totp.ts';
import { ACR } from '../../src/oidc/claims.ts';
import { listWindows } from '../../src/windows/windows.ts';
import { adminToken, api, makeAdmin } from '../helpers/admin.ts';
import { browser, type Browser, type Visit } from '../helpers/browser.ts';
import { startTestServer, type TestServer } from '../helpers/server.ts';
import { windowSite, type WindowSite } from '../helpers/window-site.ts';

// The second factor cannot be got round by someone who knows only the password: its
// lock is its own (a right password does not lift it), and the change of an expired
// password asks for the code before it changes anything. The lockout is on its default
// settings (5 attempts, 15 minutes); the per-IP limit is out of the way.

const THRESHOLD = 5;
const password = 'Baima-Temple-Luoyang-68';
const newPassword = 'Guanlin-Temple-Luoyang-1596';
const BAD_OTP = '动态码不正确或已使用过。';
const alert = (v: Visit) => (v.kind === 'page' ? /role="alert">([^<]*)</.exec(v.html)?.[1] : undefined);
const status = (v: Visit) => (v.kind === 'page' ? v.status : v.kind);
const html = (v: Visit) => (v.kind === 'page' ? v.html : `redirect to ${v.to.href}`);
// Codes no authenticator and no recovery list gives.
const wrongCode = (i: number) => `dead-beef-${String(i).padStart(4, '0')}-0000`;
// The enrolment used this time step's code; the next step's is the one to sign in with.
const nextCode = (secret: string) => generate({ secret, epoch: Math.floor(Date.now() / 1000) + 30 });

let server: TestServer;
let site: WindowSite;
const masterKey = () => Buffer.from(server.masterKey, 'base64');

beforeAll(async () => {
  server = await startTestServer({ PASSWORD_POLICY: 'mlps', SIGN_IN_RATE_LIMIT: '10000/60' });
  const [w] = await listWindows(server.db);
  site = await windowSite(server, { windowId: w!.id, name: 'second-factor-gate' });
});

afterAll(async () => {
  await server?.close();
});

async function withTotp(username: string): Promise<{ account: Account; secret: string }> {
  const account = await createAccount(server.db, { username, displayName: username, password }, PASSWORD_POLICIES.mlps);
  const enrolment = await startEnrolment(masterKey(), account);
  await confirmEnrolment(server.db, masterKey(), account.id, enrolment.sealed, await generate({ secret: enrolment.secret }));
  return { account, secret: enrolment.secret };
}

async function signInRecords(accountId: string) {
  const failures: string[] = await server.db('audit_events').where({ event: 'sign_in', target: `account:${accountId}`, outcome: 'failure' }).orderBy('id').pluck('reason');
  const successes = await server.db('audit_events').where({ event: 'sign_in', target: `account:${accountId}`, outcome: 'success' }).pluck('id');
  const locks = await server.db('audit_events').where({ event: 'account.locked', target: `account:${accountId}` }).pluck('id');
  return { failures, successes: successes.length, locks: locks.length };
}

const passwordRow = (accountId: string) => server.db('accounts').where({ id: accountId }).first('password_hash', 'password_changed_at');
const lastTimeStep = async (accountId: string) => Number((await server.db('totp_factors').where({ account_id: accountId }).first('last_time_step')).last_time_step);

describe('the second factor’s own lock', () => {
  it(`locks the second factor after ${THRESHOLD} wrong codes in all, however often the right password is typed in between, and then refuses a right code`, async () => {
    const { account, secret } = await withTotp('gate.lock');
    const you = browser();
    const { visit } = await site.authorize(you);
    let mfa = await you.submit(visit, '/login', { identifier: 'gate.lock', password }, site.redirectUri);
    expect(html(mfa)).toContain('/mfa"');
    for (let i = 1; i < THRESHOLD; i++) {
      mfa = await you.submit(mfa, '/mfa', { code: wrongCode(i) }, site.redirectUri);
      expect(alert(mfa)).toBe(BAD_OTP);
    }
    // The right password again, in a new sign-in: the password is right, so it leads to
    // the code again, and the count of wrong codes goes on.
    mfa = await you.submit((await site.authorize(you)).visit, '/login', { identifier: 'gate.lock', password }, site.redirectUri);
    expect(html(mfa)).toContain('/mfa"');
    const locking = await you.submit(mfa, '/mfa', { code: wrongCode(THRESHOLD) }, site.redirectUri);
    expect(status(locking)).toBe(401);
    expect(alert(locking)).toMatch(/锁定.*15 分钟/);

    // Neither a fresh sign-in with the right password nor a right code gets past it.
    const stepBefore = await lastTimeStep(account.id);
    const other = browser();
    const again = await other.submit((await site.authorize(other)).visit, '/login', { identifier: 'gate.lock', password }, site.redirectUri);
    const refused = await other.submit(again, '/mfa', { code: await nextCode(secret) }, site.redirectUri);
    expect(status(refused)).toBe(401);
    expect(alert(refused)).toMatch(/锁定.*1\d 分钟/);
    expect(await lastTimeStep(account.id)).toBe(stepBefore);
    expect(await signInRecords(account.id)).toEqual({ failures: [...Array(THRESHOLD).fill('mfa_failed'), 'locked'], successes: 0, locks: 1 });
  });

  it('is lifted by a security administrator’s unlock, and then a right code signs in with acr mfa', async () => {
    const { account, secret } = await withTotp('gate.unlock');
    const you = browser();
    let mfa = await you.submit((await site.authorize(you)).visit, '/login', { identifier: 'gate.unlock', password }, site.redirectUri);
    for (let i = 1; i <= THRESHOLD; i++) mfa = await you.submit(mfa, '/mfa', { code: wrongCode(i) }, site.redirectUri);
    expect(alert(mfa)).toMatch(/锁定/);

    const admin = await makeAdmin(server, 'gate.security', [{ role: 'security_admin' }]);
    expect((await api(server, await adminToken(server, admin), 'POST', `/accounts/${account.id}/unlock`)).status).toBe(200);

    const other = browser();
    const { visit, checks } = await site.authorize(other);
    const code = await other.submit(visit, '/login', { identifier: 'gate.unlock', password }, site.redirectUri);
    const back = await other.submit(code, '/mfa', { code: await nextCode(secret) }, site.redirectUri);
    expect((await site.redeem(back, checks)).claims()).toMatchObject({ acr: ACR.mfa, amr: ['pwd', 'otp', 'mfa'] });
    expect(server.errors).toEqual([]);
  });
});

describe('an expired password of an account with a second factor', () => {
  async function expiredWithTotp(username: string) {
    const made = await withTotp(username);
    await server.db('accounts').where({ id: made.account.id }).update({ password_changed_at: server.db.raw("now() - interval '91 days'") });
    return made;
  }
  async function changeForm(you: Browser, username: string) {
    const { visit, checks } = await site.authorize(you);
    const form = await you.submit(visit, '/login', { identifier: username, password }, site.redirectUri);
    expect(html(form)).toContain('/password"');
    expect(html(form)).toContain('name="code"');
    return { form, checks };
  }
  const change = (code?: string) => ({ password, new_password: newPassword, confirm_password: newPassword, ...(code !== undefined && { code }) });

  it('changes nothing and signs nobody in without a right code', async () => {
    const { account } = await expiredWithTotp('gate.expired.refused');
    const before = await passwordRow(account.id);
    const you = browser();
    const { form } = await changeForm(you, 'gate.expired.refused');

    const omitted = await you.submit(form, '/password', change(), site.redirectUri);
    expect(await passwordRow(account.id)).toEqual(before);
    expect(status(omitted)).toBe(400);
    expect(html(omitted)).toContain('name="code"');
    const empty = await you.submit(omitted, '/password', change(''), site.redirectUri);
    expect(status(empty)).toBe(400);
    const wrong = await you.submit(empty, '/password', change(wrongCode(1)), site.redirectUri);
    expect(status(wrong)).toBe(401);
    expect(alert(wrong)).toBe(BAD_OTP);
    // Nor was the way to the code step of a plain sign-in opened.
    const pending = (await you.jar.getCookies((wrong as Extract<Visit, { kind: 'page' }>).url.href)).filter((c) => c.key.startsWith('mfa_pending'));
    expect(pending).toEqual([]);

    expect(await passwordRow(account.id)).toEqual(before);
    expect(await server.db('password_history').where({ account_id: account.id }).pluck('id')).toEqual([]);
    expect(await server.db('audit_events').where({ event: 'password.changed', target: `account:${account.id}` }).pluck('id')).toEqual([]);
    expect(await signInRecords(account.id)).toEqual({ failures: ['mfa_failed'], successes: 0, locks: 0 });
  });

  it('counts its wrong codes on the second factor’s lock, and refuses a right code once that is locked', async () => {
    const { account, secret } = await expiredWithTotp('gate.expired.locked');
    const before = await passwordRow(account.id);
    const you = browser();
    let { form } = await changeForm(you, 'gate.expired.locked');
    for (let i = 1; i <= THRESHOLD; i++) form = await you.submit(form, '/password', change(wrongCode(i)), site.redirectUri);
    expect(alert(form)).toMatch(/锁定.*15 分钟/);
    const refused = await you.submit(form, '/password', change(await nextCode(secret)), site.redirectUri);
    expect(status(refused)).toBe(401);
    expect(alert(refused)).toMatch(/锁定/);
    expect(await passwordRow(account.id)).toEqual(before);
    expect(await signInRecords(account.id)).toEqual({ failures: [...Array(THRESHOLD).fill('mfa_failed'), 'locked'], successes: 0, locks: 1 });
  });

  it('with a right code, changes the password and completes the sign-in with acr mfa, without asking for the code again', async () => {
    const { account, secret } = await expiredWithTotp('gate.expired.changed');
    const before = await passwordRow(account.id);
    const you = browser();
    const { form, checks } = await changeForm(you, 'gate.expired.changed');
    const code = await nextCode(secret);
    // A new password the policy refuses: nothing changes, and the code is not used up.
    const weak = await you.submit(form, '/password', { ...change(code), new_password: 'yellowriverferry', confirm_password: 'yellowriverferry' }, site.redirectUri);
    expect(status(weak)).toBe(400);
    expect(alert(weak)).toMatch(/^密码：必须至少包含以下 3 类字符/);
    expect(await passwordRow(account.id)).toEqual(before);

    const done = await you.submit(weak, '/password', change(code), site.redirectUri);
    expect((await site.redeem(done, checks)).claims()).toMatchObject({ acr: ACR.mfa, amr: ['pwd', 'otp', 'mfa'], preferred_username: 'gate.expired.changed' });
    expect((await passwordRow(account.id))!.password_hash).not.toBe(before!.password_hash);
    expect(await signInRecords(account.id)).toEqual({ failures: [], successes: 1, locks: 0 });

    // The new password works, and the code is asked for as at any sign-in.
    const next = browser();
    const mfa = await next.submit((await site.authorize(next)).visit, '/login', { identifier: 'gate.expired.changed', password: newPassword }, site.redirectUri);
    expect(html(mfa)).toContain('/mfa"');
    expect(server.errors).toEqual([]);
  });
});
