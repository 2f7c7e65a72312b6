import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createAccount } from '../../src/accounts/accounts.ts';
import { PASSWORD_POLICIES } from '../../src/accounts/password-policy.ts';
import { createEnterprise } from '../../src/enterprises/enterprises.ts';
import { addMember } from '../../src/enterprises/memberships.ts';
import { completeUscc } from '../../src/enterprises/uscc.ts';
import { listWindows } from '../../src/windows/windows.ts';
import { browser, type Visit } from '../helpers/browser.ts';
import { startTestServer, type TestServer } from '../helpers/server.ts';
import { windowSite, type WindowSite } from '../helpers/window-site.ts';

// The account center: a signed-in person registers an enterprise and switches whom
// the session acts for; windows see the switch.

let server: TestServer;
let site: WindowSite;
const password = 'Songshan-Shaolin-495';
const html = (v: Visit) => (v.kind === 'page' ? v.html : `redirect to ${v.to.href}`);

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
});
