import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generate } from 'otplib';
import { createAccount } from '../../src/accounts/accounts.ts';
import { grantRole, revokeRole, rolesOf } from '../../src/accounts/admin-roles.ts';
import { PASSWORD_POLICIES } from '../../src/accounts/password-policy.ts';
import { ACR } from '../../src/oidc/claims.ts';
import { listWindows } from '../../src/windows/windows.ts';
import { browser, formOf, type Visit } from '../helpers/browser.ts';
import { startTestServer, type TestServer } from '../helpers/server.ts';
import { windowSite, type WindowSite } from '../helpers/window-site.ts';

// Administrator roles and their rules, and the second factor every administrator
// signs in with: set up inside the sign-in when they have none yet.

let server: TestServer;
let site: WindowSite;
const password = 'Songyang-Academy-484';
const html = (v: Visit) => (v.kind === 'page' ? v.html : `redirect to ${v.to.href}`);

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
  it('sets one up inside the sign-in, where the code that confirmed it is the second factor, then asks for it every time', async () => {
    const admin = await createAccount(server.db, { username: 'first.admin', displayName: '管理员', password }, PASSWORD_POLICIES.mlps);
    await grantRole(server.db, { accountId: admin.id, role: 'security_admin' });
    const you = browser();
    const { visit, checks } = await site.authorize(you);
    const enrol = await you.submit(visit, '/login', { identifier: 'first.admin', password }, site.redirectUri);
    expect(html(enrol)).toContain('管理员必须使用两步验证登录');
    // Before recovery codes exist the form asks for the authenticator's code only.
    expect(html(enrol)).toContain('<label for="code">动态码（6 位数字）</label>');
    expect(html(enrol)).not.toContain('恢复码</label>');
    const secret = /<code>([A-Z2-7]+)<\/code>/.exec(html(enrol))![1]!;
    const code = await generate({ secret });
    const codesPage = await you.submit(enrol, '/mfa-enrol', { password, code }, site.redirectUri);
    expect([...html(codesPage).matchAll(/<code>[0-9a-f-]{19}<\/code>/g)]).toHaveLength(10);
    // No code is asked again: a button completes the sign-in, and leaving the page would lose the codes.
    expect(html(codesPage)).not.toContain('name="code"');
    expect(html(codesPage)).not.toMatch(/<a href="[^"]*lang=/);
    const done = await you.submit(codesPage, '/enrolled', {}, site.redirectUri);
    const claims = (await site.redeem(done, checks)).claims();
    expect(claims).toMatchObject({ acr: ACR.mfa });
    // Twice: the interaction is over, nothing more is signed in.
    const twice = await you.submit(codesPage, '/enrolled', {}, site.redirectUri);
    expect(twice.kind === 'page' && twice.status).toBeGreaterThanOrEqual(400);

    const again = browser();
    const next = await site.authorize(again);
    const asked = await again.submit(next.visit, '/login', { identifier: 'first.admin', password }, site.redirectUri);
    expect(html(asked)).toContain('/mfa"');
    // The enrolment's code stays used: it does not pass the next sign-in.
    const replayed = await again.submit(asked, '/mfa', { code }, site.redirectUri);
    expect(replayed.kind === 'page' && replayed.status).toBe(401);
    expect(server.errors).toEqual([]);
  });

  it('completes no sign-in out of order, with a forged form field, or from another sign-in', async () => {
    const admin = await createAccount(server.db, { username: 'order.admin', displayName: '次序', password }, PASSWORD_POLICIES.mlps);
    await grantRole(server.db, { accountId: admin.id, role: 'audit_admin' });
    const you = browser();
    const { visit } = await site.authorize(you);
    const uid = /\/interaction\/([^/]+)\/login/.exec(html(visit))![1]!;
    const csrf = formOf(html(visit), '/login').fields.csrf!;
    const post = (path: string, fields: Record<string, string>) =>
      you.fetch(`${server.url}/interaction/${uid}${path}`, { method: 'POST', redirect: 'manual', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams({ csrf, ...fields }) });
    const forged = { accountId: admin.id, secondFactorEnrolled: JSON.stringify({ accountId: admin.id, until: Date.now() + 60_000 }), result: 'login', factor: 'otp' };
    // Before the password: no button works, whatever the form says.
    for (const fields of [{}, forged]) {
      const early = await post('/enrolled', fields);
      expect(early.status).toBe(400);
      expect(await early.text()).toContain('验证已超时');
    }
    const enrol = await you.submit(visit, '/login', { identifier: 'order.admin', password }, site.redirectUri);
    expect(html(enrol)).toContain('/mfa-enrol');
    // After the password, before the enrolment: still nothing.
    expect((await post('/enrolled', forged)).status).toBe(400);
    expect((await post('/mfa', forged)).status).toBe(400);
    // Without the CSRF token.
    const noCsrf = await you.fetch(`${server.url}/interaction/${uid}/enrolled`, { method: 'POST', redirect: 'manual', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: '' });
    expect(noCsrf.status).toBe(403);
    // Another browser cannot finish this sign-in even after the enrolment.
    const secret = /<code>([A-Z2-7]+)<\/code>/.exec(html(enrol))![1]!;
    const codesPage = await you.submit(enrol, '/mfa-enrol', { password, code: await generate({ secret }) }, site.redirectUri);
    expect(html(codesPage)).toContain('/enrolled');
    const stranger = browser();
    const theirs = await stranger.fetch(`${server.url}/interaction/${uid}/enrolled`, { method: 'POST', redirect: 'manual', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams({ csrf }) });
    expect(theirs.status).toBeGreaterThanOrEqual(400);
    expect(theirs.status).toBeLessThan(500);
    // The page of the interaction shows the step it is at: the button, not the codes again.
    const shown = await you.visit(`${server.url}/interaction/${uid}`);
    expect(html(shown)).toContain('两步验证已启用');
    expect(html(shown)).not.toMatch(/<code>[0-9a-f-]{19}<\/code>/);
    const done = await you.submit(shown, '/enrolled', forged, site.redirectUri);
    expect(done.kind).toBe('redirect');
    const signIns = await server.db('audit_events').where({ event: 'sign_in', outcome: 'success', target: `account:${admin.id}` });
    expect(signIns).toHaveLength(1);
    expect(server.errors).toEqual([]);
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
