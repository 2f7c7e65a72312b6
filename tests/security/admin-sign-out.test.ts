import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeAdmin, signInAtProvider, type TestAdmin } from '../helpers/admin.ts';
import { browser, type Browser, type Visit } from '../helpers/browser.ts';
import { startTestServer, type TestServer } from '../helpers/server.ts';

// Defect 10 of issue 10: `GET /admin/logout` signed the administrator out of the
// console, so any page on any site could do it with a link or an image. Signing out is
// a POST with the CSRF token, like every other change; GET changes nothing.

let server: TestServer;
let admins = 0;

beforeAll(async () => {
  server = await startTestServer({ SIGN_IN_RATE_LIMIT: '1000/60' });
});

afterAll(async () => {
  await server?.close();
});

const page = (v: Visit) => {
  if (v.kind !== 'page') throw new Error(`expected a page, got a redirect to ${v.to.href}`);
  return v;
};

// A fresh administrator for each sign-in: each TOTP code counts once.
async function signedInConsole(): Promise<{ b: Browser; admin: TestAdmin; home: Extract<Visit, { kind: 'page' }> }> {
  const admin = await makeAdmin(server, `sign.out.${++admins}`, [{ role: 'system_admin' }]);
  const b = browser();
  const home = page(await signInAtProvider(b, await b.visit(`${server.url}/admin`), admin, '\0'));
  expect({ path: home.url.pathname, status: home.status }).toEqual({ path: '/admin', status: 200 });
  return { b, admin, home };
}

const consoleCookie = async (b: Browser) => (await b.jar.getCookies(`${server.url}/admin`)).find((c) => c.key === 'admin_console')?.value;
const providerSessions = async (admin: TestAdmin) => server.db('oidc_artifacts').where({ model: 'Session' }).whereRaw("payload->>'accountId' = ?", [admin.account.id]).count({ n: '*' });

describe('signing out of the admin console', () => {
  it('is not done by GET /admin/logout: the console and the provider session stay signed in', async () => {
    const { b, admin } = await signedInConsole();
    const cookie = await consoleCookie(b);
    const sessions = await providerSessions(admin);
    const res = await b.fetch(`${server.url}/admin/logout`, { redirect: 'manual' });
    expect(res.status).toBe(405);
    await res.body?.cancel();
    expect(await consoleCookie(b)).toBe(cookie);
    expect(await providerSessions(admin)).toEqual(sessions);
    const still = await b.fetch(`${server.url}/admin`, { redirect: 'manual' });
    expect(still.status).toBe(200);
    await still.body?.cancel();
  });

  it('refuses a POST without the CSRF token, or with another browser’s, and stays signed in', async () => {
    const { b } = await signedInConsole();
    const other = await signedInConsole();
    const foreign = /name="csrf" value="([^"]+)"/.exec(other.home.html)![1]!;
    const cookie = await consoleCookie(b);
    for (const body of [new URLSearchParams(), new URLSearchParams({ csrf: foreign })]) {
      const res = await b.fetch(`${server.url}/admin/logout`, { method: 'POST', redirect: 'manual', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body });
      expect(res.status).toBe(403);
      await res.body?.cancel();
    }
    expect(await consoleCookie(b)).toBe(cookie);
    const still = await b.fetch(`${server.url}/admin`, { redirect: 'manual' });
    expect(still.status).toBe(200);
    await still.body?.cancel();
  });

  it('is a form button on every console page, which signs out of the console and the provider', async () => {
    const { b, home } = await signedInConsole();
    const confirm = page(await b.submit(home, '/admin/logout'));
    expect(confirm.url.pathname).toMatch(/^\/session\/end/);
    expect(await consoleCookie(b)).toBeUndefined();
    const out = page(await b.submit(confirm, '/session/end/confirm', { logout: 'yes' }));
    expect({ path: out.url.pathname, status: out.status }).toEqual({ path: '/admin/signed-out', status: 200 });
    expect(server.errors).toEqual([]);
  });
});
