import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createAccount } from '../../src/accounts/accounts.ts';
import { PASSWORD_POLICIES } from '../../src/accounts/password-policy.ts';
import { listWindows } from '../../src/windows/windows.ts';
import { browser, type Visit } from '../helpers/browser.ts';
import { startTestServer, type TestServer } from '../helpers/server.ts';
import { windowSite, type WindowSite } from '../helpers/window-site.ts';
import { eventually } from '../helpers/wait.ts';

// Registration and password reset by one-time codes, read from the development outbox
// (never from logs).

let server: TestServer;
let a: WindowSite;
let b: WindowSite;
const html = (v: Visit) => (v.kind === 'page' ? v.html : `redirect to ${v.to.href}`);
const alert = (v: Visit) => (v.kind === 'page' ? /role="alert">([^<]*)</.exec(v.html)?.[1] : undefined);
const status = (v: Visit) => (v.kind === 'page' ? v.status : 0);
// What the form's code field holds when the page comes back.
const codeField = (v: Visit) => (v.kind === 'page' ? /<input type="text" id="code" [^>]*value="([^"]*)"/.exec(v.html)?.[1] : undefined);

async function lastMessage(destination: string) {
  return server.db('outbox').where({ destination }).orderBy('id', 'desc').first();
}
async function codeFor(destination: string) {
  return /(\d{6})/.exec((await lastMessage(destination))?.body ?? '')?.[1];
}

beforeAll(async () => {
  // Every request here comes from one address: room for more than a person would need.
  server = await startTestServer({ CODE_RATE_LIMIT: '100/3600', REGISTER_RATE_LIMIT: '100/3600' });
  const windows = await listWindows(server.db);
  a = await windowSite(server, { windowId: windows[7]!.id, name: 'a', backchannel: true });
  b = await windowSite(server, { windowId: windows[8]!.id, name: 'b', backchannel: true });
});

afterAll(async () => {
  await a?.close();
  await b?.close();
  await server?.close();
});

describe('registration with a code', () => {
  it('registers from the login page with a phone code and then signs in', async () => {
    const you = browser();
    const { visit, checks } = await a.authorize(you);
    const link = /href="(\/register\?interaction=[^"]+)"/.exec(html(visit))![1]!.replace(/&amp;/g, '&');
    const step1 = await you.visit(`${server.url}${link}`);
    const step2 = await you.submit(step1, '/register/code', { contact: '137 1234 5678' });
    expect(html(step2)).toContain('13712345678');
    const code = await codeFor('13712345678');
    expect(code).toMatch(/^\d{6}$/);

    const wrong = await you.submit(step2, '/register', { code: code === '000000' ? '111111' : '000000', username: 'zheng.hua', name: '郑华', password: 'Zhengzhou-Erqi-1951', confirm_password: 'Zhengzhou-Erqi-1951' });
    expect(status(wrong)).toBe(400);
    expect(alert(wrong)).toBe('验证码不正确或已失效，请重新获取。');
    // A first password is asked for twice, not a "new" one.
    expect(html(wrong)).toContain('<label for="confirm_password">再次输入密码</label>');
    // A refused code is cleared; a code given with another refused field stays.
    expect(codeField(wrong)).toBe('');
    const weak = await you.submit(wrong, '/register', { code: code!, username: 'zheng.hua', name: '郑华', password: 'password1', confirm_password: 'password1' });
    expect(alert(weak)).toBe('密码：是最常见的密码之一，不能使用。');
    expect(codeField(weak)).toBe(code);
    const differ = await you.submit(weak, '/register', { code: code!, username: 'zheng.hua', name: '郑华', password: 'Zhengzhou-Erqi-1951', confirm_password: 'Zhengzhou-Erqi-1952' });
    expect(status(differ)).toBe(400);
    expect(codeField(differ)).toBe(code);
    expect(html(differ)).toContain('value="zheng.hua"');
    const done = await you.submit(weak, '/register', { code: code!, username: 'zheng.hua', name: '郑华', password: 'Zhengzhou-Erqi-1951', confirm_password: 'Zhengzhou-Erqi-1951' });
    expect(html(done)).toContain('注册成功');

    const next = /href="(\/interaction\/[^"]+)"/.exec(html(done))![1]!;
    const login = await you.visit(`${server.url}${next}`, a.redirectUri);
    const back = await you.submit(login, '/login', { identifier: '13712345678', password: 'Zhengzhou-Erqi-1951' }, a.redirectUri);
    const claims = (await a.redeem(back, checks)).claims()!;
    expect(claims).toMatchObject({ preferred_username: 'zheng.hua', name: '郑华' });
    expect(await server.db('accounts').where({ username: 'zheng.hua' }).first()).toMatchObject({ phone: '13712345678', phone_verified: true, email: null });
    const withPhone = await a.signIn(you, undefined, { scope: 'openid phone' });
    expect(withPhone.claims).toMatchObject({ phone_number: '+8613712345678', phone_number_verified: true });
  });

  it('throttles a second code to the same number, and a code is used once', async () => {
    const you = browser();
    const step1 = await you.visit(`${server.url}/register`);
    const step2 = await you.submit(step1, '/register/code', { contact: 'new.person@example.cn' });
    const again = await you.submit(step1, '/register/code', { contact: 'new.person@example.cn' });
    expect(status(again)).toBe(429);
    expect(alert(again)).toMatch(/秒后再试/);
    const code = (await codeFor('new.person@example.cn'))!;
    const done = await you.submit(step2, '/register', { code, username: 'new.person', name: '新人', password: 'Fresh-Start-2026', confirm_password: 'Fresh-Start-2026' });
    expect(html(done)).toContain('注册成功');
    const reuse = await you.submit(step2, '/register', { code, username: 'new.person2', name: '新人', password: 'Fresh-Start-2026', confirm_password: 'Fresh-Start-2026' });
    expect(alert(reuse)).toBe('验证码不正确或已失效，请重新获取。');
  });

  it('answers a number that has an account like any other, sending that account a notice instead of a code', async () => {
    await createAccount(server.db, { username: 'has.phone', displayName: '已注册', phone: '13600001234', password: 'Already-Here-2014' }, PASSWORD_POLICIES.mlps);
    const you = browser();
    const step2 = await you.submit(await you.visit(`${server.url}/register`), '/register/code', { contact: '13600001234' });
    expect(status(step2)).toBe(200);
    expect(html(step2)).toContain('验证码已发送至');
    expect((await lastMessage('13600001234'))?.body).toContain('已有账号');
    expect(await codeFor('13600001234')).toBeUndefined();
    expect(html(await you.visit(`${server.url}/dev/outbox`))).toContain('13600001234');
  });

  it('has no development outbox in production', async () => {
    const production = await startTestServer({ NODE_ENV: 'production', ISSUER: 'https://passport.example.cn', HOST: '127.0.0.1' });
    try {
      const res = await fetch(`http://127.0.0.1:${production.port}/dev/outbox`);
      expect(res.status).toBe(404);
    } finally {
      await production.close();
    }
  });
});

describe('password reset with a code', () => {
  it('sets a new password, ends the sessions at both windows, and the old password stops working', async () => {
    await createAccount(server.db, { username: 'luo.bin', displayName: '罗斌', email: 'luo.bin@example.cn', password: 'Old-Password-2014' }, PASSWORD_POLICIES.mlps);
    const device = browser();
    await a.signIn(device, { identifier: 'luo.bin', password: 'Old-Password-2014' });
    await b.signIn(device, undefined);
    const [beforeA, beforeB] = [a.logoutTokens.length, b.logoutTokens.length];

    const you = browser();
    const step2 = await you.submit(await you.visit(`${server.url}/reset`), '/reset/code', { contact: 'Luo.Bin@example.cn' });
    const code = (await codeFor('luo.bin@example.cn'))!;
    expect(html(step2)).toContain('<label for="confirm_password">再次输入新密码</label>');
    const differ = await you.submit(step2, '/reset', { code, password: 'New-Password-2026', confirm_password: 'New-Password-2027' });
    expect(alert(differ)).toBe('两次输入的新密码不一致。');
    expect(codeField(differ)).toBe(code);
    const weak = await you.submit(differ, '/reset', { code, password: 'password1', confirm_password: 'password1' });
    expect(codeField(weak)).toBe(code);
    const wrong = await you.submit(weak, '/reset', { code: code === '000000' ? '111111' : '000000', password: 'New-Password-2026', confirm_password: 'New-Password-2026' });
    expect(alert(wrong)).toBe('验证码不正确或已失效，请重新获取。');
    expect(codeField(wrong)).toBe('');
    const done = await you.submit(wrong, '/reset', { code, password: 'New-Password-2026', confirm_password: 'New-Password-2026' });
    expect(html(done)).toContain('密码已重置');

    await eventually(() => a.logoutTokens.length > beforeA && b.logoutTokens.length > beforeB);
    expect(a.logoutTokens.length).toBe(beforeA + 1);
    expect(b.logoutTokens.length).toBe(beforeB + 1);
    expect((await a.signIn(device, { identifier: 'luo.bin', password: 'New-Password-2026' })).askedForPassword).toBe(true);
    const stranger = browser();
    const old = await a.authorize(stranger);
    const refused = await stranger.submit(old.visit, '/login', { identifier: 'luo.bin', password: 'Old-Password-2014' }, a.redirectUri);
    expect(status(refused)).toBe(401);
  });

  it('spends a code after five wrong tries, and looks the same for an address with no account', async () => {
    await createAccount(server.db, { username: 'tang.li', displayName: '唐丽', phone: '13811112222', password: 'Tang-Dynasty-618' }, PASSWORD_POLICIES.mlps);
    const you = browser();
    const step2 = await you.submit(await you.visit(`${server.url}/reset`), '/reset/code', { contact: '13811112222' });
    const code = (await codeFor('13811112222'))!;
    const wrong = code === '000000' ? '111111' : '000000';
    for (let i = 0; i < 5; i++) await you.submit(step2, '/reset', { code: wrong, password: 'Brand-New-2026', confirm_password: 'Brand-New-2026' });
    const late = await you.submit(step2, '/reset', { code, password: 'Brand-New-2026', confirm_password: 'Brand-New-2026' });
    expect(alert(late)).toBe('验证码不正确或已失效，请重新获取。');

    const nobody = await you.submit(await you.visit(`${server.url}/reset`), '/reset/code', { contact: '13900009999' });
    expect(status(nobody)).toBe(200);
    expect(html(nobody)).toContain('如果该号码或邮箱已注册');
    expect(await lastMessage('13900009999')).toBeUndefined();
    expect(server.errors).toEqual([]);
  });
});
