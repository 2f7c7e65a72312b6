import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createAccount } from '../../src/accounts/accounts.ts';
import { PASSWORD_POLICIES } from '../../src/accounts/password-policy.ts';
import { grantRole } from '../../src/accounts/admin-roles.ts';
import { listWindows } from '../../src/windows/windows.ts';
import { browser, type Visit } from '../helpers/browser.ts';
import { startTestServer, type TestServer } from '../helpers/server.ts';
import { windowSite, type WindowSite } from '../helpers/window-site.ts';

// Lockout after consecutive failures, per-IP limits, and session timeouts, with the
// limits shortened so the test can see them end.

const password = 'Longmen-Grottoes-493';
// Timeouts are real seconds on the server's clock, and a busy machine makes every step
// slow. A wait that must stay under a timeout counts from before the step that started
// the clock; one that must pass it counts from after that step: a slow step can only
// make either one safer.
const sleepUntil = (moment: number) => new Promise((resolve) => setTimeout(resolve, Math.max(0, moment - Date.now())));
const alert = (v: Visit) => (v.kind === 'page' ? /role="alert">([^<]*)</.exec(v.html)?.[1] : undefined);

async function setUp(env: Record<string, string>) {
  const server = await startTestServer(env);
  const windows = await listWindows(server.db);
  const a = await windowSite(server, { windowId: windows[1]!.id, name: 'a' });
  const b = await windowSite(server, { windowId: windows[2]!.id, name: 'b' });
  return { server, a, b };
}

async function attempt(site: WindowSite, identifier: string, pw: string) {
  const you = browser();
  const { visit } = await site.authorize(you);
  return you.submit(visit, '/login', { identifier, password: pw }, site.redirectUri);
}

describe('lockout after consecutive failures', () => {
  let server: TestServer;
  let a: WindowSite;
  beforeAll(async () => {
    ({ server, a } = await setUp({ LOCKOUT_THRESHOLD: '5', LOCKOUT_SECONDS: '6', SIGN_IN_RATE_LIMIT: '1000/60' }));
    await createAccount(server.db, { username: 'qian.yu', displayName: '钱宇', password }, PASSWORD_POLICIES.mlps);
  });
  afterAll(() => server?.close());

  it('locks after 5 failures, says for how long, refuses even the right password, and lets go when the time is up', async () => {
    for (let i = 1; i <= 4; i++) expect(alert(await attempt(a, 'qian.yu', `Wrong-${i}-password`))).toBe('账号或密码不正确。');
    const fifth = await attempt(a, 'qian.yu', 'Wrong-5-password');
    const locked = Date.now();
    expect(alert(fifth)).toBe('连续登录失败次数过多，已暂时锁定。请在 1 分钟后重试。');
    expect(alert(await attempt(a, 'qian.yu', password))).toMatch(/锁定/);
    await sleepUntil(locked + 6200);
    expect((await attempt(a, 'qian.yu', password)).kind).toBe('redirect');
  });

  it('locks an identifier that has no account exactly the same way', async () => {
    const answers = [];
    for (let i = 1; i <= 6; i++) answers.push(alert(await attempt(a, 'nobody.at.all', `Wrong-${i}-password`)));
    expect(answers.slice(0, 4)).toEqual(Array(4).fill('账号或密码不正确。'));
    expect(answers[4]).toMatch(/锁定/);
    expect(answers[5]).toMatch(/锁定/);
  });

  it('counts only consecutive failures: a success starts the count again', async () => {
    await createAccount(server.db, { username: 'li.ming', displayName: '李明', password }, PASSWORD_POLICIES.mlps);
    for (let i = 0; i < 4; i++) await attempt(a, 'li.ming', 'Wrong-password-1');
    expect((await attempt(a, 'li.ming', password)).kind).toBe('redirect');
    for (let i = 0; i < 4; i++) expect(alert(await attempt(a, 'li.ming', 'Wrong-password-1'))).toBe('账号或密码不正确。');
    expect(server.errors).toEqual([]);
  });

  it('starts the count again at a right password also when another step follows it (an administrator\'s first second factor)', async () => {
    const admin = await createAccount(server.db, { username: 'zhou.an', displayName: '周安', password }, PASSWORD_POLICIES.mlps);
    await grantRole(server.db, { accountId: admin.id, role: 'security_admin' });
    for (let i = 0; i < 4; i++) await attempt(a, 'zhou.an', 'Wrong-password-1');
    const enrol = await attempt(a, 'zhou.an', password);
    expect(enrol.kind === 'page' && enrol.html).toContain('/mfa-enrol');
    for (let i = 0; i < 4; i++) expect(alert(await attempt(a, 'zhou.an', 'Wrong-password-1'))).toBe('账号或密码不正确。');
    expect(server.errors).toEqual([]);
  });
});

describe('per-IP limit on sign-in', () => {
  let server: TestServer;
  let a: WindowSite;
  beforeAll(async () => {
    ({ server, a } = await setUp({ SIGN_IN_RATE_LIMIT: '3/60' }));
  });
  afterAll(() => server?.close());

  it('answers 429 with Retry-After once the window is used up', async () => {
    for (let i = 0; i < 3; i++) expect(alert(await attempt(a, 'someone', 'Wrong-password-1'))).toBe('账号或密码不正确。');
    const you = browser();
    const { visit } = await a.authorize(you);
    if (visit.kind !== 'page') throw new Error('expected the login page');
    const csrf = /name="csrf" value="([^"]+)"/.exec(visit.html)![1]!;
    const res = await you.fetch(new URL(/action="([^"]*\/login)"/.exec(visit.html)![1]!, visit.url), {
      method: 'POST',
      redirect: 'manual',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ csrf, identifier: 'someone', password: 'Wrong-password-1' }),
    });
    expect(res.status).toBe(429);
    expect(Number(res.headers.get('retry-after'))).toBeGreaterThan(0);
    expect(Number(res.headers.get('retry-after'))).toBeLessThanOrEqual(60);
  });
});

describe('session timeouts', () => {
  let server: TestServer;
  let a: WindowSite;
  let b: WindowSite;
  beforeAll(async () => {
    // Whole seconds: the session cookie's expiry is second-grained, so margins are a second or more.
    ({ server, a, b } = await setUp({ SESSION_IDLE_TIMEOUT: '6', SESSION_MAX_AGE: '14' }));
    await createAccount(server.db, { username: 'sun.hao', displayName: '孙浩', password }, PASSWORD_POLICIES.mlps);
  });
  afterAll(() => server?.close());

  it('ends a session left idle', async () => {
    const you = browser();
    await a.signIn(you, { identifier: 'sun.hao', password });
    await sleepUntil(Date.now() + 7100);
    expect((await b.signIn(you, { identifier: 'sun.hao', password })).askedForPassword).toBe(true);
  });

  it('keeps a used session alive, but not past its absolute lifetime', async () => {
    const you = browser();
    let used = Date.now();
    await a.signIn(you, { identifier: 'sun.hao', password });
    const created = Date.now();
    // Used every 3 s for 12 s, well past the 6 s idle timeout: each use at most 3 s and
    // one step after the one before.
    for (let i = 0; i < 4; i++) {
      await sleepUntil((used += 3000));
      expect((await b.signIn(you, undefined)).askedForPassword).toBe(false);
    }
    await sleepUntil(created + 15_000);
    expect((await a.signIn(you, { identifier: 'sun.hao', password })).askedForPassword).toBe(true);
  });
});
