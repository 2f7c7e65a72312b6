import crypto from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createAccount } from '../../src/accounts/accounts.ts';
import { rolesOf } from '../../src/accounts/admin-roles.ts';
import { PASSWORD_POLICIES } from '../../src/accounts/password-policy.ts';
import { completeUscc } from '../../src/enterprises/uscc.ts';
import { listWindows, type Window } from '../../src/windows/windows.ts';
import { makeAdmin, signInAtProvider } from '../helpers/admin.ts';
import { browser, type Browser, type Visit } from '../helpers/browser.ts';
import { startTestServer, type TestServer } from '../helpers/server.ts';

// Bad input on real pages in Chinese: the answer names the field by its label and says
// what is wrong in Chinese, never in the English of the domain's messages.

let server: TestServer;
let zhengzhou: Window;
const password = 'Songshan-Shaolin-495';

const page = (v: Visit) => {
  if (v.kind !== 'page') throw new Error(`expected a page, got a redirect to ${v.to.href}`);
  return v;
};
const unescape = (s: string) => s.replace(/&#39;/g, "'").replace(/&quot;/g, '"').replace(/&#x2F;/g, '/').replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&amp;/g, '&');
const alert = (v: Visit) => unescape(/role="alert">([^<]*)</.exec(page(v).html)?.[1] ?? '');
// The console lists every problem of a form.
const consoleProblems = (v: Visit) => [...(/role="alert">[\s\S]*?<ul>([\s\S]*?)<\/ul>/.exec(page(v).html)?.[1] ?? '').matchAll(/<li>([^<]*)<\/li>/g)].map((m) => unescape(m[1]!));

// Chinese, save for what a person reads as it is: the codes and addresses allowed here.
function expectChinese(text: string, allowed: string[] = []) {
  const rest = allowed.reduce((t, a) => t.split(a).join(' '), text);
  expect(text).toMatch(/\p{Script=Han}/u);
  expect(rest.match(/\p{Script=Latin}{2,}/gu) ?? [], text).toEqual([]);
}

async function codeFor(destination: string) {
  const message = await server.db('outbox').where({ destination }).orderBy('id', 'desc').first();
  return /(\d{6})/.exec(message?.body ?? '')?.[1];
}

async function signInToConsole(username: string) {
  const admin = await makeAdmin(server, username, [{ role: 'window_admin', windowId: zhengzhou.id }, { role: 'security_admin' }]);
  const b = browser();
  const home = page(await signInAtProvider(b, await b.visit(`${server.url}/admin`), admin, '\0'));
  expect(home.url.pathname).toBe('/admin');
  return b;
}

beforeAll(async () => {
  server = await startTestServer({ CODE_RATE_LIMIT: '100/3600', REGISTER_RATE_LIMIT: '100/3600', SIGN_IN_RATE_LIMIT: '1000/60' });
  zhengzhou = (await listWindows(server.db)).find((w) => w.region === '410100')!;
  await createAccount(server.db, { username: 'gao.yan', displayName: '高燕', password }, PASSWORD_POLICIES.mlps);
});

afterAll(async () => {
  await server?.close();
});

describe('people’s pages in Chinese', () => {
  it('says why registration refuses a password, in Chinese, naming the field', async () => {
    const you = browser();
    const details = await you.submit(await you.visit(`${server.url}/register`), '/register/code', { contact: '13798765432' });
    const code = (await codeFor('13798765432'))!;
    const attempt = (pw: string) => you.submit(details, '/register', { code, username: 'qin.lan', name: '秦岚', password: pw, confirm_password: pw });
    const common = await attempt('password1');
    expect(page(common).status).toBe(400);
    expect(alert(common)).toBe('密码：是最常见的密码之一，不能使用。');
    const weak = await attempt('Ab1-x');
    expect(alert(weak)).toBe('密码：至少要有 8 个字符。');
    const personal = await attempt('Qin.Lan-2026!');
    expect(alert(personal)).toBe('密码：不能包含您的用户名、手机号码或电子邮箱。');
    for (const v of [common, weak, personal]) expectChinese(alert(v));
    expect(await server.db('accounts').where({ username: 'qin.lan' }).first()).toBeUndefined();
  });

  it('says what is wrong with a USCC and a region on enterprise registration, and in English when asked', async () => {
    const you = browser();
    page(await you.submit(await you.visit(`${server.url}/account`), '/login', { identifier: 'gao.yan', password }));
    const register = async (fields: Record<string, string>, lang = 'zh-CN') =>
      you.submit(await you.visit(`${server.url}/account/enterprises/new?lang=${lang}`), '/account/enterprises', { name: '高氏商贸有限公司', type: 'enterprise', region: '410100', ...fields });

    const badUscc = await register({ uscc: '91410000170001402D' });
    expect(page(badUscc).status).toBe(400);
    expect(alert(badUscc)).toBe('统一社会信用代码：“91410000170001402D” 不是有效的统一社会信用代码：组织机构代码校验码（第 17 位）应为 1；校验码（第 18 位）应为 G。');
    expectChinese(alert(badUscc), ['91410000170001402D']);

    const badRegion = await register({ uscc: completeUscc('9141010000000777'), region: '41 01' });
    expect(alert(badRegion)).toBe('行政区划代码：必须是 6 位行政区划代码，如 410100。');
    expectChinese(alert(badRegion));

    const shortName = await register({ uscc: completeUscc('9141010000000778'), name: '高' });
    expect(alert(shortName)).toBe('名称：至少要有 2 个字符。');

    const english = await register({ uscc: '91410000170001402D' }, 'en');
    expect(alert(english)).toBe('USCC: "91410000170001402D" is not a valid Unified Social Credit Code: the organisation code check (character 17) should be 1; the check character (character 18) should be G');
    expect(await server.db('enterprises').where({ name: '高氏商贸有限公司' }).first()).toBeUndefined();
  });
});

describe('the console in Chinese', () => {
  let b: Browser;
  beforeAll(async () => {
    b = await signInToConsole(`console-${crypto.randomBytes(3).toString('hex')}`);
  });

  it('lists a client form’s problems by the fields’ labels, in Chinese', async () => {
    const windowPage = await b.visit(`${server.url}/admin/windows/${zhengzhou.id}`);
    const bad = await b.submit(windowPage, `/admin/windows/${zhengzhou.id}/clients`, {
      name: '',
      redirectUris: 'https://rp.example.cn/cb\nhttp://rp.example.cn/callback',
      authMethod: 'client_secret_basic',
    });
    expect(page(bad).status).toBe(400);
    const problems = consoleProblems(bad);
    expect(problems).toContain('回调地址（第 2 个）：“http://rp.example.cn/callback” 必须使用 https（只有本机和回环地址可以使用 http）。');
    expect(problems).toContain('名称：不能为空。');
    for (const p of problems) expectChinese(p, ['http://rp.example.cn/callback', 'https', 'http', 'authorization_code', 'refresh_token', 'openid']);
  });

  it('refuses a role that breaks the separation of duties, in Chinese', async () => {
    const grantee = await createAccount(server.db, { username: 'shen.kuo', displayName: '沈括', password: 'Mengxi-Bitan-1088' }, PASSWORD_POLICIES.mlps);
    const administrators = await b.visit(`${server.url}/admin/administrators`);
    const granted = await b.submit(administrators, '/admin/administrators/grants', { account: grantee.username, role: 'audit_admin', windowId: '' });
    expect(page(granted).status).toBe(200);
    const clash = await b.submit(granted, '/admin/administrators/grants', { account: grantee.username, role: 'system_admin', windowId: '' });
    expect(page(clash).status).toBe(400);
    expect(consoleProblems(clash)).toEqual(['角色：system_admin 不能与 audit_admin 由同一人担任（职责分离）。']);
    expectChinese(consoleProblems(clash)[0]!, ['system_admin', 'audit_admin']);
    expect(await rolesOf(server.db, grantee.id)).toEqual([{ role: 'audit_admin', windowId: null }]);
  });
});
