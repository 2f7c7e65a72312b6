import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generate } from 'otplib';
import { createAccount } from '../../src/accounts/accounts.ts';
import { grantRole } from '../../src/accounts/admin-roles.ts';
import { PASSWORD_POLICIES } from '../../src/accounts/password-policy.ts';
import { listWindows } from '../../src/windows/windows.ts';
import { browser, type Browser, type Visit } from '../helpers/browser.ts';
import { startTestServer, type TestServer } from '../helpers/server.ts';
import { windowSite, type WindowSite } from '../helpers/window-site.ts';

// The pages' language: a choice made on the page (?lang=), then the window's ui_locales,
// then the remembered choice (cookie), then the browser's Accept-Language, else Chinese.

let server: TestServer;
let site: WindowSite;
const password = 'Baima-Temple-Luoyang-68';

beforeAll(async () => {
  server = await startTestServer();
  site = await windowSite(server, { windowId: (await listWindows(server.db))[1]!.id, name: 'languages' });
  await createAccount(server.db, { username: 'lang.person', displayName: '语言', password }, PASSWORD_POLICIES.mlps);
  const admin = await createAccount(server.db, { username: 'lang.admin', displayName: '管理', password }, PASSWORD_POLICIES.mlps);
  await grantRole(server.db, { accountId: admin.id, role: 'audit_admin' });
});
afterAll(() => server?.close());

const langOfPage = (v: Visit) => (v.kind === 'page' ? /<html lang="([^"]+)">/.exec(v.html)?.[1] : `redirect to ${v.to.href}`);

// The login page of a new sign-in, as this browser sees it.
async function loginPage(you: Browser, params: Record<string, string> = {}) {
  const { visit } = await site.authorize(you, params);
  expect(visit.kind === 'page' && visit.html).toContain('name="password"');
  return visit as Extract<Visit, { kind: 'page' }>;
}

// The same page fetched again with an Accept-Language header.
async function withAcceptLanguage(you: Browser, page: Extract<Visit, { kind: 'page' }>, header: string) {
  const res = await you.fetch(page.url, { headers: { 'accept-language': header } });
  expect(res.status).toBe(200);
  return /<html lang="([^"]+)">/.exec(await res.text())?.[1];
}

describe('the language of the pages', () => {
  it('says which languages there are in discovery', async () => {
    const discovery = await (await fetch(`${server.url}/.well-known/openid-configuration`)).json();
    expect(discovery.ui_locales_supported).toEqual(['zh-CN', 'en']);
  });

  it('follows the window\'s ui_locales, its first language that the pages have, through the whole sign-in', async () => {
    const you = browser();
    const page = await loginPage(you, { ui_locales: 'en' });
    expect(langOfPage(page)).toBe('en');
    expect(page.html).toContain('Sign in');
    // A wrong password: the answer is a page of the same sign-in, in the same language.
    const refused = await you.submit(page, '/login', { identifier: 'lang.person', password: 'Wrong-password-1' });
    expect(langOfPage(refused)).toBe('en');

    expect(langOfPage(await loginPage(browser(), { ui_locales: 'fr-FR en-GB zh-CN' }))).toBe('en');
    expect(langOfPage(await loginPage(browser(), { ui_locales: 'zh-Hans-CN en' }))).toBe('zh-CN');
    expect(langOfPage(await loginPage(browser(), { ui_locales: 'fr de' }))).toBe('zh-CN');
  });

  it('puts ui_locales before the remembered choice, and a choice made on the page before both', async () => {
    const you = browser();
    expect((await you.fetch(`${server.url}/?lang=zh-CN`)).status).toBe(200);
    const page = await loginPage(you, { ui_locales: 'en' });
    expect(langOfPage(page)).toBe('en');
    const switched = await you.visit(new URL('?lang=zh-CN', page.url));
    expect(langOfPage(switched)).toBe('zh-CN');
    // The switch holds for the rest of this sign-in, over the window's ui_locales ...
    expect(langOfPage(await you.visit(page.url))).toBe('zh-CN');
    // ... and not for the next one, where the window's ui_locales leads again.
    expect(langOfPage(await loginPage(you, { ui_locales: 'en' }))).toBe('en');
  });

  it('reads Accept-Language when neither the window nor the person chose', async () => {
    const you = browser();
    const page = await loginPage(you);
    expect(langOfPage(page)).toBe('zh-CN');
    expect(await withAcceptLanguage(you, page, 'en-US,en;q=0.9')).toBe('en');
    expect(await withAcceptLanguage(you, page, 'fr-FR, de;q=0.8')).toBe('zh-CN');
    expect(await withAcceptLanguage(you, page, 'en;q=0.3, zh-CN;q=0.9')).toBe('zh-CN');
    // A remembered choice outweighs the browser's.
    await you.fetch(`${server.url}/?lang=zh-CN`);
    expect(await withAcceptLanguage(you, page, 'en')).toBe('zh-CN');
  });

  it('takes any string as ui_locales or Accept-Language without failing, and falls back to Chinese', async () => {
    for (const value of ['', ' ', '-', 'en\u0000', '\u202Een', 'x'.repeat(5000), '<script>alert(1)</script>', '*', 'constructor', '__proto__ toString']) {
      const you = browser();
      const { visit } = await site.authorize(you, { ui_locales: value });
      expect(visit.kind === 'page' ? visit.status : 0, JSON.stringify(value.slice(0, 20))).toBeLessThan(500);
      if (visit.kind === 'page' && visit.status === 200) expect(langOfPage(visit)).toBe('zh-CN');
    }
    const you = browser();
    const page = await loginPage(you);
    for (const header of ['*', ';;;', 'en;q=abc', 'x'.repeat(4000), 'zh-CN;q=0']) {
      expect(await withAcceptLanguage(you, page, header)).toMatch(/^(zh-CN|en)$/);
    }
    expect(server.errors).toEqual([]);
  });
});

// The language link of a page, as the browser would follow it.
const switchLink = (v: Visit) => {
  const href = v.kind === 'page' ? /<a href="([^"]*)" lang="[^"]*">/.exec(v.html)?.[1] : undefined;
  return href?.replace(/&#x2F;/g, '/').replace(/&amp;/g, '&');
};
const html = (v: Visit) => (v.kind === 'page' ? v.html : `redirect to ${v.to.href}`);

// Follows the language link of a Chinese page that answered a post: a GET page of the same flow, in English.
async function switchFrom(you: Browser, page: Visit, path: string, shows: string) {
  const href = switchLink(page)!;
  expect(href).toBe(`${path}${path.includes('?') ? '&' : '?'}lang=en`);
  const switched = await you.visit(new URL(href, server.url));
  expect(switched.kind === 'page' && switched.status, href).toBe(200);
  expect(langOfPage(switched)).toBe('en');
  expect(html(switched)).toContain(shows);
  // Back to Chinese for the next page of the test, on the same page (a switch during a
  // sign-in holds for the rest of it).
  await you.fetch(new URL(href.replace(/lang=en$/, 'lang=zh-CN'), server.url).href);
  return switched;
}

describe('the language switch on a page that answers a post', () => {
  it('leads from the sign-in\'s pages to the interaction\'s page, which shows the step it is at', async () => {
    const you = browser();
    const login = await loginPage(you);
    const uid = /\/interaction\/([^/]+)\/login/.exec(login.html)![1]!;
    const refused = await you.submit(login, '/login', { identifier: 'lang.person', password: 'Wrong-password-1' });
    expect(refused.kind === 'page' && refused.status).toBe(401);
    await switchFrom(you, refused, `/interaction/${uid}`, 'name="password"');

    // An administrator's enrolment, during the sign-in.
    const admin = browser();
    const adminLogin = await loginPage(admin);
    const adminUid = /\/interaction\/([^/]+)\/login/.exec(adminLogin.html)![1]!;
    const enrol = await admin.submit(adminLogin, '/login', { identifier: 'lang.admin', password });
    expect(html(enrol)).toContain('/mfa-enrol');
    const wrongCode = await admin.submit(enrol, '/mfa-enrol', { password, code: '000000' });
    expect(wrongCode.kind === 'page' && wrongCode.status).toBe(400);
    const english = await switchFrom(admin, wrongCode, `/interaction/${adminUid}`, 'Turn on two-step verification');
    const secret = /<code>([A-Z2-7]+)<\/code>/.exec(html(english))![1]!;
    const codes = await admin.submit(english, '/mfa-enrol', { password, code: await generate({ secret }) }, site.redirectUri);
    // Leaving the recovery codes would lose them: that page has no language link.
    expect(switchLink(codes)).toBeUndefined();
    expect((await admin.submit(codes, '/enrolled', {}, site.redirectUri)).kind).toBe('redirect');

    // The code step of the next sign-in, and its answer to a wrong code.
    const next = browser();
    const nextLogin = await loginPage(next);
    const nextUid = /\/interaction\/([^/]+)\/login/.exec(nextLogin.html)![1]!;
    const asked = await next.submit(nextLogin, '/login', { identifier: 'lang.admin', password });
    await switchFrom(next, asked, `/interaction/${nextUid}`, 'action="/interaction/' + nextUid + '/mfa"');
    const wrong = await next.submit(asked, '/mfa', { code: 'abc' });
    expect(wrong.kind === 'page' && wrong.status).toBe(401);
    await switchFrom(next, wrong, `/interaction/${nextUid}`, 'Code or recovery code');
  });

  it('leads from registration and reset to their first page', async () => {
    const you = browser();
    const login = await loginPage(you);
    const uid = /\/interaction\/([^/]+)\/login/.exec(login.html)![1]!;
    const register = await you.visit(`${server.url}/register?interaction=${uid}`);
    const badContact = await you.submit(register, '/register/code', { contact: 'not a contact' });
    await switchFrom(you, badContact, `/register?interaction=${uid}`, 'Create an account');
    const sent = await you.submit(badContact, '/register/code', { contact: 'lang.new@example.cn' });
    const differ = await you.submit(sent, '/register', { code: '123456', username: 'lang.new', name: '新', password, confirm_password: 'other' });
    await switchFrom(you, differ, `/register?interaction=${uid}`, 'Create an account');

    const plain = browser();
    const reset = await plain.visit(`${server.url}/reset`);
    const resetSent = await plain.submit(reset, '/reset/code', { contact: 'nobody@example.cn' });
    await switchFrom(plain, resetSent, '/reset', 'Reset your password');
    const own = await plain.visit(`${server.url}/register`);
    await switchFrom(plain, await plain.submit(own, '/register/code', { contact: 'x' }), '/register', 'Create an account');
  });

  it('leads from the account centre\'s answers to its pages', async () => {
    const you = browser();
    await site.signIn(you, { identifier: 'lang.person', password });
    const account = await you.visit(`${server.url}/account`);
    const refused = await you.submit(account, '/account/password', { password: 'Not-It-1234', new_password: 'Whatever-Long-1', confirm_password: 'Whatever-Long-1' });
    expect(refused.kind === 'page' && refused.status).toBe(401);
    await switchFrom(you, refused, '/account', 'My account');
    const contact = await you.submit(account, '/account/contact/code', { contact: 'lang.person@example.cn' });
    await switchFrom(you, contact, '/account', 'My account');
    const enterprise = await you.submit(await you.visit(`${server.url}/account/enterprises/new?lang=zh-CN`), '/account/enterprises', { name: '', type: 'enterprise', region: 'x' });
    expect(enterprise.kind === 'page' && enterprise.status).toBe(400);
    await switchFrom(you, enterprise, '/account/enterprises/new', 'Register an enterprise');
    const enrol = await you.visit(`${server.url}/account/mfa?lang=zh-CN`);
    const wrongCode = await you.submit(enrol, '/account/mfa', { password, code: '000000' });
    await switchFrom(you, wrongCode, '/account/mfa', 'Turn on two-step verification');
  });

  it('never leads to a path taken from the request', async () => {
    const you = browser();
    let checked = 0;
    for (const path of ['//evil.example/x', '/%2F%2Fevil.example', '/\\evil.example/x', '/interaction/%2F%2Fevil.example/login']) {
      const res = await you.fetch(`${server.url}${path}`, { method: 'POST', redirect: 'manual', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: 'a=1' });
      const page: Visit = { kind: 'page', url: new URL(server.url), status: res.status, html: await res.text() };
      if (!switchLink(page)) continue;
      checked++;
      expect(switchLink(page), path).toMatch(/^\/(interaction\/[A-Za-z0-9_-]+)?\?lang=en$/);
    }
    expect(checked).toBeGreaterThan(0);
    expect(server.errors).toEqual([]);
  });
});
