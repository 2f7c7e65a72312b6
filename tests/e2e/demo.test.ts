import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEMO_ACCOUNT, DEMO_ENTERPRISES } from '../../src/demo/seed.ts';
import { browser, type Visit } from '../helpers/browser.ts';
import { startTestServer, type TestServer } from '../helpers/server.ts';
import { eventually } from '../helpers/wait.ts';

// What a newcomer does after `npm start`: the two demo window sites, single sign-on
// and single logout, through the same pages a browser would get.

let server: TestServer;

beforeAll(async () => {
  server = await startTestServer({ DEMO: 'true' });
});

afterAll(async () => {
  await server?.close();
});

const html = (v: Visit) => (v.kind === 'page' ? v.html : `redirect to ${v.to.href}`);

describe('the demo window sites', () => {
  it('signs in at Zhengzhou, is signed in at Luoyang without typing, and signing out at Luoyang ends Zhengzhou too', async () => {
    const you = browser();
    const home = await you.visit(`${server.url}/`);
    expect(html(home)).toContain('/demo/zhengzhou/');

    const login = await you.visit(`${server.url}/demo/zhengzhou/login`);
    expect(html(login)).toContain('郑州市综合窗口平台');
    const chooser = await you.submit(login, '/login', { identifier: DEMO_ACCOUNT.username, password: DEMO_ACCOUNT.password });
    expect(html(chooser)).toContain(DEMO_ENTERPRISES[0].name);
    const first = /name="enterprise" value="([0-9a-f-]{36})"/.exec(html(chooser))![1]!;
    const zhengzhou = await you.submit(chooser, '/select', { enterprise: first });
    expect(html(zhengzhou)).toContain(DEMO_ACCOUNT.displayName);
    expect(html(zhengzhou)).toMatch(/Acting for <strong>[^<]*（演示）/);
    expect(html(zhengzhou)).toContain('/demo/zhengzhou/logout');

    const luoyang = await you.visit(`${server.url}/demo/luoyang/login`);
    expect(html(luoyang)).toContain(DEMO_ACCOUNT.displayName);

    const confirm = await you.visit(`${server.url}/demo/luoyang/logout`);
    expect(html(confirm)).toContain('op.logoutForm');
    const out = await you.submit(confirm, '/session/end/confirm', { logout: 'yes' });
    expect(html(out)).not.toContain(DEMO_ACCOUNT.displayName);

    // Zhengzhou learns of it through back-channel logout.
    await eventually(async () => !html(await you.visit(`${server.url}/demo/zhengzhou/`)).includes(DEMO_ACCOUNT.displayName));
    const again = await you.visit(`${server.url}/demo/zhengzhou/login`);
    expect(html(again)).toContain('name="password"');
    expect(server.errors).toEqual([]);
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
