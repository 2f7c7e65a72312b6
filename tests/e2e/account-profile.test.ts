import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createRemoteJWKSet, jwtVerify } from 'jose';
import { createAccount } from '../../src/accounts/accounts.ts';
import { PASSWORD_POLICIES } from '../../src/accounts/password-policy.ts';
import { listWindows } from '../../src/windows/windows.ts';
import { browser, type Visit } from '../helpers/browser.ts';
import { startTestServer, type TestServer } from '../helpers/server.ts';
import { windowSite, type WindowSite } from '../helpers/window-site.ts';
import { eventually } from '../helpers/wait.ts';

// The account page's profile: name, password (other devices signed out) and a new
// phone number or email proven by a code.

let server: TestServer;
let a: WindowSite;
const password = 'Xinzheng-Yellow-Emperor-1';
const html = (v: Visit) => (v.kind === 'page' ? v.html : `redirect to ${v.to.href}`);
const alert = (v: Visit) => (v.kind === 'page' ? /role="alert">([^<]*)</.exec(v.html)?.[1] : undefined);
const status = (v: Visit) => (v.kind === 'page' ? v.status : 0);
const notice = (v: Visit) => (v.kind === 'page' ? /<div role="status"><p class="notice">([^<]*)<\/p><\/div>/.exec(v.html)?.[1] : undefined);

beforeAll(async () => {
  server = await startTestServer();
  const windows = await listWindows(server.db);
  a = await windowSite(server, { windowId: windows[11]!.id, name: 'a', backchannel: true });
  await createAccount(server.db, { username: 'yang.fan', displayName: '杨帆', phone: '13544445555', password }, PASSWORD_POLICIES.mlps);
  await createAccount(server.db, { username: 'other.one', displayName: '别人', phone: '13566667777', password }, PASSWORD_POLICIES.mlps);
});

afterAll(async () => {
  await a?.close();
  await server?.close();
});

describe('the profile on the account page', () => {
  it('renames, changes the password (signing out the other device), and changes the email with a code', async () => {
    const laptop = browser();
    const phone = browser();
    await a.signIn(laptop, { identifier: 'yang.fan', password });
    const onPhone = await a.signIn(phone, { identifier: 'yang.fan', password });

    const renamed = await laptop.submit(await laptop.visit(`${server.url}/account`), '/account/profile', { name: '杨远帆' });
    expect(html(renamed)).toContain('value="杨远帆"');
    expect(notice(renamed)).toBe('姓名已保存。');
    expect((await a.signIn(laptop, undefined)).claims.name).toBe('杨远帆');

    const page = await laptop.visit(`${server.url}/account`);
    const wrong = await laptop.submit(page, '/account/password', { password: 'Not-It-12345', new_password: 'Brand-New-Sail-2026', confirm_password: 'Brand-New-Sail-2026' });
    expect(status(wrong)).toBe(401);
    const weak = await laptop.submit(wrong, '/account/password', { password, new_password: 'password1', confirm_password: 'password1' });
    expect(alert(weak)).toBe('密码：是最常见的密码之一，不能使用。');
    const before = a.logoutTokens.length;
    const changed = await laptop.submit(weak, '/account/password', { password, new_password: 'Brand-New-Sail-2026', confirm_password: 'Brand-New-Sail-2026' });
    expect(notice(changed)).toBe('密码已修改，其他设备上的登录已退出。');
    // Reloading the page it returned to changes nothing again.
    expect(changed.kind === 'page' && changed.url.pathname + changed.url.search).toBe('/account?notice=password');
    await eventually(() => a.logoutTokens.length > before);
    const { payload } = await jwtVerify(a.logoutTokens[before]!, createRemoteJWKSet(new URL(`${server.url}/jwks`)), { issuer: server.url, audience: a.clientId });
    expect(payload.sid).toBe(onPhone.claims.sid);
    expect(a.logoutTokens.length).toBe(before + 1);
    expect((await a.signIn(laptop, undefined)).askedForPassword).toBe(false);

    const sent = await laptop.submit(changed, '/account/contact/code', { contact: 'Yang.Fan@Example.cn' });
    const code = /(\d{6})/.exec((await server.db('outbox').where({ destination: 'yang.fan@example.cn' }).orderBy('id', 'desc').first())?.body ?? '')![1]!;
    const bad = await laptop.submit(sent, '/account/contact', { code: code === '000000' ? '111111' : '000000' });
    expect(alert(bad)).toBe('验证码不正确或已失效，请重新获取。');
    const contactChanged = await laptop.submit(bad, '/account/contact', { code });
    expect(notice(contactChanged)).toBe('手机号或电子邮箱已更换。');
    expect(html(contactChanged)).toContain('<p class="muted">135****5555 · yang.fan@example.cn</p>');
    expect(await server.db('accounts').where({ username: 'yang.fan' }).first()).toMatchObject({ email: 'yang.fan@example.cn', email_verified: true, phone_verified: false, display_name: '杨远帆' });
  });

  it('sends no code for a number another account uses, and the page looks the same', async () => {
    const you = browser();
    await a.signIn(you, { identifier: 'other.one', password });
    const sent = await you.submit(await you.visit(`${server.url}/account`), '/account/contact/code', { contact: '13544445555' });
    expect(status(sent)).toBe(200);
    expect(html(sent)).toContain('验证码已发送至');
    expect(await server.db('outbox').where({ destination: '13544445555' }).first()).toBeUndefined();
    expect(server.errors).toEqual([]);
  });
});
