import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createAccount } from '../../src/accounts/accounts.ts';
import { PASSWORD_POLICIES } from '../../src/accounts/password-policy.ts';
import { listWindows } from '../../src/windows/windows.ts';
import { browser, type Visit } from '../helpers/browser.ts';
import { startTestServer, type TestServer } from '../helpers/server.ts';
import { windowSite, type WindowSite } from '../helpers/window-site.ts';

// Defect 6 of issue 10: signed in as one person, a window asks for prompt=login and
// another person signs in in the same browser. The provider ends the first session
// (confirmed by the browser) and resumes the sign-in; revoking the first person's grant
// used to delete the interaction being resumed too.

let server: TestServer;
let site: WindowSite;
const password = 'Longmen-Grottoes-493';
const html = (v: Visit) => (v.kind === 'page' ? v.html : `redirect to ${v.to.href}`);

beforeAll(async () => {
  server = await startTestServer();
  const [first] = await listWindows(server.db);
  site = await windowSite(server, { windowId: first!.id, name: 'switch' });
});

afterAll(async () => {
  await server?.close();
});

describe('switching account in one browser', () => {
  it('ends the first person’s session and hands the window the second person’s id_token', async () => {
    const bob = await createAccount(server.db, { username: 'bob.switch', displayName: '鲍勃', password }, PASSWORD_POLICIES.mlps);
    const alice = await createAccount(server.db, { username: 'alice.switch', displayName: '爱丽丝', password }, PASSWORD_POLICIES.mlps);
    const you = browser();
    expect((await site.signIn(you, { identifier: 'bob.switch', password })).claims.sub).toBe(bob.id);
    const bobGrants = await server.db('oidc_artifacts').where({ model: 'Grant' }).whereRaw("payload->>'accountId' = ?", [bob.id]).pluck('id');
    expect(bobGrants).toHaveLength(1);

    const { visit, checks } = await site.authorize(you, { prompt: 'login' });
    expect(html(visit)).toContain('name="password"');
    const confirm = await you.submit(visit, '/login', { identifier: 'alice.switch', password }, site.redirectUri);
    // The library's own page that ends the other person's session, submitted as a browser would.
    expect(html(confirm)).toContain('/session/end/confirm');
    const back = await you.submit(confirm, '/session/end/confirm', {}, site.redirectUri);
    // What the browser ends at: the window's callback, not an error page.
    expect(back.kind === 'page' ? /<main>[\s\S]*<\/main>/.exec(back.html)?.[0] : 'redirect').toBe('redirect');

    const tokens = await site.redeem(back, checks);
    expect(tokens.claims()).toMatchObject({ sub: alice.id });
    // Bob's grant went with his session; Alice's session is the browser's now.
    expect(Number((await server.db('oidc_artifacts').whereIn('id', bobGrants).count({ n: '*' }))[0]!.n)).toBe(0);
    const sessions = await server.db('oidc_artifacts').where({ model: 'Session' }).select('payload');
    expect(sessions.map((s) => (s.payload as { accountId?: string }).accountId)).toContain(alice.id);
    expect(sessions.map((s) => (s.payload as { accountId?: string }).accountId)).not.toContain(bob.id);
    expect(server.errors).toEqual([]);
  });
});
