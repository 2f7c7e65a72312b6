import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generate } from 'otplib';
import { createAccount } from '../../src/accounts/accounts.ts';
import { grantRole, revokeRole, rolesOf } from '../../src/accounts/admin-roles.ts';
import { PASSWORD_POLICIES } from '../../src/accounts/password-policy.ts';
import { ACR } from '../../src/oidc/claims.ts';
import { listWindows } from '../../src/windows/windows.ts';
import { browser, type Visit } from '../helpers/browser.ts';
import { startTestServer, type TestServer } from '../helpers/server.ts';
import { windowSite, type WindowSite } from '../helpers/window-site.ts';

// Administrator roles and their rules, and the second factor every administrator
// signs in with: set up inside the sign-in when they have none yet.

let server: TestServer;
let site: WindowSite;
const password = 'Songyang-Academy-484';
const html = (v: Visit) => (v.kind === 'page' ? v.html : `redirect to ${v.to.href}`);
const now = () => Math.floor(Date.now() / 1000);

beforeAll(async () => {
  server = await startTestServer();
  const [first] = await listWindows(server.db);
  site = await windowSite(server, { windowId: first!.id, name: 'site' });
});

afterAll(async () => {
  await server?.close();
});

describe('administrator roles', () => {
  it('keeps system and audit administration apart, scopes window_admin to a window, and grants once', async () => {
    const person = await createAccount(server.db, { username: 'admin.rules', displayName: '规则', password }, PASSWORD_POLICIES.mlps);
    const windows = await listWindows(server.db);
    await grantRole(server.db, { accountId: person.id, role: 'system_admin' });
    await expect(grantRole(server.db, { accountId: person.id, role: 'audit_admin' })).rejects.toThrow(/cannot be held together with system_admin/);
    await expect(grantRole(server.db, { accountId: person.id, role: 'system_admin' })).rejects.toThrow(/already/);
    await expect(grantRole(server.db, { accountId: person.id, role: 'window_admin' })).rejects.toThrow(/windowId: is needed for window_admin/);
    await expect(grantRole(server.db, { accountId: person.id, role: 'security_admin', windowId: windows[0]!.id })).rejects.toThrow(/only for it/);
    await expect(grantRole(server.db, { accountId: person.id, role: 'window_admin', windowId: 99999 })).rejects.toThrow(/no window with id 99999/);
    await grantRole(server.db, { accountId: person.id, role: 'window_admin', windowId: windows[1]!.id });
    await grantRole(server.db, { accountId: person.id, role: 'security_admin' });
    expect(await rolesOf(server.db, person.id)).toEqual([
      { role: 'system_admin', windowId: null },
      { role: 'window_admin', windowId: windows[1]!.id },
      { role: 'security_admin', windowId: null },
    ]);
    await revokeRole(server.db, { accountId: person.id, role: 'system_admin' });
    await grantRole(server.db, { accountId: person.id, role: 'audit_admin' });
    await expect(revokeRole(server.db, { accountId: person.id, role: 'system_admin' })).rejects.toThrow(/does not hold/);
  });
});

describe('administrators sign in with a second factor', () => {
  it('sets one up inside the sign-in, then asks for it every time', async () => {
    const admin = await createAccount(server.db, { username: 'first.admin', displayName: '管理员', password }, PASSWORD_POLICIES.mlps);
    await grantRole(server.db, { accountId: admin.id, role: 'security_admin' });
    const you = browser();
    const { visit, checks } = await site.authorize(you);
    const enrol = await you.submit(visit, '/login', { identifier: 'first.admin', password }, site.redirectUri);
    expect(html(enrol)).toContain('管理员必须使用两步验证登录');
    const secret = /<code>([A-Z2-7]+)<\/code>/.exec(html(enrol))![1]!;
    const codesPage = await you.submit(enrol, '/mfa-enrol', { password, code: await generate({ secret }) }, site.redirectUri);
    expect([...html(codesPage).matchAll(/<code>[0-9a-f-]{19}<\/code>/g)]).toHaveLength(10);
    const done = await you.submit(codesPage, '/mfa', { code: await generate({ secret, epoch: now() + 30 }) }, site.redirectUri);
    expect((await site.redeem(done, checks)).claims()).toMatchObject({ acr: ACR.mfa });

    const again = browser();
    const next = await site.authorize(again);
    const asked = await again.submit(next.visit, '/login', { identifier: 'first.admin', password }, site.redirectUri);
    expect(html(asked)).toContain('/mfa"');
  });

  it('steps up a password-only session of someone who became an administrator', async () => {
    const person = await createAccount(server.db, { username: 'later.admin', displayName: '后来', password }, PASSWORD_POLICIES.mlps);
    const you = browser();
    expect((await site.signIn(you, { identifier: 'later.admin', password })).claims.acr).toBe(ACR.password);
    await grantRole(server.db, { accountId: person.id, role: 'audit_admin' });
    const { visit } = await site.authorize(you);
    expect(html(visit)).toContain('管理员必须使用两步验证登录');
    expect(server.errors).toEqual([]);
  });
});
