import crypto from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createAccount } from '../../src/accounts/accounts.ts';
import { rolesOf, type AdminRole } from '../../src/accounts/admin-roles.ts';
import { PASSWORD_POLICIES } from '../../src/accounts/password-policy.ts';
import { listKeys } from '../../src/oidc/keys.ts';
import { createClient, getClient } from '../../src/windows/clients.ts';
import { listWindows, type Window } from '../../src/windows/windows.ts';
import { makeAdmin, signInAtProvider, type TestAdmin } from '../helpers/admin.ts';
import { browser, type Browser, type Visit } from '../helpers/browser.ts';
import { startTestServer, type TestServer } from '../helpers/server.ts';

// The admin console (/admin) over HTTP, as a browser uses it: signing in through the
// provider (password, then TOTP), pages and forms for each role, window administrators
// kept to their window, validation that changes nothing, the CSRF gate, the audit
// record of every change, and signing out of the provider.

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
      [`${clientPath}/delete`, {}],
      [`${clientPath}/secret`, { graceHours: '0' }],
      [clientPath, { name: 'forged' }],
    ] as const) {
      const answer = await send(b, detail, action, changes, ['csrf']);
      expect({ action, status: answer.status }).toEqual({ action, status: 403 });
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

    const rotated = await send(b, edited, `${clientPath}/secret`, { graceHours: '0' });
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

    const deleted = await send(b, disabled, `${clientPath}/delete`);
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
    expect(trail.html).toContain('admin.grantRole');
    expect(trail.html).toContain(`account:${grantee.id}`);
    expect(trail.html).toContain('admin.rotateKeys');
    expect(trail.html).toContain(security.account.id);
    const filtered = await open(auditor.b, `/admin/audit?event=admin.grantRole&outcome=success`);
    expect(filtered.html).toContain(`account:${grantee.id}`);
    expect(filtered.html).not.toContain('admin.rotateKeys');
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
