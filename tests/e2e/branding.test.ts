import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { browser, type Visit } from '../helpers/browser.ts';
import { chinesePage, hasChromium, launchChromium } from '../helpers/chromium.ts';
import { startEnrolment } from '../../src/accounts/totp.ts';
import { createClient } from '../../src/windows/clients.ts';
import { createWindow, listWindows } from '../../src/windows/windows.ts';
import { startTestServer, type TestServer } from '../helpers/server.ts';

// What an operator sets about the platform (src/http/presentation.ts) on every page:
// the header's name and logo, the footer's organiser, filings and service phone, each
// escaped like any other value; and the sign-in page naming where a person came from once.

const SVG = '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 10 10"><script>alert(1)</script><rect width="10" height="10" fill="#b71c1c"/></svg>';

let server: TestServer;
let plain: TestServer;
let logoDir: string;

beforeAll(async () => {
  logoDir = fs.mkdtempSync(path.join(os.tmpdir(), 'sme-passport-logo-'));
  fs.writeFileSync(path.join(logoDir, 'logo.svg'), SVG);
  [server, plain] = await Promise.all([
    startTestServer({
      DEMO: 'true',
      PLATFORM_NAME: '郑州<script>alert(1)</script>平台',
      PLATFORM_NAME_EN: 'Zhengzhou "SME" Platform',
      ORGANISER: '<script>alert("organiser")</script>',
      ICP_BEIAN: '豫ICP备2021012345号-1',
      PUBLIC_SECURITY_BEIAN: '豫公网安备41010502000001号',
      SERVICE_PHONE: '0371-6596 1234',
      LOGO_FILE: path.join(logoDir, 'logo.svg'),
    }),
    startTestServer(),
  ]);
});

afterAll(async () => {
  await Promise.all([server?.close(), plain?.close()]);
  if (logoDir) fs.rmSync(logoDir, { recursive: true, force: true });
});

const html = (v: Visit) => (v.kind === 'page' ? v.html : `redirect to ${v.to.href}`);
const footerOf = (page: string) => /<footer class="site">[\s\S]*<\/footer>/.exec(page)?.[0] ?? `no footer in:\n${page.slice(0, 1500)}`;
const count = (haystack: string, needle: string) => haystack.split(needle).length - 1;

describe('branding', () => {
  it('shows the configured platform, organiser, filings and phone on a people\'s page, escaped', async () => {
    const page = html(await browser().visit(`${server.url}/`));
    expect(page).not.toContain('<script>');
    expect(page).toContain('<div class="brand"><img src="/assets/logo-');
    expect(page).toContain('alt="郑州&lt;script&gt;alert(1)&lt;/script&gt;平台">郑州&lt;script&gt;alert(1)&lt;/script&gt;平台<small>统一身份认证</small>');
    const footer = footerOf(page);
    expect(footer).toContain('主办单位：&lt;script&gt;alert(&quot;organiser&quot;)&lt;/script&gt;');
    expect(footer).toContain('客服电话：<a href="tel:037165961234">0371-6596 1234</a>');
    expect(footer).toContain('<a href="https://beian.miit.gov.cn/">豫ICP备2021012345号-1</a>');
    expect(footer).toContain('<a href="https://beian.mps.gov.cn/#/query/webSearch?code=41010502000001">豫公网安备41010502000001号</a>');

    const en = html(await browser().visit(`${server.url}/?lang=en`));
    expect(en).toContain('Zhengzhou &quot;SME&quot; Platform<small>Unified Sign-in</small>');
    expect(footerOf(en)).toContain('Organiser: &lt;script&gt;');
    expect(footerOf(en)).toContain('Service phone: <a href="tel:037165961234">');
  });

  it('shows the footer on the error page and on the console\'s pages', async () => {
    const error = await browser().visit(`${server.url}/auth?client_id=no-such-client&response_type=code&scope=openid&redirect_uri=https%3A%2F%2Fexample.cn%2Fcb`);
    expect(error.kind === 'page' && error.status).toBe(400);
    expect(html(error)).toContain('class="error"');
    expect(footerOf(html(error))).toContain('主办单位：&lt;script&gt;alert(&quot;organiser&quot;)&lt;/script&gt;');
    expect(html(error)).not.toContain('<script>');

    const console = html(await browser().visit(`${server.url}/admin/signed-out`));
    expect(console).toContain('平台<small>统一身份认证 · ');
    expect(console).toContain('alt="郑州&lt;script&gt;alert(1)&lt;/script&gt;平台"');
    expect(footerOf(console)).toContain('主办单位：&lt;script&gt;alert(&quot;organiser&quot;)&lt;/script&gt;');
    expect(footerOf(console)).toContain('豫ICP备2021012345号-1');
    expect(console).not.toContain('<script>');
  });

  it('serves the logo from /assets with its type, a year\'s caching and, for SVG, a policy that runs nothing', async () => {
    const page = html(await browser().visit(`${server.url}/`));
    const href = /<img src="([^"]+)"/.exec(page)![1]!;
    expect(href).toMatch(/^\/assets\/logo-[0-9a-f]{16}\.svg$/);
    const res = await fetch(`${server.url}${href}`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('image/svg+xml');
    expect(res.headers.get('cache-control')).toBe('public, max-age=31536000, immutable');
    expect(res.headers.get('content-security-policy')).toBe("default-src 'none'; style-src 'unsafe-inline'; sandbox");
    expect(res.headers.get('x-content-type-options')).toBe('nosniff');
    expect(await res.text()).toBe(SVG);
    expect((await fetch(`${server.url}/assets/logo-0000000000000000.svg`)).status).toBe(404);
    expect((await fetch(`${plain.url}${href}`)).status).toBe(404);
    // The scripts keep their own type and no page policy.
    const script = await fetch(`${server.url}/assets/auto-submit.js`);
    expect(script.headers.get('content-type')).toBe('application/javascript; charset=utf-8');
    expect(script.headers.get('content-security-policy')).toBeNull();
  });

  it('shows the seed\'s naming and no filings, phone or logo when none is set', async () => {
    const page = html(await browser().visit(`${plain.url}/`));
    expect(page).toContain('<div class="brand">河南省中小企业公共服务平台网络<small>');
    const footer = footerOf(page);
    expect(footer).toContain('主办单位：河南省工业和信息化厅');
    expect(footer).not.toContain('备');
    expect(footer).not.toContain('tel:');
    expect(footer).not.toContain('客服电话');
    expect(page).not.toContain('<img');
    expect(html(await browser().visit(`${plain.url}/?lang=en`))).toContain('Henan SME Public Service Platform Network<small>Unified Sign-in</small>');
  });

  it('names the window a sign-in comes from once, and the account centre and the console as what is signed in to, not a window', async () => {
    const login = html(await browser().visit(`${server.url}/demo/zhengzhou/login`));
    expect(login).toContain('name="password"');
    expect(login).toContain('您正在从以下窗口平台登录：<br><strong>郑州&lt;script&gt;alert(1)&lt;/script&gt;平台 郑州市综合窗口平台（演示站点）</strong>');
    expect(count(login, '郑州市综合窗口平台')).toBe(1);

    const account = html(await browser().visit(`${server.url}/account`));
    expect(account).toContain('name="password"');
    expect(account).not.toContain('窗口平台');
    expect(account).toContain('登录到：<br><strong>统一身份认证 · 账号中心</strong>');
    const console = html(await browser().visit(`${server.url}/admin`));
    expect(console).toContain('name="password"');
    expect(console).toContain('登录到：<br><strong>统一身份认证 · 管理控制台</strong>');
    expect(server.errors).toEqual([]);
  });

  it('names a window and a client not named after it each once, and a service organisation as one', async () => {
    const loginFor = async (clientId: string) =>
      html(await browser().visit(`${server.url}/auth?${new URLSearchParams({ client_id: clientId, response_type: 'code', scope: 'openid', redirect_uri: 'https://rp.example.cn/cb', code_challenge: 'x'.repeat(43), code_challenge_method: 'S256' })}`));
    const luoyang = (await listWindows(server.db)).find((w) => w.region === '410300')!;
    const atLuoyang = await createClient(server.db, { windowId: luoyang.id, name: '洛阳企业服务网', redirectUris: ['https://rp.example.cn/cb'] });
    const page = await loginFor(atLuoyang.clientId);
    expect(page).toContain('您正在从以下窗口平台登录：<br><strong>郑州&lt;script&gt;alert(1)&lt;/script&gt;平台 洛阳市综合窗口平台 · 洛阳企业服务网</strong>');
    expect(count(page, '洛阳市综合窗口平台')).toBe(1);

    const organisation = await createWindow(server.db, { kind: 'service', name: '河南某检验检测中心' });
    const atOrganisation = await createClient(server.db, { windowId: organisation.id, name: '河南某检验检测中心', redirectUris: ['https://rp.example.cn/cb'] });
    const there = await loginFor(atOrganisation.clientId);
    expect(there).toContain('您正在从以下服务机构登录：<br><strong>郑州&lt;script&gt;alert(1)&lt;/script&gt;平台 河南某检验检测中心</strong>');
    expect(there).not.toContain('窗口平台');
  });

  it('names the platform in the authenticator app as configured', async () => {
    const masterKey = Buffer.alloc(32, 3);
    const account = { id: '00000000-0000-4000-8000-000000000001', username: 'zhang.wei' };
    expect(new URL((await startEnrolment(masterKey, account)).uri).searchParams.get('issuer')).toBe('河南省中小企业公共服务平台网络');
    expect(new URL((await startEnrolment(masterKey, account, undefined, '郑州市中小企业服务平台')).uri).searchParams.get('issuer')).toBe('郑州市中小企业服务平台');
  });

  it.skipIf(!hasChromium)('in a browser: the logo shows in the header, and neither the names nor the SVG opened on its own run script', async () => {
    const chromium = await launchChromium();
    try {
      const page = await chinesePage(chromium);
      const dialogs: string[] = [];
      page.on('dialog', (d) => {
        dialogs.push(d.message());
        void d.dismiss();
      });
      await page.goto(`${server.url}/`);
      await expect.poll(() => page.locator('header .brand img').evaluate((img: HTMLImageElement) => img.complete && img.naturalWidth > 0)).toBe(true);
      expect(await page.locator('header .brand img').getAttribute('alt')).toBe('郑州<script>alert(1)</script>平台');
      expect(await page.locator('footer.site').innerText()).toContain('主办单位：<script>alert("organiser")</script>');
      const href = (await page.locator('header .brand img').getAttribute('src'))!;
      await page.goto(`${server.url}${href}`);
      await page.goto(`${server.url}/admin/signed-out`);
      expect(await page.locator('footer.site').innerText()).toContain('豫公网安备41010502000001号');
      expect(dialogs).toEqual([]);
    } finally {
      await chromium.close();
    }
  });
});
