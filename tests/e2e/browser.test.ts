import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Browser } from 'playwright-core';
import { chinesePage, hasChromium, launchChromium } from '../helpers/chromium.ts';
import { DEMO_ACCOUNT, DEMO_ENTERPRISES } from '../../src/demo/seed.ts';
import { startTestServer, type TestServer } from '../helpers/server.ts';

// The pages in a real browser (Debian's chromium, which .ci/run installs): the demo's
// single sign-on and single logout, clicked through as a person would. Where chromium
// is not installed this file is skipped, so `npm test` passes on a bare machine.


let server: TestServer;
let browser: Browser;

beforeAll(async () => {
  if (!hasChromium) return;
  server = await startTestServer({ DEMO: 'true' });
  browser = await launchChromium();
});

afterAll(async () => {
  await browser?.close();
  await server?.close();
});

describe.skipIf(!hasChromium)('in a browser', () => {
  it('signs in once at Zhengzhou, is signed in at Luoyang on arrival, and signs out of both from Luoyang', async () => {
    const page = await chinesePage(browser);
    await page.goto(`${server.url}/demo/zhengzhou/`);
    await page.getByRole('link', { name: '通过统一身份认证登录' }).click();

    await expect.poll(() => page.locator('.window').innerText()).toContain('郑州市综合窗口平台');
    expect(await page.locator('header .brand').innerText()).toContain('河南省中小企业公共服务平台网络');
    await page.fill('#identifier', DEMO_ACCOUNT.username);
    await page.fill('#password', 'not-the-password');
    await page.click('button[type=submit]:not(.secondary)');
    expect(await page.getByRole('alert').innerText()).toBe('账号或密码不正确。');
    await page.fill('#password', DEMO_ACCOUNT.password);
    await page.click('button[type=submit]:not(.secondary)');

    // Two memberships: the person chooses whom to act for.
    await page.getByText(DEMO_ENTERPRISES[1].name).click();
    await page.getByRole('button', { name: '继续' }).click();
    await page.waitForURL(`${server.url}/demo/zhengzhou/`);
    expect(await page.locator('main').innerText()).toContain(DEMO_ACCOUNT.displayName);
    expect(await page.locator('main').innerText()).toContain(DEMO_ENTERPRISES[1].name);

    // Signed in on arrival: the site asks the provider once (prompt=none).
    await page.goto(`${server.url}/demo/luoyang/`);
    await page.waitForURL(`${server.url}/demo/luoyang/`);
    expect(await page.locator('main').innerText()).toContain(DEMO_ACCOUNT.displayName);
    expect(await page.locator('main').innerText()).toContain(DEMO_ENTERPRISES[1].name);

    // The demo site sends its ID token as id_token_hint: no confirmation to click.
    await page.getByRole('link', { name: '退出登录（所有窗口同时退出）' }).click();
    await page.waitForURL(`${server.url}/demo/luoyang/`);
    expect(await page.locator('main').innerText()).toContain('未登录');

    await expect.poll(async () => {
      await page.goto(`${server.url}/demo/zhengzhou/`);
      return page.locator('main').innerText();
    }).toContain('未登录');
    expect(server.errors).toEqual([]);
  });

  it('switches language after a failed sign-in, to the same sign-in in English', async () => {
    const page = await chinesePage(browser);
    await page.goto(`${server.url}/demo/zhengzhou/`);
    await page.getByRole('link', { name: '通过统一身份认证登录' }).click();
    await page.fill('#identifier', DEMO_ACCOUNT.username);
    await page.fill('#password', 'not-the-password');
    await page.click('button[type=submit]:not(.secondary)');
    expect(await page.getByRole('alert').innerText()).toBe('账号或密码不正确。');
    await page.getByRole('link', { name: 'English' }).click();
    await expect.poll(() => page.locator('html').getAttribute('lang')).toBe('en');
    expect(await page.locator('h1').innerText()).toBe('Sign in');
    expect(await page.locator('.window').innerText()).toContain('You are signing in from this window platform');
    await page.fill('#identifier', DEMO_ACCOUNT.username);
    await page.fill('#password', DEMO_ACCOUNT.password);
    await page.click('button[type=submit]:not(.secondary)');
    // The English form signs in like the Chinese one: on to the choice of whom to act for.
    await page.locator('form[action$="/select"]').waitFor();
    await page.close();
  });

  it('lays the account page out beside a side navigation on a wide screen, and stacked on a phone', async () => {
    const page = await chinesePage(browser, { viewport: { width: 1280, height: 900 } });
    await page.goto(`${server.url}/account`);
    await page.fill('#identifier', DEMO_ACCOUNT.username);
    await page.fill('#password', DEMO_ACCOUNT.password);
    await page.click('button[type=submit]:not(.secondary)');
    await expect.poll(() => page.locator('h1').innerText()).toBe('我的账号');
    const nav = page.getByRole('navigation');
    const box = async (selector: string) => (await page.locator(selector).boundingBox())!;
    const [wideNav, wideMain, wideBox] = [await box('.account-nav'), await box('.account-main'), await box('main')];
    expect(wideBox.width).toBeGreaterThan(700);
    expect(wideNav.x + wideNav.width).toBeLessThanOrEqual(wideMain.x);
    await nav.getByRole('link', { name: '安全设置' }).click();
    await expect.poll(() => page.url()).toMatch(/#security$/);
    // The notice of a change, read out where it happens.
    await page.fill('#name', DEMO_ACCOUNT.displayName);
    await page.getByRole('button', { name: '保存姓名' }).click();
    await expect.poll(() => page.getByRole('status').innerText()).toBe('姓名已保存。');

    await page.setViewportSize({ width: 390, height: 844 });
    const [phoneNav, phoneMain] = [await box('.account-nav'), await box('.account-main')];
    expect(phoneNav.y + phoneNav.height).toBeLessThanOrEqual(phoneMain.y);
    expect(await page.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(390);
    await page.close();
    expect(server.errors).toEqual([]);
  });
});
