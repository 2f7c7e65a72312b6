import type { Browser as Chromium, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEMO_ACCOUNT, DEMO_ENTERPRISES } from '../../src/demo/seed.ts';
import { browser, type Visit } from '../helpers/browser.ts';
import { chinesePage, hasChromium, launchChromium } from '../helpers/chromium.ts';
import { startTestServer, type TestServer } from '../helpers/server.ts';
import { eventually } from '../helpers/wait.ts';

// What a newcomer does after `npm start`: the two demo window sites, single sign-on
// and single logout, through the same pages a browser would get. Each site is a site
// of its own (name, colour, header), in Chinese unless the page is in English, and on
// a first visit asks the provider once (prompt=none) whether the person is signed in.

let server: TestServer;

beforeAll(async () => {
  server = await startTestServer({ DEMO: 'true' });
});

afterAll(async () => {
  await server?.close();
});

const html = (v: Visit) => (v.kind === 'page' ? v.html : `redirect to ${v.to.href}`);
const ZHENGZHOU = '郑州市中小企业服务窗口';
const LUOYANG = '洛阳市中小企业服务窗口';

describe('the demo window sites', () => {
  it('signs in at Zhengzhou, is signed in at Luoyang on arrival, and signing out at Luoyang ends Zhengzhou too', async () => {
    const you = browser();
    const home = await you.visit(`${server.url}/`);
    expect(html(home)).toContain('/demo/zhengzhou/');

    // First visit, not signed in at the provider: the site asks once and says 未登录.
    const before = await you.visit(`${server.url}/demo/zhengzhou/`);
    expect(html(before)).toContain(ZHENGZHOU);
    expect(html(before)).toContain('未登录');

    const login = await you.visit(`${server.url}/demo/zhengzhou/login`);
    expect(html(login)).toContain('郑州市综合窗口平台');
    const chooser = await you.submit(login, '/login', { identifier: DEMO_ACCOUNT.username, password: DEMO_ACCOUNT.password });
    expect(html(chooser)).toContain(DEMO_ENTERPRISES[0].name);
    const first = /name="enterprise" value="([0-9a-f-]{36})"/.exec(html(chooser))![1]!;
    const zhengzhou = await you.submit(chooser, '/select', { enterprise: first });
    expect(html(zhengzhou)).toContain(`已登录：${DEMO_ACCOUNT.displayName}（${DEMO_ACCOUNT.username}）`);
    expect(html(zhengzhou)).toMatch(/代表企业：[^<]*（演示）（(法定代表人|经办人)）/);
    expect(html(zhengzhou)).toContain('/demo/zhengzhou/logout');

    const luoyang = await you.visit(`${server.url}/demo/luoyang/`);
    expect(html(luoyang)).toContain(LUOYANG);
    expect(html(luoyang)).toContain(`已登录：${DEMO_ACCOUNT.displayName}`);

    const confirm = await you.visit(`${server.url}/demo/luoyang/logout`);
    expect(html(confirm)).toContain('op.logoutForm');
    const out = await you.submit(confirm, '/session/end/confirm', { logout: 'yes' });
    expect(html(out)).not.toContain(DEMO_ACCOUNT.displayName);
    expect(html(out)).toContain('未登录');

    // Zhengzhou learns of it through back-channel logout.
    await eventually(async () => !html(await you.visit(`${server.url}/demo/zhengzhou/`)).includes(DEMO_ACCOUNT.displayName));
    const again = await you.visit(`${server.url}/demo/zhengzhou/login`);
    expect(html(again)).toContain('name="password"');
    expect(server.errors).toEqual([]);
  });

  it('shows each site with its own name and colour, not the provider’s header, in Chinese, and in English only when asked', async () => {
    const you = browser();
    const zh = html(await you.visit(`${server.url}/demo/zhengzhou/`));
    const other = html(await you.visit(`${server.url}/demo/luoyang/`));
    expect(zh).toContain(`<title>${ZHENGZHOU}</title>`);
    expect(other).toContain(`<title>${LUOYANG}</title>`);
    expect(zh).toContain('#1565c0');
    expect(other).toContain('#2e7d32');
    for (const page of [zh, other]) {
      expect(page).not.toContain('河南省中小企业公共服务平台网络</div>');
      expect(page).toContain('演示站点');
      // No English words on the Chinese page: only the ID Token's name and the switch.
      const words = page.replace(/<style>[\s\S]*?<\/style>/, '').replace(/<[^>]*>/g, ' ').match(/[A-Za-z]{3,}/g) ?? [];
      expect(words.filter((w) => !['English', 'Token'].includes(w))).toEqual([]);
    }
    const en = html(await you.visit(`${server.url}/demo/zhengzhou/?lang=en`));
    expect(en).toContain('Zhengzhou SME Service Window');
    expect(en).toContain('Not signed in');
    expect(en).not.toContain('未登录');
  });

  it('takes the provider’s refusal only for its own request: another state, a second answer, a forged error change nothing', async () => {
    const you = browser();
    await you.visit(`${server.url}/demo/luoyang/`);
    // No sign-in under way: an answer is ignored.
    const stray = await you.visit(`${server.url}/demo/luoyang/callback?error=login_required&state=x`);
    expect(html(stray)).toContain('未登录');
    const started = await you.visit(`${server.url}/demo/luoyang/login`, `${server.url}/interaction/`);
    expect(started.kind).toBe('redirect');
    for (const query of ['error=login_required&state=not-ours', 'error=%3Cscript%3E&state=constructor', 'code=__proto__']) {
      const res = await you.fetch(`${server.url}/demo/luoyang/callback?${query}`, { redirect: 'manual' });
      expect(res.status).toBe(400);
      await res.body?.cancel();
    }
    // The sign-in under way still ends well.
    const login = await you.visit((started as { to: URL }).to);
    const chooser = await you.submit(login, '/login', { identifier: DEMO_ACCOUNT.username, password: DEMO_ACCOUNT.password });
    const done = await you.submit(chooser, '/select', { enterprise: '' });
    expect(html(done)).toContain(`已登录：${DEMO_ACCOUNT.displayName}`);
    expect(html(done)).toContain('以个人身份办事');
  });

  it('switches the pages to English and back', async () => {
    const you = browser();
    const en = await you.visit(`${server.url}/demo/zhengzhou/login?lang=en`);
    const page = await you.visit(`${server.url}/demo/zhengzhou/login`);
    expect(html(en)).toContain('Henan SME Public Service Platform Network');
    expect(html(page)).toContain('Username, phone or email');
    const zh = await you.visit(`${server.url}/?lang=zh-CN`);
    expect(html(zh)).toContain('统一身份认证');
  });
});

describe.skipIf(!hasChromium)('the demo window sites in chromium', () => {
  let chromium: Chromium;
  beforeAll(async () => {
    chromium = await launchChromium();
  });
  afterAll(async () => {
    await chromium?.close();
  });

  // The authorization requests the page made with prompt=none.
  const silentChecks = (page: Page) => {
    const seen: string[] = [];
    page.on('request', (r) => {
      if (r.url().startsWith(server.url) && new URL(r.url()).searchParams.get('prompt') === 'none') seen.push(r.url());
    });
    return seen;
  };

  it('a person not signed in gets one silent check, answered login_required, and the page says 未登录 without looping', async () => {
    const page = await chinesePage(chromium);
    try {
      const checks = silentChecks(page);
      const answers: string[] = [];
      page.on('request', (r) => {
        const error = new URL(r.url()).searchParams.get('error');
        if (r.url().includes('/demo/luoyang/callback') && error) answers.push(error);
      });
      await page.goto(`${server.url}/demo/luoyang/`);
      await page.getByText('未登录').waitFor();
      expect(checks).toHaveLength(1);
      expect(answers).toEqual(['login_required']);
      await page.reload();
      await page.getByText('未登录').waitFor();
      await page.goto(`${server.url}/demo/luoyang/`);
      await page.getByText('未登录').waitFor();
      expect(checks).toHaveLength(1);
      expect(await page.title()).toBe(LUOYANG);
      expect(page.url()).toBe(`${server.url}/demo/luoyang/`);
    } finally {
      await page.close();
    }
  });

  it('signs in at the first site; the second shows the person signed in on arrival', async () => {
    const page = await chinesePage(chromium);
    try {
      const checks = silentChecks(page);
      await page.goto(`${server.url}/demo/zhengzhou/`);
      await page.getByRole('link', { name: '通过统一身份认证登录' }).click();
      await page.fill('#identifier', DEMO_ACCOUNT.username);
      await page.fill('#password', DEMO_ACCOUNT.password);
      await page.click('form[action$="/login"] button[type=submit]');
      await page.getByText(DEMO_ENTERPRISES[0].name).click();
      await page.click('form[action$="/select"] button[type=submit]');
      await page.getByText(`已登录：${DEMO_ACCOUNT.displayName}`).waitFor();
      expect(await page.title()).toBe(ZHENGZHOU);

      await page.getByRole('link', { name: LUOYANG }).click();
      await page.getByText(`已登录：${DEMO_ACCOUNT.displayName}`).waitFor();
      expect(page.url()).toBe(`${server.url}/demo/luoyang/`);
      expect(await page.title()).toBe(LUOYANG);
      expect(await page.textContent('body')).toMatch(/代表企业：郑州示例科技有限公司（演示）/);
      expect(checks).toHaveLength(2);
      expect(server.errors).toEqual([]);
    } finally {
      await page.close();
    }
  });
});
