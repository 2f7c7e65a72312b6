import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createAccount } from '../../src/accounts/accounts.ts';
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
