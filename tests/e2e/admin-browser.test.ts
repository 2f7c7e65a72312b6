import fs from 'node:fs';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Browser, Page } from 'playwright-core';
import { chinesePage, hasChromium, launchChromium } from '../helpers/chromium.ts';
import * as oidc from 'openid-client';
import { generate } from 'otplib';
import { createAccount } from '../../src/accounts/accounts.ts';
import { PASSWORD_POLICIES } from '../../src/accounts/password-policy.ts';
import { createClient } from '../../src/windows/clients.ts';
import { listWindows, type Window } from '../../src/windows/windows.ts';
import { makeAdmin, type TestAdmin } from '../helpers/admin.ts';
import { browser as httpBrowser } from '../helpers/browser.ts';
import { relyingParty } from '../helpers/window-site.ts';
import { startTestServer, type TestServer } from '../helpers/server.ts';

// The admin console in a real browser (Debian's chromium, as in browser.test.ts): a
// window administrator signs in with password and TOTP, registers a client for their
// window, rotates its secret at once, and a real relying party then signs a person in
// with the new secret while the old one is refused. The client list is saved as a
// screenshot (artifacts/admin-client-list.png) for the test run. On a phone's width
// (390 px) the page does not scroll sideways (the table scrolls in its card,
// artifacts/admin-client-list-390.png), a deletion asks first, and a refusal leads home.


const ARTIFACTS = fileURLToPath(new URL('../../artifacts/', import.meta.url));
const now = () => Math.floor(Date.now() / 1000);

let server: TestServer;
let browser: Browser;
let zhengzhou: Window;

beforeAll(async () => {
  if (!hasChromium) return;
  server = await startTestServer({ SIGN_IN_RATE_LIMIT: '1000/60' });
  zhengzhou = (await listWindows(server.db)).find((w) => w.region === '410100')!;
  browser = await launchChromium();
});

// Password, then TOTP at the provider's pages, and back to the console's home.
async function signIn(page: Page, admin: TestAdmin) {
  await page.goto(`${server.url}/admin`);
  await page.waitForURL(/\/interaction\//);
  await page.fill('#identifier', admin.account.username);
  await page.fill('#password', admin.password);
  await page.click('button[type=submit]:not(.secondary)');
  await page.waitForSelector('#code');
  await page.fill('#code', await generate({ secret: admin.totpSecret, epoch: now() + 30 }));
  await page.click('button[type=submit]:not(.secondary)');
  await page.waitForURL(`${server.url}/admin`);
}

afterAll(async () => {
  await browser?.close();
  await server?.close();
});

describe.skipIf(!hasChromium)('the admin console in a browser', () => {
  it('registers a client, rotates its secret, and the window signs a person in with the new secret only', async () => {
    const admin = await makeAdmin(server, 'zhengzhou.window.admin', [{ role: 'window_admin', windowId: zhengzhou.id }]);
    const page = await chinesePage(browser, { viewport: { width: 1280, height: 900 } });

    // Sign in: the console sends the browser to the provider's login, then the TOTP page.
    await signIn(page, admin);
    expect(await page.locator('main').innerText()).toContain('窗口平台管理员');

    // Their window, and a new client for a relying party there.
    await page.click(`a[href="/admin/windows/${zhengzhou.id}"] >> nth=-1`);
    await page.waitForURL(`${server.url}/admin/windows/${zhengzhou.id}`);
    expect(await page.locator('h1').innerText()).toBe(zhengzhou.name);
    const slug = 'zhengzhou-console-rp';
    const redirectUri = `http://127.0.0.1:9/${slug}/callback`;
    await page.selectOption('#new-client #authMethod', 'client_secret_basic');
    await page.fill('#new-client #name', '郑州市企业服务大厅');
    await page.fill('#new-client #redirectUris', redirectUri);
    await page.click('#new-client button[type=submit]');
    const clientId = (await page.locator('#client-id').innerText()).trim();
    const firstSecret = (await page.locator('#client-secret').innerText()).trim();
    expect(firstSecret).toMatch(/^\S{20,}$/);

    // Rotate on the client's page, the old secret ending at once.
    await page.getByRole('link', { name: '返回应用' }).click();
    await page.waitForURL(`${server.url}/admin/clients/${encodeURIComponent(clientId)}`);
    await page.fill('#graceHours', '0');
    await page.click('#rotate-secret button[type=submit]');
    await page.waitForURL(/\/secret\?graceHours=0$/);
    expect(await page.locator('main').innerText()).toContain('旧密钥立即失效');
    await page.click('#confirm button.danger');
    await page.waitForSelector('#client-secret');
    const newSecret = (await page.locator('#client-secret').innerText()).trim();
    expect(newSecret).toMatch(/^\S{20,}$/);
    expect(newSecret).not.toBe(firstSecret);

    // The window's client list, for the record of the test run.
    await page.goto(`${server.url}/admin/windows/${zhengzhou.id}`);
    const row = page.locator('#clients tr', { hasText: clientId });
    expect(await row.innerText()).toContain('郑州市企业服务大厅');
    expect(await row.innerText()).toContain(redirectUri);
    expect(await page.content()).not.toContain(newSecret);
    fs.mkdirSync(ARTIFACTS, { recursive: true });
    await page.screenshot({ path: `${ARTIFACTS}admin-client-list.png`, fullPage: true });
    expect(fs.statSync(`${ARTIFACTS}admin-client-list.png`).size).toBeGreaterThan(0);
    await page.close();

    // The relying party (openid-client) with the new secret signs an ordinary person in.
    const person = { username: 'li.na', displayName: '李娜', password: 'Shaolin-Temple-495' };
    await createAccount(server.db, person, PASSWORD_POLICIES.mlps);
    const site = (secret: string) => relyingParty(server, { clientId, clientSecret: undefined, redirectUri, auth: oidc.ClientSecretBasic(secret) });
    const you = httpBrowser();
    const signedIn = await (await site(newSecret)).signIn(you, { identifier: person.username, password: person.password });
    expect(signedIn.askedForPassword).toBe(true);
    expect(signedIn.claims).toMatchObject({ aud: clientId, name: person.displayName, preferred_username: person.username });

    // The old secret: the token endpoint refuses the client itself.
    const stale = await site(firstSecret);
    const second = await stale.authorize(you);
    if (second.visit.kind !== 'redirect') throw new Error('expected single sign-on straight back to the window');
    const refused = await stale.redeem(second.visit, second.checks).then(
      () => undefined,
      (err: unknown) => err,
    );
    // Basic authentication refused: 401 with a WWW-Authenticate challenge, and the body says why.
    expect(refused).toBeInstanceOf(oidc.WWWAuthenticateChallengeError);
    const challenge = refused as oidc.WWWAuthenticateChallengeError;
    expect(challenge.status).toBe(401);
    expect(challenge.cause[0]?.parameters.error).toBe('invalid_client');
    expect(await challenge.response.json()).toMatchObject({ error: 'invalid_client' });
    expect(server.errors).toEqual([]);
  });

  it('keeps a narrow screen (390 px) from scrolling sideways: the client table scrolls inside its card, names whole', async () => {
    const admin = await makeAdmin(server, 'zhengzhou.narrow.admin', [{ role: 'window_admin', windowId: zhengzhou.id }]);
    for (const [i, name] of ['郑州市中小企业公共服务平台', '郑州航空港经济综合实验区企业服务中心'].entries()) {
      await createClient(server.db, { windowId: zhengzhou.id, name, redirectUris: [`https://service-${i}.zhengzhou.example.cn/oidc/callback`] });
    }
    const page = await chinesePage(browser, { viewport: { width: 390, height: 844 } });
    await signIn(page, admin);
    await page.goto(`${server.url}/admin/windows/${zhengzhou.id}`);
    const sizes = await page.evaluate(() => {
      const scroller = document.querySelector('#clients')!.parentElement!;
      const cell = [...document.querySelectorAll('#clients td a')].find((a) => a.textContent === '郑州航空港经济综合实验区企业服务中心')!;
      const line = parseFloat(getComputedStyle(cell).lineHeight) || 20;
      return {
        page: document.scrollingElement!.scrollWidth,
        viewport: window.innerWidth,
        overflow: getComputedStyle(scroller).overflowX,
        scrolls: scroller.scrollWidth > scroller.clientWidth,
        nameHeight: cell.getBoundingClientRect().height,
        line,
      };
    });
    expect(sizes.page).toBeLessThanOrEqual(sizes.viewport);
    expect(sizes.overflow).toBe('auto');
    expect(sizes.scrolls).toBe(true);
    expect(sizes.nameHeight).toBeLessThan(sizes.line * 1.5);
    fs.mkdirSync(ARTIFACTS, { recursive: true });
    await page.screenshot({ path: `${ARTIFACTS}admin-client-list-390.png`, fullPage: true });

    // A destructive action asks first, on a page of its own, its button unlike the save button.
    const client = await server.db('clients').where({ window_id: zhengzhou.id, name: '郑州市中小企业公共服务平台' }).first('client_id');
    await page.goto(`${server.url}/admin/clients/${encodeURIComponent(client.client_id)}`);
    const styleOf = (selector: string) => page.locator(selector).first().evaluate((el) => ({ background: getComputedStyle(el).backgroundColor, border: getComputedStyle(el).borderTopStyle }));
    const save = await styleOf('#edit-client button[type=submit]');
    await page.click('a.button.danger');
    await page.waitForURL(/\/delete$/);
    expect(await page.locator('#question').innerText()).toBe('确定要删除客户端“郑州市中小企业公共服务平台”吗？');
    expect(await page.locator('main').innerText()).toContain('此操作不可撤销');
    const danger = await styleOf('#confirm button.danger');
    expect(danger).not.toEqual(save);
    expect(danger.border).toBe('solid');
    expect(await page.evaluate(() => document.scrollingElement!.scrollWidth <= window.innerWidth)).toBe(true);
    // Cancel goes back and deletes nothing; confirming deletes.
    await page.click('a.cancel');
    await page.waitForURL(`${server.url}/admin/clients/${encodeURIComponent(client.client_id)}`);
    expect(await server.db('clients').where({ client_id: client.client_id }).first()).toBeDefined();
    await page.click('a.button.danger');
    await page.click('#confirm button.danger');
    await page.waitForURL(`${server.url}/admin/windows/${zhengzhou.id}?saved=1`);
    expect(await server.db('clients').where({ client_id: client.client_id }).first()).toBeUndefined();

    // A page the role does not allow: inside the console, with its way home.
    await page.goto(`${server.url}/admin/keys`);
    expect(await page.locator('h1').innerText()).toBe('您的角色不能执行此操作');
    expect(await page.locator('#needed-roles').innerText()).toBe('需要角色：安全管理员');
    await page.click('#back');
    await page.waitForURL(`${server.url}/admin`);
    await page.close();
    expect(server.errors).toEqual([]);
  });
});
