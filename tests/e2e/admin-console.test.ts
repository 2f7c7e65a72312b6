import crypto from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createAccount } from '../../src/accounts/accounts.ts';
import { grantRole, rolesOf, type AdminRole } from '../../src/accounts/admin-roles.ts';
import { PASSWORD_POLICIES } from '../../src/accounts/password-policy.ts';
import { listKeys, rotateSigningKeys } from '../../src/oidc/keys.ts';
import { createClient, getClient } from '../../src/windows/clients.ts';
import { createWindow, listWindows, type Window } from '../../src/windows/windows.ts';
import { makeAdmin, signInAtProvider, type TestAdmin } from '../helpers/admin.ts';
import { browser, type Browser, type Visit } from '../helpers/browser.ts';
import { startTestServer, type TestServer } from '../helpers/server.ts';
import { eventually } from '../helpers/wait.ts';
import { windowSite } from '../helpers/window-site.ts';

// The admin console (/admin) over HTTP, as a browser uses it: signing in through the
// provider (password, then TOTP), pages and forms for each role, window administrators
// kept to their window, validation that changes nothing, the CSRF gate, the audit
// record of every change, signing out of the provider; refusals as pages of the console,
// the confirmation page of every destructive action, and the security administrator's
// account pages.

let server: TestServer;
let zhengzhou: Window;
let luoyang: Window;

type Page = Extract<Visit, { kind: 'page' }>;
const unique = (prefix: string) => `${prefix}-${crypto.randomBytes(4).toString('hex')}`;
const decode = (s: string) => s.replace(/&#x2F;/g, '/').replace(/&#39;/g, "'").replace(/&quot;/g, '"').replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&amp;/g, '&');

function asPage(visit: Visit): Page {
  if (visit.kind !== 'page') throw new Error(`expected a page, got a redirect to ${visit.to.href}`);
  return visit;
}

// What a browser would send for the form with this action, as the page shows it:
// hidden, text and number inputs, checked boxes, textareas, selected options.
function formEntries(html: string, action: string): { action: string; entries: Array<[string, string]> } {
  for (const match of html.matchAll(/<form\b([^>]*)>([\s\S]*?)<\/form>/g)) {
    const found = decode(/action="([^"]*)"/.exec(match[1]!)?.[1] ?? '');
    if (found !== action) continue;
    const entries: Array<[string, string]> = [];
    const inner = match[2]!;
    for (const input of inner.matchAll(/<input\b([^>]*)>/g)) {
      const attrs = input[1]!;
      const name = /name="([^"]*)"/.exec(attrs)?.[1];
      const type = /type="([^"]*)"/.exec(attrs)?.[1] ?? 'text';
      const value = decode(/value="([^"]*)"/.exec(attrs)?.[1] ?? '');
      if (!name) continue;
      if (type === 'checkbox' || type === 'radio') {
        if (/\schecked\b/.test(attrs)) entries.push([name, value || 'on']);
      } else entries.push([name, value]);
    }
    for (const area of inner.matchAll(/<textarea\b([^>]*)>([\s\S]*?)<\/textarea>/g)) {
      const name = /name="([^"]*)"/.exec(area[1]!)?.[1];
      if (name) entries.push([name, decode(area[2]!)]);
    }
    for (const select of inner.matchAll(/<select\b([^>]*)>([\s\S]*?)<\/select>/g)) {
      const name = /name="([^"]*)"/.exec(select[1]!)?.[1];
      const options = [...select[2]!.matchAll(/<option\b([^>]*)>/g)].map((o) => o[1]!);
      const chosen = options.find((o) => /\sselected\b/.test(o)) ?? options[0];
      if (name && chosen !== undefined) entries.push([name, decode(/value="([^"]*)"/.exec(chosen)?.[1] ?? '')]);
    }
    return { action: found, entries };
  }
  throw new Error(`no form with action "${action}" in page:\n${html.slice(0, 2000)}`);
}

// Submits that form with some fields changed (a list repeats the field, as checkboxes
// do) or left out, and follows any redirect to the page it ends at.
async function send(b: Browser, page: Visit, action: string, changes: Record<string, string | string[]> = {}, omit: string[] = []): Promise<Page> {
  const form = formEntries(asPage(page).html, action);
  const entries = form.entries.filter(([name]) => !(name in changes) && !omit.includes(name));
  for (const [name, value] of Object.entries(changes)) for (const one of [value].flat()) entries.push([name, one]);
  const target = new URL(form.action, asPage(page).url);
  const res = await b.fetch(target, {
    method: 'POST',
    redirect: 'manual',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams(entries),
  });
  if (res.status >= 300 && res.status < 400) {
    await res.body?.cancel();
    return asPage(await b.visit(new URL(res.headers.get('location')!, target)));
  }
  return { kind: 'page', url: target, status: res.status, html: await res.text() };
}

const open = async (b: Browser, path: string) => asPage(await b.visit(`${server.url}${path}`));

// A destructive action: its confirmation page (a GET of the action's path, with any
// query the page's own form adds), then the confirmation's form, as a browser sends it.
async function confirmed(b: Browser, path: string, query = '', changes: Record<string, string> = {}, omit: string[] = []): Promise<Page> {
  const asking = await open(b, `${path}${query}`);
  expect({ path, status: asking.status }).toEqual({ path, status: 200 });
  expect(asking.html).toContain('<input type="hidden" name="confirm" value="yes">');
  return send(b, asking, path, changes, omit);
}

// A fresh administrator for each sign-in: each TOTP code counts once.
const newAdmin = (roles: Array<{ role: AdminRole; windowId?: number }>) => makeAdmin(server, unique('console'), roles);

// GET /admin without a session ends at the provider's login page; password and TOTP
// there lead back to the console.
async function signInToConsole(admin: TestAdmin): Promise<{ b: Browser; home: Page }> {
  const b = browser();
  const login = asPage(await b.visit(`${server.url}/admin`));
  expect(login.url.pathname).toMatch(/^\/interaction\//);
  expect(login.html).toContain('name="password"');
  const home = asPage(await signInAtProvider(b, login, admin, '\0'));
  expect({ path: home.url.pathname, status: home.status }).toEqual({ path: '/admin', status: 200 });
  return { b, home };
}

const clientCount = async () => Number((await server.db('clients').count({ n: '*' }))[0]!.n);
const auditOf = (event: string, target: string) => server.db('audit_events').where({ event, target }).first();
const secretOf = (html: string) => /id="client-secret">([^<]+)</.exec(html)?.[1];
const clientIdOf = (html: string) => /id="client-id">([^<]+)</.exec(html)?.[1];

beforeAll(async () => {
  server = await startTestServer({ SIGN_IN_RATE_LIMIT: '1000/60' });
  const windows = await listWindows(server.db);
  zhengzhou = windows.find((w) => w.region === '410100')!;
  luoyang = windows.find((w) => w.region === '410300')!;
});

afterAll(async () => {
  await server?.close();
});

describe('signing in to the console', () => {
  it('sends an unauthenticated visit to the provider, and after password and TOTP shows the roles held', async () => {
    const admin = await newAdmin([{ role: 'window_admin', windowId: zhengzhou.id }]);
    const { home } = await signInToConsole(admin);
    expect(home.html).toContain(admin.account.username);
    expect(home.html).toContain('窗口平台管理员');
    expect(home.html).toContain(`href="/admin/windows/${zhengzhou.id}"`);
    expect(server.errors).toEqual([]);
  });

  it('answers a person without an administrator role with 403, without sending them round again', async () => {
    const password = 'Kaifeng-Iron-Pagoda-1049';
    const person = await createAccount(server.db, { username: unique('no.role'), displayName: '普通用户', password }, PASSWORD_POLICIES.mlps);
    const b = browser();
    const login = asPage(await b.visit(`${server.url}/admin`));
    const refused = asPage(await b.submit(login, '/login', { identifier: person.username, password }));
    expect({ path: refused.url.pathname, status: refused.status }).toEqual({ path: '/admin', status: 403 });
    expect(refused.html).toContain('您的账号没有管理员角色');
    // Again: the same page at once, no redirect to a sign-in.
    const res = await b.fetch(`${server.url}/admin/windows`, { redirect: 'manual' });
    expect(res.status).toBe(403);
    expect(await res.text()).toContain('您的账号没有管理员角色');
    expect(server.errors).toEqual([]);
  });
});

describe('windows', () => {
  it('lets a system_admin create a window, and keeps a window_admin to their own', async () => {
    const system = await signInToConsole(await newAdmin([{ role: 'system_admin' }]));
    const list = await open(system.b, '/admin/windows');
    expect(list.html).toContain(zhengzhou.name);
    expect(list.html).toContain(luoyang.name);
    const name = unique('测试服务机构');
    const created = await send(system.b, list, '/admin/windows', { kind: 'service', name, region: '', cluster: '' });
    expect(created.status).toBe(200);
    expect(created.url.pathname).toMatch(/^\/admin\/windows\/\d+$/);
    expect(created.html).toContain('已保存。');
    expect(created.html).toContain(name);
    const row = await server.db('windows').where({ name }).first();
    expect(created.url.pathname).toBe(`/admin/windows/${row.id}`);
    expect(await auditOf('admin.createWindow', `window:${row.id}`)).toMatchObject({ outcome: 'success' });

    const other = await createClient(server.db, { windowId: luoyang.id, name: unique('洛阳应用'), redirectUris: ['https://rp.example.cn/cb'] });
    const mine = await signInToConsole(await newAdmin([{ role: 'window_admin', windowId: zhengzhou.id }]));
    const theirs = await open(mine.b, '/admin/windows');
    expect(theirs.status).toBe(200);
    expect(theirs.html).toContain(`href="/admin/windows/${zhengzhou.id}"`);
    expect(theirs.html).not.toContain(luoyang.name);
    expect(theirs.html).not.toContain(name);
    expect([...theirs.html.matchAll(/href="\/admin\/windows\/(\d+)"/g)].map((m) => Number(m[1]))).toEqual([zhengzhou.id]);
    expect(theirs.html).not.toContain('action="/admin/windows"');

    const forbidden = await open(mine.b, `/admin/windows/${luoyang.id}`);
    expect(forbidden.status).toBe(403);
    expect(forbidden.html).not.toContain(other.clientId);
    const hidden = await open(mine.b, `/admin/clients/${encodeURIComponent(other.clientId)}`);
    expect(hidden.status).toBe(404);
    expect(server.errors).toEqual([]);
  });
});

describe('clients', () => {
  it('shows a new secret once, lists the client without it, and refuses bad input by field, keeping what was typed', async () => {
    const { b } = await signInToConsole(await newAdmin([{ role: 'window_admin', windowId: zhengzhou.id }]));
    const windowPath = `/admin/windows/${zhengzhou.id}`;
    const page = await open(b, windowPath);
    const name = unique('郑州应用');
    const before = await clientCount();
    const shown = await send(b, page, `${windowPath}/clients`, { name, redirectUris: 'https://rp.example.cn/callback', authMethod: 'client_secret_basic' });
    expect(shown.status).toBe(200);
    const secret = secretOf(shown.html)!;
    const clientId = clientIdOf(shown.html)!;
    expect(secret).toMatch(/^\S{20,}$/);
    expect(await clientCount()).toBe(before + 1);
    expect(await getClient(server.db, clientId)).toMatchObject({ name, windowId: zhengzhou.id, authMethod: 'client_secret_basic', redirectUris: ['https://rp.example.cn/callback'] });

    const listed = await open(b, windowPath);
    expect(listed.html).toContain(name);
    expect(listed.html).toContain(clientId);
    expect(listed.html).not.toContain(secret);
    expect(listed.html).not.toContain('id="client-secret"');
    const detail = await open(b, `/admin/clients/${encodeURIComponent(clientId)}`);
    expect(detail.html).not.toContain(secret);
    expect(await auditOf('admin.createClient', `client:${clientId}`)).toMatchObject({ outcome: 'success', window_id: zhengzhou.id });
    expect(JSON.stringify(await server.db('audit_events').select('before', 'after'))).not.toContain(secret);

    const count = await clientCount();
    const bad = await send(b, listed, `${windowPath}/clients`, {
      name: '',
      redirectUris: 'http://rp.example.cn/callback',
      postLogoutRedirectUris: 'https://rp.example.cn/typed-bye',
    });
    expect(bad.status).toBe(400);
    expect(bad.html).toContain('输入有误，未做任何更改');
    expect(bad.html).toContain('<li>名称：');
    expect(bad.html).toContain('<li>回调地址（第 1 个）：');
    expect(bad.html).toMatch(/<textarea id="redirectUris" name="redirectUris">http:\/\/rp\.example\.cn\/callback<\/textarea>/);
    expect(bad.html).toMatch(/<textarea id="postLogoutRedirectUris" name="postLogoutRedirectUris">https:\/\/rp\.example\.cn\/typed-bye<\/textarea>/);
    expect(bad.html).not.toContain('id="client-secret"');
    expect(await clientCount()).toBe(count);
    expect(server.errors).toEqual([]);
  });

  it('refuses a form without its csrf field with 403 and changes nothing', async () => {
    const { b } = await signInToConsole(await newAdmin([{ role: 'window_admin', windowId: zhengzhou.id }]));
    const name = unique('csrf');
    const target = { ...(await createClient(server.db, { windowId: zhengzhou.id, name, redirectUris: ['https://rp.example.cn/cb'] })), name };
    const windowPath = `/admin/windows/${zhengzhou.id}`;
    const count = await clientCount();
    const created = await send(b, await open(b, windowPath), `${windowPath}/clients`, { name: unique('forged'), redirectUris: 'https://rp.example.cn/cb' }, ['csrf']);
    expect(created.status).toBe(403);
    expect(created.html).not.toContain('id="client-secret"');
    expect(await clientCount()).toBe(count);

    const clientPath = `/admin/clients/${encodeURIComponent(target.clientId)}`;
    const detail = await open(b, clientPath);
    for (const [action, changes] of [
      [`${clientPath}/disable`, {}],
      [clientPath, { name: 'forged' }],
    ] as const) {
      const answer = await send(b, detail, action, changes, ['csrf']);
      expect({ action, status: answer.status }).toEqual({ action, status: 403 });
    }
    for (const [action, query] of [
      [`${clientPath}/delete`, ''],
      [`${clientPath}/secret`, '?graceHours=0'],
    ] as const) {
      const answer = await confirmed(b, action, query, {}, ['csrf']);
      expect({ action, status: answer.status }).toEqual({ action, status: 403 });
      expect(answer.html).toContain('表单已失效');
    }
    // A forged token is no better than none.
    expect((await send(b, detail, `${clientPath}/disable`, { csrf: 'forged-token' })).status).toBe(403);
    expect(await getClient(server.db, target.clientId)).toMatchObject({ name: target.name, disabled: false, secretRotatedAt: null });
    expect(await server.db('audit_events').where({ target: `client:${target.clientId}` })).toEqual([]);
    expect(server.errors).toEqual([]);
  });

  it('lists, adds, edits and deletes a window’s APIs, escaping what was typed, with CSRF, each on record', async () => {
    const { b } = await signInToConsole(await newAdmin([{ role: 'window_admin', windowId: zhengzhou.id }]));
    const windowPath = `/admin/windows/${zhengzhou.id}`;
    const identifier = `https://${unique('orders')}.example.cn/api`;
    const count = async () => Number((await server.db('window_apis').count({ n: '*' }))[0]!.n);
    const before = await count();
    const page = await open(b, windowPath);
    expect(page.html).toContain('还没有登记接口');
    const added = await send(b, page, `${windowPath}/apis`, { identifier, name: '订单<服务>', scopes: 'orders:read, orders:write' });
    expect(added.status).toBe(200);
    expect(added.html).toContain(`<code>${identifier}</code>`);
    expect(added.html).toContain('订单&lt;服务&gt;');
    expect(added.html).not.toContain('订单<服务>');
    const api = await server.db('window_apis').where({ identifier }).first();
    expect(api).toMatchObject({ window_id: zhengzhou.id, scopes: ['orders:read', 'orders:write'], access_token_ttl_seconds: 3600, other_windows: false });
    expect(await auditOf('admin.createApi', `api:${api.id}`)).toMatchObject({ outcome: 'success', window_id: zhengzhou.id });

    const edited = await send(b, added, `/admin/apis/${api.id}`, { scopes: 'orders:read', accessTokenTtlSeconds: '600', otherWindows: 'on' });
    expect(edited.status).toBe(200);
    expect(await server.db('window_apis').where({ id: api.id }).first()).toMatchObject({ scopes: ['orders:read'], access_token_ttl_seconds: 600, other_windows: true });
    expect(await auditOf('admin.updateApi', `api:${api.id}`)).toMatchObject({ outcome: 'success' });

    // Bad input: the page again, by field, with what was typed, nothing changed.
    const bad = await send(b, edited, `${windowPath}/apis`, { identifier: 'javascript:alert(1)//"><script>x</script>', name: 'x', scopes: 'openid' });
    expect(bad.status).toBe(400);
    expect(bad.html).toContain('<li>接口标识：');
    expect(bad.html).toContain('<li>权限范围（第 1 个）：');
    expect(bad.html).not.toContain('<script>x</script>');
    const badTtl = await send(b, edited, `/admin/apis/${api.id}`, { accessTokenTtlSeconds: '5' });
    expect(badTtl.status).toBe(400);
    expect(badTtl.html).toContain('<li>令牌有效期：');
    expect(await count()).toBe(before + 1);
    // Without the CSRF field: refused, nothing changed.
    expect((await send(b, edited, `/admin/apis/${api.id}/delete`, {}, ['csrf'])).status).toBe(403);
    expect((await send(b, edited, `${windowPath}/apis`, { identifier: `${identifier}/2`, name: 'x', scopes: 'x:y' }, ['csrf'])).status).toBe(403);
    expect(await count()).toBe(before + 1);

    const deleted = await send(b, edited, `/admin/apis/${api.id}/delete`);
    expect(deleted.status).toBe(200);
    expect(deleted.html).not.toContain(identifier);
    expect(await count()).toBe(before);
    expect(await auditOf('admin.deleteApi', `api:${api.id}`)).toMatchObject({ outcome: 'success' });

    // Another window's API is not there for this administrator.
    const theirs = await server.db('window_apis').insert({ window_id: luoyang.id, identifier: `https://${unique('ly')}.example.cn/api`, name: 'ly', scopes: JSON.stringify(['ly:read']), access_token_ttl_seconds: 3600 }).returning('id');
    const csrf = /name="csrf" value="([^"]+)"/.exec(deleted.html)![1]!;
    const forged = await b.fetch(new URL(`/admin/apis/${theirs[0].id}`, server.url), {
      method: 'POST',
      redirect: 'manual',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ csrf: decode(csrf), name: 'taken over', scopes: 'ly:read', windowId: String(zhengzhou.id) }),
    });
    expect(forged.status).toBe(404);
    expect((await server.db('window_apis').where({ id: theirs[0].id }).first()).name).toBe('ly');
    expect(server.errors).toEqual([]);
  });

  it('edits, rotates the secret of, disables and deletes a client, each on record', async () => {
    const admin = await newAdmin([{ role: 'window_admin', windowId: zhengzhou.id }]);
    const { b } = await signInToConsole(admin);
    const windowPath = `/admin/windows/${zhengzhou.id}`;
    const shown = await send(b, await open(b, windowPath), `${windowPath}/clients`, { name: unique('改动'), redirectUris: 'https://rp.example.cn/cb' });
    const clientId = clientIdOf(shown.html)!;
    const firstSecret = secretOf(shown.html)!;
    const clientPath = `/admin/clients/${encodeURIComponent(clientId)}`;
    const actor = { actor_type: 'account', actor_id: admin.account.id, outcome: 'success', window_id: zhengzhou.id };

    const edited = await send(b, await open(b, clientPath), clientPath, { redirectUris: 'https://rp.example.cn/cb\r\nhttps://rp.example.cn/second' });
    expect({ path: edited.url.pathname, status: edited.status }).toEqual({ path: clientPath, status: 200 });
    expect(edited.html).toContain('已保存。');
    expect(edited.html).toContain('https://rp.example.cn/cb\nhttps://rp.example.cn/second</textarea>');
    expect((await getClient(server.db, clientId))!.redirectUris).toEqual(['https://rp.example.cn/cb', 'https://rp.example.cn/second']);
    const editRecord = await auditOf('admin.updateClient', `client:${clientId}`);
    expect(editRecord).toMatchObject(actor);
    expect(editRecord.before.redirectUris).toEqual(['https://rp.example.cn/cb']);
    expect(editRecord.after.redirectUris).toEqual(['https://rp.example.cn/cb', 'https://rp.example.cn/second']);

    // A bad edit names the field, keeps the text, and changes nothing.
    const badEdit = await send(b, edited, clientPath, { redirectUris: 'https://rp.example.cn/cb#fragment' });
    expect(badEdit.status).toBe(400);
    expect(badEdit.html).toContain('<li>回调地址（第 1 个）：');
    expect(badEdit.html).toContain('https://rp.example.cn/cb#fragment</textarea>');
    expect((await getClient(server.db, clientId))!.redirectUris).toEqual(['https://rp.example.cn/cb', 'https://rp.example.cn/second']);

    expect(formEntries(edited.html, `${clientPath}/secret`).entries).toEqual([['graceHours', '24']]);
    const rotated = await confirmed(b, `${clientPath}/secret`, '?graceHours=0');
    expect(rotated.status).toBe(200);
    const secondSecret = secretOf(rotated.html)!;
    expect(secondSecret).toMatch(/^\S{20,}$/);
    expect(secondSecret).not.toBe(firstSecret);
    expect(rotated.html).not.toContain(firstSecret);
    expect(await auditOf('admin.rotateClientSecret', `client:${clientId}`)).toMatchObject(actor);
    const afterRotation = await open(b, clientPath);
    expect(afterRotation.html).toContain('密钥最近更换于');
    expect(afterRotation.html).not.toContain(secondSecret);

    const disabled = await send(b, afterRotation, `${clientPath}/disable`);
    expect({ path: disabled.url.pathname, status: disabled.status }).toEqual({ path: clientPath, status: 200 });
    expect(disabled.html).toContain('已停用');
    expect(disabled.html).toContain(`action="${clientPath}/enable"`);
    expect((await getClient(server.db, clientId))!.disabled).toBe(true);
    expect(await auditOf('admin.disableClient', `client:${clientId}`)).toMatchObject(actor);

    const deleted = await confirmed(b, `${clientPath}/delete`);
    expect({ path: deleted.url.pathname, status: deleted.status }).toEqual({ path: windowPath, status: 200 });
    expect(deleted.html).toContain('已保存。');
    expect(deleted.html).not.toContain(clientId);
    expect(await getClient(server.db, clientId)).toBeUndefined();
    expect(await auditOf('admin.deleteClient', `client:${clientId}`)).toMatchObject(actor);
    expect((await open(b, clientPath)).status).toBe(404);

    const everything = JSON.stringify(await server.db('audit_events').select('before', 'after'));
    expect(everything).not.toContain(firstSecret);
    expect(everything).not.toContain(secondSecret);
    expect(server.errors).toEqual([]);
  });
});

describe('administrators, keys and the audit trail', () => {
  it('lets a security_admin grant audit_admin and rotate keys, and an audit_admin read of it', async () => {
    const security = await newAdmin([{ role: 'security_admin' }]);
    const { b } = await signInToConsole(security);
    const grantee = await createAccount(server.db, { username: unique('auditor'), displayName: '审计员', password: 'Anyang-Yin-Ruins-1300' }, PASSWORD_POLICIES.mlps);

    const administrators = await open(b, '/admin/administrators');
    expect(administrators.html).toContain(security.account.username);
    const granted = await send(b, administrators, '/admin/administrators/grants', { account: grantee.username, role: 'audit_admin', windowId: '' });
    expect({ path: granted.url.pathname, status: granted.status }).toEqual({ path: '/admin/administrators', status: 200 });
    expect(granted.html).toContain('已保存。');
    expect(granted.html).toContain(grantee.username);
    expect(await rolesOf(server.db, grantee.id)).toEqual([{ role: 'audit_admin', windowId: null }]);
    expect(await auditOf('admin.grantRole', `account:${grantee.id}`)).toMatchObject({ actor_id: security.account.id, outcome: 'success' });

    // A role this administrator may not hand out: refused, and nothing changes.
    const refused = await send(b, granted, '/admin/administrators/grants', { account: grantee.username, role: 'window_admin', windowId: String(zhengzhou.id) });
    expect(refused.status).toBe(403);
    expect(await rolesOf(server.db, grantee.id)).toEqual([{ role: 'audit_admin', windowId: null }]);

    const keysBefore = await listKeys(server.db);
    const keysPage = await open(b, '/admin/keys');
    expect(keysPage.status).toBe(200);
    const rotated = await send(b, keysPage, '/admin/keys/rotations', { delaySeconds: '3600' });
    expect({ path: rotated.url.pathname, status: rotated.status }).toEqual({ path: '/admin/keys', status: 200 });
    expect(rotated.html).toContain('已发布，尚未签名');
    const made = (await listKeys(server.db)).filter((k) => !keysBefore.some((old) => old.kid === k.kid));
    expect(made.length).toBeGreaterThan(0);
    for (const k of made.filter((k) => k.use === 'sig')) expect(rotated.html).toContain(k.kid);
    const rotation = await server.db('audit_events').where({ event: 'admin.rotateKeys', actor_id: security.account.id }).first();
    expect(rotation).toMatchObject({ outcome: 'success' });

    // The security_admin has no audit trail; the audit_admin does.
    expect((await open(b, '/admin/audit')).status).toBe(403);
    const auditAdmin = await newAdmin([{ role: 'audit_admin' }]);
    const auditor = await signInToConsole(auditAdmin);
    expect(auditor.home.html).toContain('href="/admin/audit"');
    const trail = await open(auditor.b, '/admin/audit');
    expect(trail.status).toBe(200);
    // In words: the events, and people by username and name (their ids in titles).
    expect(trail.html).toContain('<span title="admin.grantRole">管理操作：授予管理员角色</span>');
    expect(trail.html).toContain(`<span title="${grantee.id}">${grantee.username}</span> <span class="muted">审计员</span>`);
    expect(trail.html).toContain('<span title="admin.rotateKeys">管理操作：更换签名密钥</span>');
    expect(trail.html).toContain(`title="只看此操作者的记录: ${security.account.id}">${security.account.username}</a>`);
    const filtered = await open(auditor.b, `/admin/audit?event=admin.grantRole&outcome=success`);
    expect(filtered.html).toContain(`<span title="${grantee.id}">${grantee.username}</span>`);
    expect(filtered.html).not.toContain('<span title="admin.rotateKeys">');
    const badFilter = await open(auditor.b, '/admin/audit?outcome=maybe');
    expect(badFilter.status).toBe(400);
    expect(badFilter.html).toContain('<li>结果：');
    expect((await open(auditor.b, '/admin/windows')).status).toBe(403);

    // The trail of a period as a download, streamed; the download is itself on record.
    const today = new Date();
    const tomorrow = new Date(today.getTime() + 86_400_000);
    const range = `from=${today.getFullYear() - 1}-01-01&to=${tomorrow.getFullYear()}-${String(tomorrow.getMonth() + 1).padStart(2, '0')}-${String(tomorrow.getDate()).padStart(2, '0')}`;
    const csv = await auditor.b.fetch(`${server.url}/admin/audit/export?${range}&event=admin.grantRole&format=csv`);
    expect(csv.status).toBe(200);
    expect(csv.headers.get('content-disposition')).toMatch(/^attachment; filename="audit-.*\.csv"$/);
    const lines = (await csv.text()).replace(/^\uFEFF/, '').trim().split('\n');
    expect(lines[0]).toBe('id,at,actor_type,actor_id,actor_ip,enterprise_id,window_id,event,target,outcome,reason,before,after,prev_hash,hash');
    expect(lines.slice(1).every((l) => l.includes(',admin.grantRole,'))).toBe(true);
    expect(lines.slice(1).some((l) => l.includes(`account:${grantee.id}`))).toBe(true);
    const jsonl = await auditor.b.fetch(`${server.url}/admin/audit/export?${range}&format=jsonl`);
    const records = (await jsonl.text()).trim().split('\n').map((l) => JSON.parse(l));
    expect(records.map((r) => r.event)).toContain('admin.rotateKeys');
    expect(Number((await server.db('audit_events').where({ event: 'audit.export', actor_id: auditAdmin.account.id }).count({ n: '*' }))[0]!.n)).toBe(2);
    expect((await auditor.b.fetch(`${server.url}/admin/audit/export?from=2026-13-01&to=2027-01-01`)).status).toBe(400);
    expect((await b.fetch(`${server.url}/admin/audit/export?${range}`)).status).toBe(403);
    expect(server.errors).toEqual([]);
  });
});

describe('signing out', () => {
  it('ends the provider session, so the next visit signs in again', async () => {
    const admin = await newAdmin([{ role: 'window_admin', windowId: zhengzhou.id }]);
    const { b } = await signInToConsole(admin);
    const consoleCookies = (await b.jar.getCookies(`${server.url}/admin`)).filter((c) => c.key.startsWith('admin_console')).map((c) => c.cookieString());
    expect(consoleCookies.length).toBeGreaterThan(0);

    const confirm = await send(b, await open(b, '/admin'), '/admin/logout');
    expect(confirm.url.pathname).toMatch(/^\/session\/end/);
    const out = asPage(await b.submit(confirm, '/session/end/confirm', { logout: 'yes' }));
    expect({ path: out.url.pathname, status: out.status }).toEqual({ path: '/admin/signed-out', status: 200 });
    expect(out.html).toContain('您已退出管理控制台');
    const sessions = await server.db('oidc_artifacts').where({ model: 'Session' }).whereRaw("payload->>'accountId' = ?", [admin.account.id]);
    expect(sessions).toEqual([]);

    // The console's old cookie no longer opens anything: its token ended with the session.
    const replay = await fetch(`${server.url}/admin`, { redirect: 'manual', headers: { cookie: consoleCookies.join('; ') } });
    expect(replay.status).toBe(302);
    expect(replay.headers.get('location')).toBe('/admin/login');

    const again = asPage(await b.visit(`${server.url}/admin`));
    expect(again.url.pathname).toMatch(/^\/interaction\//);
    expect(again.html).toContain('name="password"');
    expect(server.errors).toEqual([]);
  });
});

// A refusal inside the console: its layout (navigation, sign-out), a Chinese title and
// explanation, and a way back; never the people's error page or the API's English.
function refusedInConsole(page: Page, status: number, title: string, back: string) {
  expect(page.status, page.url.pathname).toBe(status);
  expect(page.html).toContain(`<h1>${title}</h1>`);
  expect(page.html).toContain('<nav>');
  expect(page.html).toContain('action="/admin/logout"');
  expect(page.html).toContain(`<a href="${back}" id="back">`);
  expect(page.html).not.toContain('出错了');
  expect(page.html).not.toContain('请返回来源网站重新开始');
  expect(page.html).not.toMatch(/this needs|you do not administer|no client with|administrators do not/);
}

describe('refusals inside the console', () => {
  it('answers a page the role does not allow with the roles that would, in the console, with a way home', async () => {
    const { b } = await signInToConsole(await newAdmin([{ role: 'window_admin', windowId: zhengzhou.id }]));
    const keys = await open(b, '/admin/keys');
    refusedInConsole(keys, 403, '您的角色不能执行此操作', '/admin');
    expect(keys.html).toContain('需要角色：安全管理员');
    expect(keys.html).toContain('返回控制台首页');
    expect(keys.html).toContain(`href="/admin/windows"`);

    const audit = await open(b, '/admin/audit');
    refusedInConsole(audit, 403, '您的角色不能执行此操作', '/admin');
    expect(audit.html).toContain('需要角色：审计管理员');

    // Another window's page: out of bounds, and back to their windows.
    refusedInConsole(await open(b, `/admin/windows/${luoyang.id}`), 403, '超出您的管理范围', '/admin/windows');
    // In English, the same page in English.
    const english = await open(b, '/admin/keys?lang=en');
    expect(english.html).toContain('<h1>Your role does not allow this</h1>');
    expect(english.html).toContain('Needs the role: Security administrator');
    expect(server.errors).toEqual([]);
  });

  it('answers an unknown id with a page of the console leading back to where the thing would be', async () => {
    const { b } = await signInToConsole(await newAdmin([{ role: 'system_admin' }]));
    refusedInConsole(await open(b, '/admin/clients/no-such-client'), 404, '找不到该对象', '/admin/windows');
    refusedInConsole(await open(b, '/admin/windows/2147483000'), 404, '找不到该对象', '/admin/windows');
    refusedInConsole(await open(b, '/admin/clients/no-such-client/delete'), 404, '找不到该对象', '/admin/windows');
    const year = await open(b, '/admin/figures?year=1900');
    expect(year.status).toBe(400);
    expect(year.html).toContain('<h1>请求有误</h1>');
    expect(year.html).toMatch(/<li>年份：[^<a-z]+<\/li>/);
    expect(year.html).toContain('<nav>');
    expect(server.errors).toEqual([]);
  });

  it('refuses granting oneself a role, and a role one may not grant, back on the administrators page', async () => {
    const security = await newAdmin([{ role: 'security_admin' }]);
    const { b } = await signInToConsole(security);
    const page = await open(b, '/admin/administrators');
    const own = await send(b, page, '/admin/administrators/grants', { account: security.account.username, role: 'audit_admin', windowId: '' });
    refusedInConsole(own, 403, '不能对自己的账号执行此操作', '/admin/administrators');
    expect(own.html).toContain('管理员不能更改自己的角色');
    expect(await rolesOf(server.db, security.account.id)).toEqual([{ role: 'security_admin', windowId: null }]);

    const other = await createAccount(server.db, { username: unique('grantee'), displayName: '受让人', password: 'Xinxiang-Tongmeng-1911' }, PASSWORD_POLICIES.mlps);
    const windowRole = await send(b, page, '/admin/administrators/grants', { account: other.username, role: 'window_admin', windowId: String(zhengzhou.id) });
    refusedInConsole(windowRole, 403, '您的角色不能执行此操作', '/admin/administrators');
    expect(windowRole.html).toContain('需要角色：系统管理员');
    expect(await rolesOf(server.db, other.id)).toEqual([]);

    // A form without its CSRF token: refused in the console, back to the form's page.
    const forged = await send(b, page, '/admin/administrators/grants', { account: other.username, role: 'audit_admin', windowId: '' }, ['csrf']);
    refusedInConsole(forged, 403, '表单已失效', '/admin/administrators');
    expect(await rolesOf(server.db, other.id)).toEqual([]);
    expect(server.errors).toEqual([]);
  });

  it('answers a sign-in that went wrong, and a forged sign-out, in the console’s frame without its navigation', async () => {
    const b = browser();
    const start = await b.fetch(`${server.url}/admin/login`, { redirect: 'manual' });
    await start.body?.cancel();
    const callback = await open(b, '/admin/callback?code=forged&state=not-the-state');
    expect(callback.status).toBe(400);
    expect(callback.html).toContain('<h1>登录未完成</h1>');
    expect(callback.html).toContain('<a href="/admin/login">重新登录</a>');
    expect(callback.html).not.toContain('<nav>');
    expect(callback.html).not.toContain('出错了');

    const res = await b.fetch(`${server.url}/admin/logout`, { method: 'POST', redirect: 'manual', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: 'csrf=forged' });
    const html = await res.text();
    expect(res.status).toBe(403);
    expect(html).toContain('<h1>表单已失效</h1>');
    expect(html).toContain('<a href="/admin" id="back">');
    expect(server.errors).toEqual([]);
  });
});

describe('confirming destructive actions', () => {
  it('asks before disabling a window, retiring a key, revoking a role or deleting a client, and a POST without the confirmation changes nothing', async () => {
    const system = await signInToConsole(await newAdmin([{ role: 'system_admin' }]));
    const security = await signInToConsole(await newAdmin([{ role: 'security_admin' }]));
    const window = await createWindow(server.db, { kind: 'service', name: unique('待停用机构') });
    const windowDisabled = async () => (await listWindows(server.db)).find((w) => w.id === window.id)!.disabled;
    const windowPath = `/admin/windows/${window.id}`;
    const clientName = unique('待删除应用');
    const client = await createClient(server.db, { windowId: window.id, name: clientName, redirectUris: ['https://rp.example.cn/cb'] });
    const clientPath = `/admin/clients/${encodeURIComponent(client.clientId)}`;
    const [pending] = await rotateSigningKeys(server.db, Buffer.from(server.masterKey, 'base64'), 3600);
    const keyPath = `/admin/keys/${encodeURIComponent(pending!.kid)}/retire`;
    const auditor = await createAccount(server.db, { username: unique('revokee'), displayName: '待撤销', password: 'Jiaozuo-Yuntai-Mountain-1' }, PASSWORD_POLICIES.mlps);
    await grantRole(server.db, { accountId: auditor.id, role: 'audit_admin' });
    const revocation = `/admin/administrators/revocations`;

    // The pages lead to the question, not to the change.
    const windowPage = await open(system.b, windowPath);
    expect(windowPage.html).toContain(`<a href="${windowPath}/disable" class="button danger">停用窗口平台</a>`);
    expect(windowPage.html).not.toContain(`action="${windowPath}/disable"`);
    const clientPage = await open(system.b, clientPath);
    expect(clientPage.html).toContain(`<a href="${clientPath}/delete" class="button danger">删除客户端</a>`);
    const keysPage = await open(security.b, '/admin/keys');
    expect(keysPage.html).toContain(`<a href="${keyPath}" class="button danger">`);
    const administrators = await open(security.b, '/admin/administrators');
    expect(formEntries(administrators.html, revocation).entries).not.toContainEqual(['csrf', expect.anything()]);

    const asks = [
      { b: system.b, path: `${windowPath}/disable`, query: '', question: `确定要停用窗口平台“${window.name}”吗？` },
      { b: system.b, path: `${clientPath}/delete`, query: '', question: `确定要删除客户端“${clientName}”吗？`, irreversible: true },
      { b: system.b, path: `${clientPath}/secret`, query: '?graceHours=0', question: '的密钥吗？' },
      { b: security.b, path: keyPath, query: '', question: `确定要停用签名密钥 ${pending!.kid} 吗？`, irreversible: true },
      { b: security.b, path: revocation, query: `?account=${auditor.id}&role=audit_admin`, question: `确定要撤销“${auditor.username}”的审计管理员角色吗？` },
    ];
    const before = async () => ({
      window: await windowDisabled(),
      client: await getClient(server.db, client.clientId),
      key: (await listKeys(server.db)).find((k) => k.kid === pending!.kid)?.retiredAt ?? null,
      roles: await rolesOf(server.db, auditor.id),
      records: (await server.db('audit_events').where('event', 'in', ['admin.disableWindow', 'admin.deleteClient', 'admin.rotateClientSecret', 'admin.retireKey', 'admin.revokeRole']).count({ n: '*' }))[0]!.n,
    });
    const untouched = await before();
    for (const ask of asks) {
      const asking = await open(ask.b, `${ask.path}${ask.query}`);
      expect({ path: ask.path, status: asking.status }).toEqual({ path: ask.path, status: 200 });
      expect(asking.html).toContain(ask.question);
      expect(asking.html).toContain('<button type="submit" class="danger">');
      expect(asking.html).toMatch(/<a href="[^"]+" class="cancel">取消<\/a>/);
      if (ask.irreversible) expect(asking.html).toContain('此操作不可撤销');
      // The old one-click POST (CSRF, no confirmation): the question again, nothing done.
      const oneClick = await send(ask.b, asking, ask.path, {}, ['confirm']);
      expect({ path: ask.path, status: oneClick.status }).toEqual({ path: ask.path, status: 400 });
      expect(oneClick.html).toContain('此操作需要确认，尚未执行。');
      expect(oneClick.html).toContain('name="confirm" value="yes"');
      // Confirmed, but without the CSRF token: refused.
      expect((await send(ask.b, asking, ask.path, {}, ['csrf'])).status).toBe(403);
    }
    expect(await before()).toEqual(untouched);

    // Confirmed: done, each on record.
    for (const ask of asks.filter((a) => !a.path.endsWith('/delete'))) {
      const done = await confirmed(ask.b, ask.path, ask.query);
      expect({ path: ask.path, status: done.status }).toEqual({ path: ask.path, status: 200 });
    }
    expect((await confirmed(system.b, `${clientPath}/delete`)).url.pathname).toBe(windowPath);
    expect(await windowDisabled()).toBe(true);
    expect(await getClient(server.db, client.clientId)).toBeUndefined();
    expect((await listKeys(server.db)).find((k) => k.kid === pending!.kid)?.retiredAt).toBeTruthy();
    expect(await rolesOf(server.db, auditor.id)).toEqual([]);
    for (const event of ['admin.disableWindow', 'admin.deleteClient', 'admin.rotateClientSecret', 'admin.retireKey', 'admin.revokeRole']) {
      expect(await server.db('audit_events').where({ event, outcome: 'success' }).first(), event).toBeDefined();
    }
    // Twice: what is gone is not found, inside the console.
    refusedInConsole(await open(security.b, keyPath), 404, '找不到该对象', '/admin/keys');
    expect(server.errors).toEqual([]);
  });
});

describe('accounts, for security administrators', () => {
  const password = 'Luoyang-Peony-Garden-2026';
  const person = async (label: string, contact: { phone?: string; email?: string } = {}) =>
    createAccount(server.db, { username: unique(label), displayName: `${label}用户`, password, ...contact }, PASSWORD_POLICIES.mlps);
  const statusOf = async (id: string) => (await server.db('accounts').where({ id }).first('status')).status;
  const sessionsOf = async (id: string) => server.db('oidc_artifacts').where({ model: 'Session' }).whereRaw("payload->>'accountId' = ?", [id]);

  it('finds an account by username, phone number or email, and answers worst strings plainly', async () => {
    const security = await signInToConsole(await newAdmin([{ role: 'security_admin' }]));
    expect(security.home.html).toContain('<a href="/admin/accounts">账号</a>');
    const phone = `139${String(crypto.randomInt(10_000_000, 99_999_999))}`;
    const email = `${unique('found')}@example.cn`;
    const found = await person('found', { phone, email });
    const search = await open(security.b, '/admin/accounts');
    expect(search.html).toContain('按用户名、手机号或邮箱查找账号');
    for (const q of [found.username, found.username.toUpperCase(), phone, `+86 ${phone}`, email, email.toUpperCase()]) {
      const answer = await open(security.b, `/admin/accounts?q=${encodeURIComponent(q)}`);
      expect({ q, status: answer.status }).toEqual({ q, status: 200 });
      expect(answer.html).toContain(`<a href="/admin/accounts/${found.id}">${found.username}</a>`);
    }
    for (const q of ['constructor', '__proto__', '<script>alert(1)</script>', "' OR 1=1 --", '13800000000', 'nobody@example.cn']) {
      const answer = await open(security.b, `/admin/accounts?q=${encodeURIComponent(q)}`);
      expect({ q, status: answer.status }).toEqual({ q, status: 200 });
      expect(answer.html).toContain('id="no-account"');
      expect(answer.html).not.toContain('<script>alert(1)</script>');
      expect(answer.html).not.toContain('href="/admin/accounts/');
    }
    for (const q of ['x'.repeat(300), 'a\u0000b', 'tab\there', 'rtl\u202Eoverride']) {
      const answer = await open(security.b, `/admin/accounts?q=${encodeURIComponent(q)}`);
      expect({ q: q.slice(0, 20), status: answer.status }).toEqual({ q: q.slice(0, 20), status: 400 });
      expect(answer.html).toMatch(/<li>搜索：[^<a-z]+<\/li>/);
      expect(answer.html).toContain('id="account-search"');
    }

    // Not a page of the system_admin's, nor a link of theirs.
    const system = await signInToConsole(await newAdmin([{ role: 'system_admin' }]));
    expect(system.home.html).not.toContain('href="/admin/accounts"');
    const refused = await open(system.b, `/admin/accounts?q=${found.username}`);
    refusedInConsole(refused, 403, '您的角色不能执行此操作', '/admin');
    expect(refused.html).toContain('需要角色：安全管理员');
    expect(server.errors).toEqual([]);
  });

  it('shows an account with masked contacts, its lock, roles and second factor', async () => {
    const security = await signInToConsole(await newAdmin([{ role: 'security_admin' }]));
    const phone = `137${String(crypto.randomInt(10_000_000, 99_999_999))}`;
    const shown = await person('shown', { phone, email: `${unique('shown')}@example.cn` });
    await grantRole(server.db, { accountId: shown.id, role: 'window_admin', windowId: zhengzhou.id });
    const page = await open(security.b, `/admin/accounts/${shown.id}`);
    expect(page.status).toBe(200);
    expect(page.html).toContain(`<h1>${shown.username}</h1>`);
    expect(page.html).toContain('shown用户');
    expect(page.html).toContain(`${phone.slice(0, 3)}****${phone.slice(-4)}`);
    expect(page.html).not.toContain(phone);
    expect(page.html).toContain('s***@example.cn');
    expect(page.html).not.toContain(shown.email!);
    expect(page.html).toMatch(/id="account-status">正常</);
    expect(page.html).toMatch(/id="account-lock">未锁定</);
    expect(page.html).toContain(`窗口平台管理员 #${zhengzhou.id}`);
    expect(page.html).toContain('<td>未开启</td>');
    expect(page.html).toContain(`<a href="/admin/accounts/${shown.id}/disable" class="button danger">停用账号</a>`);
    expect(page.html).toContain(`<a href="/admin/accounts/${shown.id}/end-sessions" class="button danger">结束所有会话</a>`);
    refusedInConsole(await open(security.b, `/admin/accounts/${crypto.randomUUID()}`), 404, '找不到该对象', '/admin/accounts');
    refusedInConsole(await open(security.b, '/admin/accounts/not-a-uuid'), 400, '请求有误', '/admin/accounts');
    expect(server.errors).toEqual([]);
  });

  it('disables (signing the person out everywhere, their windows told), enables, and refuses doing it twice harmlessly', async () => {
    const security = await newAdmin([{ role: 'security_admin' }]);
    const { b } = await signInToConsole(security);
    const target = await person('disabled');
    const site = await windowSite(server, { windowId: zhengzhou.id, name: unique('disable-site'), backchannel: true });
    const theirs = browser();
    await site.signIn(theirs, { identifier: target.username, password });
    expect(await sessionsOf(target.id)).toHaveLength(1);
    const path = `/admin/accounts/${target.id}`;

    // Without the confirmation, without CSRF: nothing.
    const asking = await open(b, `${path}/disable`);
    expect(asking.html).toContain(`确定要停用账号“${target.username}”吗？`);
    expect((await send(b, asking, `${path}/disable`, {}, ['confirm'])).status).toBe(400);
    refusedInConsole(await send(b, asking, `${path}/disable`, {}, ['csrf']), 403, '表单已失效', path);
    expect(await statusOf(target.id)).toBe('active');
    expect(await sessionsOf(target.id)).toHaveLength(1);

    const disabled = await confirmed(b, `${path}/disable`);
    expect({ path: disabled.url.pathname, status: disabled.status }).toEqual({ path, status: 200 });
    expect(disabled.html).toContain('已保存。');
    expect(disabled.html).toMatch(/id="account-status">已停用</);
    expect(disabled.html).toContain(`action="${path}/enable"`);
    expect(await statusOf(target.id)).toBe('disabled');
    expect(await sessionsOf(target.id)).toEqual([]);
    await eventually(() => site.logoutTokens.length > 0);
    const again = await site.authorize(theirs);
    expect(asPage(again.visit).html).toContain('name="password"');
    const refusedSignIn = await theirs.submit(again.visit, '/login', { identifier: target.username, password }, site.redirectUri);
    expect(refusedSignIn.kind).toBe('page');
    expect(await auditOf('admin.disableAccount', `account:${target.id}`)).toMatchObject({ actor_id: security.account.id, outcome: 'success' });

    // Twice: the same answer, still disabled.
    const twice = await send(b, asking, `${path}/disable`);
    expect({ path: twice.url.pathname, status: twice.status }).toEqual({ path, status: 200 });
    expect(await statusOf(target.id)).toBe('disabled');

    const enabled = await send(b, disabled, `${path}/enable`);
    expect({ path: enabled.url.pathname, status: enabled.status }).toEqual({ path, status: 200 });
    expect(enabled.html).toMatch(/id="account-status">正常</);
    expect(await statusOf(target.id)).toBe('active');
    expect((await send(b, disabled, `${path}/enable`)).status).toBe(200);
    expect((await site.signIn(browser(), { identifier: target.username, password })).claims.preferred_username).toBe(target.username);
    expect(await auditOf('admin.enableAccount', `account:${target.id}`)).toMatchObject({ actor_id: security.account.id, outcome: 'success' });
    await site.close();
    expect(server.errors).toEqual([]);
  });

  it('lifts a lockout so the person signs in again', async () => {
    const security = await newAdmin([{ role: 'security_admin' }]);
    const { b } = await signInToConsole(security);
    const target = await person('locked');
    const site = await windowSite(server, { windowId: zhengzhou.id, name: unique('lock-site') });
    const theirs = browser();
    let at = (await site.authorize(theirs)).visit;
    for (let i = 0; i < 5; i++) at = await theirs.submit(at, '/login', { identifier: target.username, password: 'not-the-password' }, site.redirectUri);
    const locked = await theirs.submit(at, '/login', { identifier: target.username, password }, site.redirectUri);
    expect(locked.kind).toBe('page');
    const path = `/admin/accounts/${target.id}`;
    const page = await open(b, path);
    expect(page.html).toMatch(/id="account-lock">已锁定，至 \d{4}-\d{2}-\d{2} \d{2}:\d{2}/);

    // Without CSRF: still locked.
    expect((await send(b, page, `${path}/unlock`, {}, ['csrf'])).status).toBe(403);
    expect((await open(b, path)).html).toMatch(/id="account-lock">已锁定/);

    const unlocked = await send(b, page, `${path}/unlock`);
    expect({ path: unlocked.url.pathname, status: unlocked.status }).toEqual({ path, status: 200 });
    expect(unlocked.html).toMatch(/id="account-lock">未锁定</);
    expect((await send(b, page, `${path}/unlock`)).status).toBe(200);
    expect((await site.signIn(browser(), { identifier: target.username, password })).askedForPassword).toBe(true);
    expect(await auditOf('admin.unlockAccount', `account:${target.id}`)).toMatchObject({ actor_id: security.account.id, outcome: 'success' });
    await site.close();
    expect(server.errors).toEqual([]);
  });

  it('ends every session of an account, so single sign-on asks for the password again', async () => {
    const security = await newAdmin([{ role: 'security_admin' }]);
    const { b } = await signInToConsole(security);
    const target = await person('ended');
    const site = await windowSite(server, { windowId: zhengzhou.id, name: unique('end-site'), backchannel: true });
    const theirs = browser();
    await site.signIn(theirs, { identifier: target.username, password });
    expect((await site.signIn(theirs, undefined)).askedForPassword).toBe(false);
    const path = `/admin/accounts/${target.id}`;

    const asking = await open(b, `${path}/end-sessions`);
    expect(asking.html).toContain(`确定要结束账号“${target.username}”的所有会话吗？`);
    expect((await send(b, asking, `${path}/end-sessions`, {}, ['confirm'])).status).toBe(400);
    expect((await send(b, asking, `${path}/end-sessions`, {}, ['csrf'])).status).toBe(403);
    expect(await sessionsOf(target.id)).toHaveLength(1);

    const ended = await confirmed(b, `${path}/end-sessions`);
    expect({ path: ended.url.pathname, status: ended.status }).toEqual({ path, status: 200 });
    expect(await sessionsOf(target.id)).toEqual([]);
    await eventually(() => site.logoutTokens.length > 0);
    expect((await site.authorize(theirs)).visit.kind).toBe('page');
    expect(await auditOf('admin.endAccountSessions', `account:${target.id}`)).toMatchObject({ actor_id: security.account.id, outcome: 'success', after: { sessions: 1 } });
    // Twice: nothing left to end, the same page.
    expect((await confirmed(b, `${path}/end-sessions`)).status).toBe(200);
    expect(await statusOf(target.id)).toBe('active');
    await site.close();
    expect(server.errors).toEqual([]);
  });

  it('refuses roles that may not, and disabling oneself, inside the console, changing nothing', async () => {
    const security = await newAdmin([{ role: 'security_admin' }]);
    const mine = await signInToConsole(security);
    const target = await person('guarded');
    const path = `/admin/accounts/${target.id}`;
    const csrf = decode(/name="csrf" value="([^"]+)"/.exec(mine.home.html)![1]!);
    const post = (b: Browser, action: string, token: string) =>
      b.fetch(`${server.url}${action}`, { method: 'POST', redirect: 'manual', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams({ csrf: token, confirm: 'yes' }) });

    for (const roles of [[{ role: 'window_admin' as const, windowId: zhengzhou.id }], [{ role: 'audit_admin' as const }], [{ role: 'system_admin' as const }]]) {
      const { b, home } = await signInToConsole(await newAdmin(roles));
      expect(home.html).not.toContain('href="/admin/accounts"');
      const token = decode(/name="csrf" value="([^"]+)"/.exec(home.html)![1]!);
      refusedInConsole(await open(b, path), 403, '您的角色不能执行此操作', '/admin');
      for (const action of ['disable', 'enable', 'unlock', 'end-sessions']) {
        const res = await post(b, `${path}/${action}`, token);
        const html = await res.text();
        expect({ role: roles[0]!.role, action, status: res.status }).toEqual({ role: roles[0]!.role, action, status: 403 });
        expect(html).toContain('需要角色：安全管理员');
        expect(html).toContain('<nav>');
      }
    }
    expect(await statusOf(target.id)).toBe('active');

    // Their own account: no button, and the POST refused.
    const own = await open(mine.b, `/admin/accounts/${security.account.id}`);
    expect(own.html).not.toContain(`/admin/accounts/${security.account.id}/disable`);
    const res = await post(mine.b, `/admin/accounts/${security.account.id}/disable`, csrf);
    const html = await res.text();
    expect(res.status).toBe(403);
    expect(html).toContain('<h1>不能对自己的账号执行此操作</h1>');
    expect(html).toContain(`<a href="/admin/accounts/${security.account.id}" id="back">`);
    expect(await statusOf(security.account.id)).toBe('active');
    expect(await server.db('audit_events').where({ event: 'admin.disableAccount', target: `account:${target.id}`, outcome: 'success' })).toEqual([]);
    expect(server.errors).toEqual([]);
  });
});
