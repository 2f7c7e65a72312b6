import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createAccount, type Account } from '../../src/accounts/accounts.ts';
import { PASSWORD_POLICIES } from '../../src/accounts/password-policy.ts';
import { appendEvent } from '../../src/audit/trail.ts';
import { timeFormatter } from '../../src/http/presentation.ts';
import { listWindows, type Window } from '../../src/windows/windows.ts';
import { adminToken, api, makeAdmin, signInAtProvider } from '../helpers/admin.ts';
import { browser, type Browser } from '../helpers/browser.ts';
import { startTestServer, type TestServer } from '../helpers/server.ts';
import { statementsOf } from '../helpers/statements.ts';
import { windowSite, type WindowSite } from '../helpers/window-site.ts';

// The audit trail page (/admin/audit) as an audit administrator reads it: people by
// username and name, clients and windows by name, events, outcomes and reasons in
// words, times in Beijing time with the zone named; filters chosen from lists, and
// bad filter values answered plainly with nothing shown that should not be.

let server: TestServer;
let zhengzhou: Window;
let site: WindowSite;
let person: Account;
let auditor: Browser;
const password = 'Shaolin-Temple-495';

const open = async (b: Browser, path: string) => {
  const visit = await b.visit(`${server.url}${path}`);
  if (visit.kind !== 'page') throw new Error(`expected a page at ${path}, got a redirect to ${visit.to.href}`);
  return visit;
};
// The records' table rows, one string each.
const rowsOf = (html: string) => [...(/<table id="audit-records">([\s\S]*?)<\/table>/.exec(html)?.[1] ?? '').matchAll(/<tr data-id="\d+">([\s\S]*?)<\/tr>/g)].map((m) => m[1]!);

beforeAll(async () => {
  server = await startTestServer({ SIGN_IN_RATE_LIMIT: '1000/60' });
  zhengzhou = (await listWindows(server.db)).find((w) => w.region === '410100')!;
  site = await windowSite(server, { windowId: zhengzhou.id, name: '郑州企业服务网' });
  person = await createAccount(server.db, { username: 'trail.person', displayName: '李明', password }, PASSWORD_POLICIES.mlps);

  // A real sign-in at the window, a wrong password there, and an administrator's change.
  await site.signIn(browser(), { identifier: person.username, password }, { scope: 'openid profile' });
  const failing = browser();
  const { visit } = await site.authorize(failing, { scope: 'openid profile' });
  await failing.submit(visit, '/login', { identifier: person.username, password: 'Not-the-password-1' }, site.redirectUri);
  const security = await makeAdmin(server, 'trail.security', [{ role: 'security_admin' }]);
  expect((await api(server, await adminToken(server, security), 'POST', '/administrators/grants', { account: person.username, role: 'audit_admin' })).status).toBe(201);
  // A client's own record (tokens are counted per minute and recorded once it is over).
  await appendEvent(server.db, { actor: { type: 'client', id: site.clientId }, windowId: zhengzhou.id, event: 'token.issued', target: `client:${site.clientId}`, outcome: 'success', after: { kind: 'authorization_code', count: 1 } });

  const admin = await makeAdmin(server, 'trail.auditor', [{ role: 'audit_admin' }]);
  auditor = browser();
  const home = await signInAtProvider(auditor, await auditor.visit(`${server.url}/admin`), admin, '\0');
  expect(home.kind === 'page' && home.status).toBe(200);
});

afterAll(async () => {
  await site?.close();
  await server?.close();
});

describe('the audit trail page', () => {
  it('shows who by name, what and how it ended in words, and when in Beijing time', async () => {
    const page = await open(auditor, '/admin/audit');
    expect(page.status).toBe(200);
    const rows = rowsOf(page.html);
    const of = (label: string, outcome: string) => rows.find((r) => r.includes(label) && r.includes(`data-outcome="${outcome}"`) && r.includes(`?actor=${person.id}"`))!;
    const signIn = of('登录（密码与两步验证）', 'success');
    expect(signIn).toContain(`>${person.username}</a> <span class="muted">李明</span>`);
    expect(signIn).toContain(`title="只看此操作者的记录: ${person.id}"`);
    expect(signIn).toContain(`<span title="#${zhengzhou.id}">${zhengzhou.name}</span>`);
    expect(signIn).toContain('成功');
    const failed = of('登录（密码与两步验证）', 'failure');
    expect(failed).toContain('失败<br><span class="muted">密码错误</span>');
    expect(failed).toContain(`>${person.username}</a>`);
    const served = of('在窗口平台登录（授权）', 'success');
    expect(served).toContain(`>${person.username}</a>`);
    expect(served).toContain(`<span title="${site.clientId}">郑州企业服务网</span> <span class="muted">${zhengzhou.name}</span>`);
    const grant = rows.find((r) => r.includes('管理操作：授予管理员角色'))!;
    expect(grant).toContain('>trail.security</a>');
    expect(grant).toContain(`<span title="${person.id}">${person.username}</span> <span class="muted">李明</span>`);
    const tokens = rows.find((r) => r.includes('签发令牌'))!;
    expect(tokens).toContain(`>郑州企业服务网</a> <span class="muted">${zhengzhou.name}</span>`);
    // The codes stay at hand (titles), and no id stands in for a name.
    expect(grant).toContain('title="admin.grantRole"');
    expect(page.html).not.toMatch(/>account [0-9a-f-]{36}/);
    expect(page.html).not.toMatch(/<td>(success|failure)/);

    // Each time as recorded, in Beijing time with the zone named.
    const record = await server.db('audit_events').where({ event: 'sign_in', outcome: 'failure' }).first();
    const shown = timeFormatter('zh-CN', 'Asia/Shanghai', true)(record.at);
    expect(shown).toMatch(/^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2} 北京时间$/);
    expect(rowsOf(page.html).find((r) => r.includes('密码错误'))).toContain(`<td style="white-space:nowrap">${shown}</td>`);

    // In English too.
    const en = await open(auditor, '/admin/audit?lang=en');
    expect(en.html).toContain('Sign-in (password and second factor)');
    expect(en.html).toContain('wrong password');
    expect(en.html).toContain('Beijing time');
    expect((await open(auditor, '/admin/audit?lang=zh-CN')).html).toContain('北京时间');
    expect(server.errors).toEqual([]);
  });

  it('looks names up once per page, not once per record', async () => {
    // The newest record names an account and a client, as a site's access revoked in the account center does.
    await appendEvent(server.db, { actor: { type: 'account', id: person.id }, windowId: zhengzhou.id, event: 'token.revoked', target: `client:${site.clientId}`, outcome: 'success', reason: 'the person revoked the site’s access' });
    const few = await statementsOf(server.db, () => open(auditor, '/admin/audit?limit=1'));
    const many = await statementsOf(server.db, () => open(auditor, '/admin/audit?limit=100'));
    expect(many.length).toBe(few.length);
    expect(many.filter((sql) => /from "accounts"/.test(sql) && /in \(/.test(sql))).toHaveLength(1);
    expect(many.filter((sql) => /from "clients"/.test(sql))).toHaveLength(1);
    expect(many.filter((sql) => /from "windows"/.test(sql))).toHaveLength(1);
    expect(rowsOf((await open(auditor, '/admin/audit?limit=1')).html)[0]).toContain('本人撤销了该网站的访问权限');
  });

  it('filters by outcome, event type and window, chosen from lists in words', async () => {
    const page = await open(auditor, '/admin/audit');
    expect(page.html).toContain('<label for="outcome">结果</label><select id="outcome" name="outcome"><option value="">全部</option><option value="success">成功</option><option value="failure">失败</option></select>');
    expect(page.html).toContain('<option value="sign_in">登录（密码与两步验证）</option>');
    expect(page.html).toContain('<option value="admin.grantRole">管理操作：授予管理员角色</option>');
    expect(page.html).toContain(`<option value="${zhengzhou.id}">${zhengzhou.name}</option>`);

    const failures = await open(auditor, '/admin/audit?outcome=failure');
    expect(failures.html).toContain('<option value="failure" selected>失败</option>');
    const failed = rowsOf(failures.html);
    expect(failed.length).toBeGreaterThan(0);
    expect(failed.every((r) => r.includes('data-outcome="failure"'))).toBe(true);

    const grants = rowsOf((await open(auditor, '/admin/audit?event=admin.grantRole')).html);
    expect(grants.length).toBeGreaterThan(0);
    expect(grants.every((r) => r.includes('管理操作：授予管理员角色'))).toBe(true);

    const atWindow = rowsOf((await open(auditor, `/admin/audit?windowId=${zhengzhou.id}`)).html);
    expect(atWindow.length).toBeGreaterThanOrEqual(3);
    expect(atWindow.every((r) => r.includes(`<span title="#${zhengzhou.id}">`))).toBe(true);

    const mine = rowsOf((await open(auditor, `/admin/audit?actor=${person.id}`)).html);
    expect(mine.length).toBeGreaterThanOrEqual(3);
    expect(mine.every((r) => r.includes(`>${person.username}</a>`))).toBe(true);
  });

  it('answers the worst filter values plainly: nothing found, or which filter is wrong, never a stack trace', async () => {
    const before = await server.db('audit_events').count({ n: '*' });
    for (const value of ['constructor', '__proto__', 'toString', '<script>alert(1)</script>']) {
      for (const field of ['event', 'actor']) {
        const page = await open(auditor, `/admin/audit?${field}=${encodeURIComponent(value)}`);
        expect({ field, value, status: page.status }).toEqual({ field, value, status: 200 });
        expect(page.html).toContain('没有符合条件的记录。');
        expect(page.html).not.toContain('<script>');
        expect(page.html).not.toMatch(/\bat \S+ \(|Error:|TypeError/);
      }
    }
    // An unknown event chosen is kept in the list, as its code, escaped.
    expect((await open(auditor, '/admin/audit?event=%3Cscript%3E')).html).toContain('<option value="&lt;script&gt;" selected>&lt;script&gt;</option>');

    // Which filter, by its label, and why, from the message catalogue.
    const wrong: Array<[string, string, string]> = [
      ['event', 'x'.repeat(5000), '事件'],
      ['actor', 'y'.repeat(5000), '操作者'],
      ['event', 'sign_in\u0000', '事件'],
      ['windowId', '<script>', '窗口'],
      ['windowId', 'constructor', '窗口'],
      ['outcome', 'maybe', '结果'],
      ['limit', '100000', '条数'],
      ['__proto__', '1', '__proto__'],
      ['constructor', '1', 'constructor'],
    ];
    for (const [field, value, label] of wrong) {
      const page = await open(auditor, `/admin/audit?${encodeURIComponent(field)}=${encodeURIComponent(value)}`);
      expect({ field, status: page.status }).toEqual({ field, status: 400 });
      expect(page.html).toMatch(new RegExp(`<li>${label}：[^<]*[\u4e00-\u9fff][^<]*。</li>`));
      expect(page.html).toContain('没有符合条件的记录。');
      expect(page.html).not.toContain('<script>');
      expect(page.html).not.toMatch(/\bat \S+ \(|Error:|TypeError/);
    }
    // Reading the trail adds no record (only refused roles are recorded for reads).
    expect(await server.db('audit_events').count({ n: '*' })).toEqual(before);
    expect(server.errors).toEqual([]);
  });
});
