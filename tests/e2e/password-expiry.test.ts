import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { changePassword, createAccount } from '../../src/accounts/accounts.ts';
import { PASSWORD_POLICIES } from '../../src/accounts/password-policy.ts';
import { listWindows } from '../../src/windows/windows.ts';
import { browser, type Visit } from '../helpers/browser.ts';
import { startTestServer, type TestServer } from '../helpers/server.ts';
import { windowSite, type WindowSite } from '../helpers/window-site.ts';

// The mlps profile: a password older than 90 days is changed at the next sign-in,
// and none of the last five may come back.

let server: TestServer;
let site: WindowSite;
const first = 'Shaolin-Kungfu-495';
const alert = (v: Visit) => (v.kind === 'page' ? /role="alert">([^<]*)</.exec(v.html)?.[1] : undefined);

beforeAll(async () => {
  server = await startTestServer({ PASSWORD_POLICY: 'mlps' });
  const [w] = await listWindows(server.db);
  site = await windowSite(server, { windowId: w!.id, name: 'site' });
});

afterAll(async () => {
  await server?.close();
});

describe('password expiry and history (mlps)', () => {
  it('asks for a new password when the old one expired, telling the rule, and signs in with it', async () => {
    const account = await createAccount(server.db, { username: 'gao.fei', displayName: '高飞', password: first }, PASSWORD_POLICIES.mlps);
    await server.db('accounts').where({ id: account.id }).update({ password_changed_at: server.db.raw("now() - interval '91 days'") });
    const you = browser();
    const { visit, checks } = await site.authorize(you);
    const change = await you.submit(visit, '/login', { identifier: 'gao.fei', password: first }, site.redirectUri);
    expect(change.kind === 'page' && change.html).toContain('至少 3 类');
    const reused = await you.submit(change, '/password', { password: first, new_password: first, confirm_password: first }, site.redirectUri);
    expect(alert(reused)).toBe('密码：不能与最近 5 次用过的密码相同。');
    const differ = await you.submit(reused, '/password', { password: first, new_password: 'Yellow-River-Ferry-7', confirm_password: 'Yellow-River-Ferry-8' }, site.redirectUri);
    expect(alert(differ)).toBe('两次输入的新密码不一致。');
    const weak = await you.submit(differ, '/password', { password: first, new_password: 'yellowriverferry', confirm_password: 'yellowriverferry' }, site.redirectUri);
    expect(alert(weak)).toBe('密码：必须至少包含以下 3 类字符：小写字母、大写字母、数字、其他字符。');
    const done = await you.submit(weak, '/password', { password: first, new_password: 'Yellow-River-Ferry-7', confirm_password: 'Yellow-River-Ferry-7' }, site.redirectUri);
    expect((await site.redeem(done, checks)).claims()!.preferred_username).toBe('gao.fei');

    const again = await site.signIn(browser(), { identifier: 'gao.fei', password: 'Yellow-River-Ferry-7' });
    expect(again.askedForPassword).toBe(true);
    expect(again.claims.preferred_username).toBe('gao.fei');
  });

  it('refuses any of the last five passwords and accepts an older one', async () => {
    const account = await createAccount(server.db, { username: 'he.jun', displayName: '何军', password: 'History-Pass-1' }, PASSWORD_POLICIES.mlps);
    for (let i = 2; i <= 6; i++) await changePassword(server.db, account.id, `History-Pass-${i}`, PASSWORD_POLICIES.mlps);
    for (const reused of [6, 5, 4, 3, 2]) {
      await expect(changePassword(server.db, account.id, `History-Pass-${reused}`, PASSWORD_POLICIES.mlps)).rejects.toThrow(/last 5 passwords/);
    }
    await changePassword(server.db, account.id, 'History-Pass-1', PASSWORD_POLICIES.mlps);
    expect(Number((await server.db('password_history').where({ account_id: account.id }).count({ n: '*' }).first())?.n)).toBe(4);
    expect(server.errors).toEqual([]);
  });
});
