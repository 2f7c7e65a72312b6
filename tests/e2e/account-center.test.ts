import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createAccount } from '../../src/accounts/accounts.ts';
import { PASSWORD_POLICIES } from '../../src/accounts/password-policy.ts';
import { createEnterprise } from '../../src/enterprises/enterprises.ts';
import { addMember } from '../../src/enterprises/memberships.ts';
import { completeUscc } from '../../src/enterprises/uscc.ts';
import { listWindows } from '../../src/windows/windows.ts';
import { generate } from 'otplib';
import { browser, formOf, type Visit } from '../helpers/browser.ts';
import { startTestServer, type TestServer } from '../helpers/server.ts';
import { windowSite, type WindowSite } from '../helpers/window-site.ts';

// The account center: a signed-in person registers an enterprise and switches whom
// the session acts for; windows see the switch.

let server: TestServer;
let site: WindowSite;
const password = 'Songshan-Shaolin-495';
const html = (v: Visit) => (v.kind === 'page' ? v.html : `redirect to ${v.to.href}`);
const notice = (v: Visit) => (v.kind === 'page' ? /<div role="status">(?:<p class="notice">([^<]*)<\/p>)?<\/div>/.exec(v.html)?.[1] : undefined);
const status = (v: Visit) => (v.kind === 'page' ? v.status : 0);

beforeAll(async () => {
  server = await startTestServer();
  const windows = await listWindows(server.db);
  site = await windowSite(server, { windowId: windows.find((w) => w.region === '410100')!.id, name: 'zz' });
  const person = await createAccount(server.db, { username: 'wu.gang', displayName: '吴刚', phone: '13512345678', password }, PASSWORD_POLICIES.mlps);
  const shop = await createEnterprise(server.db, { uscc: completeUscc('9241010000000555'), name: '吴记烩面馆', type: 'individual_business', region: '410100', status: 'verified' });
  await addMember(server.db, { enterpriseId: shop.id, accountId: person.id, role: 'legal_rep' });
});

afterAll(async () => {
  await server?.close();
});

describe('the account center', () => {
  it('asks whoever is not signed in to sign in, through the provider', async () => {
    const you = browser();
    const page = await you.visit(`${server.url}/account`);
    expect(html(page)).toContain('name="password"');
    const account = await you.submit(page, '/login', { identifier: 'wu.gang', password });
    expect(html(account)).toContain('吴刚');
    expect(html(account)).toContain('135****5678');
    expect(html(account)).not.toContain('13512345678');
    expect(html(account)).toContain('吴记烩面馆');
  });

  it('registers an enterprise for a signed-in person, pending, with them as legal representative, and switches to it', async () => {
    const you = browser();
    const first = await site.signIn(you, { identifier: 'wu.gang', password }, { scope: 'openid enterprise' });
    expect(first.claims.enterprise).toMatchObject({ name: '吴记烩面馆' });

    const form = await you.visit(`${server.url}/account/enterprises/new`);
    const bad = await you.submit(form, '/account/enterprises', { uscc: '91410000170001401E', name: '吴氏餐饮有限公司', type: 'enterprise', region: '410100' });
    expect(bad.kind === 'page' && bad.status).toBe(400);
    expect(html(bad)).toContain('统一社会信用代码：“91410000170001401E” 不是有效的统一社会信用代码：校验码（第 18 位）应为 D。');
    expect(html(bad)).toContain('value="吴氏餐饮有限公司"');

    const uscc = completeUscc('9141010000000556');
    const account = await you.submit(bad, '/account/enterprises', { uscc, name: '吴氏餐饮有限公司', type: 'enterprise', region: '410100', industry: '餐饮' });
    expect(html(account)).toContain('吴氏餐饮有限公司');
    const registered = await server.db('enterprises').where({ uscc }).first();
    expect(registered).toMatchObject({ status: 'pending', name: '吴氏餐饮有限公司' });
    expect(await server.db('memberships').where({ enterprise_id: registered.id }).first()).toMatchObject({ role: 'legal_rep' });

    const switched = await you.submit(account, '/account/acting', { enterprise: registered.id });
    expect(html(switched)).toMatch(new RegExp(`value="${registered.id}" checked`));
    const next = await site.signIn(you, undefined, { scope: 'openid enterprise' });
    expect(next.askedForPassword).toBe(false);
    expect(next.claims.enterprise).toMatchObject({ id: registered.id, uscc, status: 'pending', role: 'legal_rep' });
  });

  it('lets the legal representative add and remove operators, and shows the page to nobody else', async () => {
    await createAccount(server.db, { username: 'ma.li', displayName: '马丽', phone: '13611112222', password }, PASSWORD_POLICIES.mlps);
    const shop = (await server.db('enterprises').where({ name: '吴记烩面馆' }).first())!;
    const owner = browser();
    await site.signIn(owner, { identifier: 'wu.gang', password });
    const page = await owner.visit(`${server.url}/account/enterprises/${shop.id}`);
    expect(html(page)).toContain('吴刚');
    const unknown = await owner.submit(page, '/operators', { identifier: '13600000000' });
    expect(unknown.kind === 'page' && unknown.status).toBe(400);
    const added = await owner.submit(unknown, '/operators', { identifier: '136 1111 2222' });
    expect(html(added)).toContain('马丽');
    const ma = (await server.db('accounts').where({ username: 'ma.li' }).first())!;
    expect(await server.db('memberships').where({ enterprise_id: shop.id, account_id: ma.id }).first()).toMatchObject({ role: 'operator' });

    // The operator acts for the shop, but cannot manage its members.
    const operator = browser();
    const signedIn = await site.signIn(operator, { identifier: 'ma.li', password }, { scope: 'openid enterprise' });
    expect(signedIn.claims.enterprise).toMatchObject({ id: shop.id, role: 'operator' });
    const notFound = await operator.visit(`${server.url}/account/enterprises/${shop.id}`);
    expect(notFound.kind === 'page' && notFound.status).toBe(404);

    const removed = await owner.submit(added, `/operators/${ma.id}/remove`);
    expect(html(removed)).not.toContain('马丽');
    expect(await server.db('memberships').where({ enterprise_id: shop.id, account_id: ma.id }).first()).toBeUndefined();
  });

  it('refuses forms without the CSRF token, and pages to nobody signed in', async () => {
    const you = browser();
    await site.signIn(you, { identifier: 'wu.gang', password });
    const account = await you.visit(`${server.url}/account`);
    const forged = await you.submit(account, '/account/acting', { enterprise: '', csrf: 'forged' });
    expect(forged.kind === 'page' && forged.status).toBe(403);
    const stranger = await browser().visit(`${server.url}/account/enterprises/new`);
    expect(html(stranger)).toContain('name="password"');
    expect(server.errors).toEqual([]);
  });

  it('shows one page of sections, with times in the operator\'s zone and a site\'s scopes as words', async () => {
    const person = await createAccount(server.db, { username: 'qian.li', displayName: '钱立', phone: '13711112222', password }, PASSWORD_POLICIES.mlps);
    const shop = (await server.db('enterprises').where({ name: '吴记烩面馆' }).first())!;
    await addMember(server.db, { enterpriseId: shop.id, accountId: person.id, role: 'operator' });
    const you = browser();
    await site.signIn(you, { identifier: 'qian.li', password }, { scope: 'openid profile email phone enterprise' });
    const page = await you.visit(`${server.url}/account`);
    for (const id of ['me', 'security', 'acting', 'devices', 'sites']) {
      expect(html(page)).toContain(`<section id="${id}"`);
      expect(html(page)).toContain(`<a href="#${id}">`);
    }
    expect(html(page)).toContain('<main class="wide">');
    // A phone and no email: no separator left hanging.
    expect(html(page)).toContain('<p class="muted">137****2222</p>');
    expect(html(page)).toMatch(/登录于 \d{4}-\d{2}-\d{2} \d{2}:\d{2} 北京时间/);
    expect(html(page)).not.toContain('UTC');
    expect(html(page)).toContain('姓名、邮箱、手机号、企业身份');
    expect(html(page)).not.toMatch(/openid|profile email/);
    // The identity this session acts for is checked, and switching is not the page's main action.
    expect(html(page)).toMatch(/<input type="radio" name="enterprise" value="[^"]+" checked> <strong>吴记烩面馆<\/strong> <span class="tag">当前<\/span>/);
    expect(html(page)).toContain('<button type="submit" class="secondary">切换</button>');
    expect(notice(page)).toBeUndefined();
  });

  it('confirms every change with a notice on the page it returns to', async () => {
    await createAccount(server.db, { username: 'zhou.min', displayName: '周敏', email: 'zhou.min@example.cn', password }, PASSWORD_POLICIES.mlps);
    const laptop = browser();
    const phone = browser();
    await site.signIn(laptop, { identifier: 'zhou.min', password }, { scope: 'openid email' });
    await site.signIn(phone, { identifier: 'zhou.min', password });
    const page = await laptop.visit(`${server.url}/account`);
    expect(html(page)).toContain('<p class="muted">zhou.min@example.cn</p>');
    // No enterprise: acting as oneself is the current identity.
    expect(html(page)).toMatch(/value="" required checked> 以个人身份 <span class="tag">当前<\/span>/);

    const renamed = await laptop.submit(page, '/account/profile', { name: '周新敏' });
    expect(renamed.kind === 'page' && renamed.url.search).toBe('?notice=name');
    expect(notice(renamed)).toBe('姓名已保存。');
    const switched = await laptop.submit(renamed, '/account/acting', { enterprise: '' });
    expect(notice(switched)).toBe('办事身份已切换。');
    const other = html(switched).split('<li>').find((item) => item.includes('/end"') && !item.includes('当前设备'));
    const ended = await laptop.submit(switched, /action="([^"]+\/end)"/.exec(other!)![1]!);
    expect(notice(ended)).toBe('该设备已退出登录。');
    const grant = html(ended).split('<li>').find((item) => item.includes('/revoke"'))!;
    expect(grant).toContain('邮箱');
    const revoked = await laptop.submit(ended, /action="([^"]+\/revoke)"/.exec(grant)![1]!);
    expect(notice(revoked)).toBe('已撤销该网站的授权。');

    const enrol = await laptop.visit(`${server.url}/account/mfa`);
    const secret = /<code>([A-Z2-7]+)<\/code>/.exec(html(enrol))![1]!;
    const codes = await laptop.submit(enrol, '/account/mfa', { password, code: await generate({ secret }) });
    const back = /href="(\/account\?notice=[^"]+)"/.exec(html(codes))![1]!;
    const on = await laptop.visit(`${server.url}${back}`);
    expect(notice(on)).toBe('两步验证已启用。');
    const off = await laptop.submit(on, '/account/mfa/remove', { password });
    expect(notice(off)).toBe('两步验证已关闭。');
    // A refused change says why, and confirms nothing.
    const refused = await laptop.submit(off, '/account/password', { password: 'Not-The-Password-1', new_password: 'Another-Long-Pass-7', confirm_password: 'Another-Long-Pass-7' });
    expect(status(refused)).toBe(401);
    expect(notice(refused)).toBeUndefined();
    expect(server.errors).toEqual([]);
  });

  it('shows only the notices it knows, whatever the query says', async () => {
    const you = browser();
    await site.signIn(you, { identifier: 'wu.gang', password });
    for (const value of ['constructor', '__proto__', 'toString', 'hasOwnProperty', '<script>alert(1)</script>', 'noticeNameSaved', 'x'.repeat(5000), 'name\u0000', ' name', 'NAME', '']) {
      const page = await you.visit(`${server.url}/account?notice=${encodeURIComponent(value)}`);
      expect(status(page), JSON.stringify(value.slice(0, 20))).toBe(200);
      expect(notice(page)).toBeUndefined();
      expect(html(page)).not.toContain('<script>alert');
    }
    expect(notice(await you.visit(`${server.url}/account?notice=name&notice=grant`))).toBeUndefined();
    expect(notice(await you.visit(`${server.url}/account?notice=grant`))).toBe('已撤销该网站的授权。');
    expect(server.errors).toEqual([]);
  });

  it('changes nothing for a form without its CSRF token, or for another person\'s device or site', async () => {
    await createAccount(server.db, { username: 'li.na', displayName: '李娜', password }, PASSWORD_POLICIES.mlps);
    const her = browser();
    await site.signIn(her, { identifier: 'li.na', password }, { scope: 'openid email' });
    const herPage = await her.visit(`${server.url}/account`);
    const herSession = /action="(\/account\/sessions\/[^"]+\/end)"/.exec(html(herPage))![1]!;
    const herGrant = /action="(\/account\/grants\/[^"]+\/revoke)"/.exec(html(herPage))![1]!;

    const you = browser();
    await site.signIn(you, { identifier: 'wu.gang', password });
    const page = await you.visit(`${server.url}/account`);
    const csrf = formOf(html(page), '/account/profile').fields.csrf!;
    const post = (path: string, fields: Record<string, string>) =>
      you.fetch(`${server.url}${path}`, { method: 'POST', redirect: 'manual', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams(fields) });
    for (const path of ['/account/profile', '/account/acting', '/account/password', '/account/mfa/remove', '/account/sessions/end-all', herSession, herGrant]) {
      expect((await post(path, { name: '伪造', enterprise: '', password })).status, path).toBe(403);
    }
    expect((await server.db('accounts').where({ username: 'wu.gang' }).first()).display_name).toBe('吴刚');
    // Her grant is not his to revoke; her session is not his to end.
    expect((await post(herGrant, { csrf })).status).toBe(404);
    const ended = await post(herSession, { csrf });
    expect(ended.status).toBe(303);
    expect(html(await her.visit(`${server.url}/account`))).toContain('李娜');
    expect(html(await her.visit(`${server.url}/account`))).toContain(herGrant);
    expect(server.errors).toEqual([]);
  });
});
