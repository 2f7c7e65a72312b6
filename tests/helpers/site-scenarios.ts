import { expect, it } from 'vitest';
import type { Page } from 'playwright-core';
import { browser, type Browser } from './browser.ts';
import { chinesePage, hasChromium, launchChromium } from './chromium.ts';
import { anotherWindowForChromium, asksForPassword, expectedEnterprise, forgedLogoutTokens, passThroughLogout, person, signOutAtAnotherWindow, typePassword, type ExampleProcess } from './examples.ts';
import type { TestServer } from './server.ts';
import { eventually } from './wait.ts';
import type { WindowSite } from './window-site.ts';

// What every server-side example site of the guide (docs/examples: openid-client,
// express-openid-connect, Flask + Authlib) must do, each run against its own process:
// the sign-in and its claims, refresh, the window's API, single sign-on, RP-initiated
// logout, both logout channels, and refusing forged logout tokens. Each site answers
// GET /me with its claims (JSON) while signed in, POST /refresh, GET /orders, GET
// /logout, POST /backchannel-logout and GET /frontchannel-logout.

export type SiteUnderTest = {
  server: TestServer;
  // A window site of the same window, for single sign-on and signing out elsewhere.
  other: WindowSite;
  windowId: number;
  enterpriseId: string;
  // The site with back-channel logout and the window's API.
  base: string;
  clientId: string;
  site: ExampleProcess;
  api: ExampleProcess;
  // The site as it is with front-channel logout only (before/after switch a client to it).
  front: { url: string; process: ExampleProcess; before?(): Promise<void>; after?(): Promise<void> };
  // The site without any logout channel, when the example has one to start.
  quiet?: { url: string; process: ExampleProcess };
};

export type SiteBehaviour = {
  // Where the site lands after the sign-in, and after the sign-out.
  landing: string;
  signedOut: string;
  // How the library sends resource= (for the test's name).
  resourceHow: string;
  // Whether its sign-out uses the ID token its last refresh gave (a refresh first).
  refreshBeforeLogout?: boolean;
  // In chromium: whether the page at `url` is signed in.
  signedIn(page: Page, url: string): Promise<boolean>;
  // Whether its front-channel route also refuses a request without sid.
  refusesMissingSid: boolean;
  // Whether the test starts the site without any logout channel too (SiteUnderTest.quiet).
  quietSite: boolean;
};

const claimsAt = async (you: Browser, at: string) => {
  const res = await you.fetch(`${at}/me`, { redirect: 'manual' });
  return res.status === 200 ? ((await res.json()) as Record<string, unknown>) : undefined;
};

export function siteScenarios(get: () => SiteUnderTest, b: SiteBehaviour): void {
  const me = (you: Browser, at = get().base) => claimsAt(you, at);
  const signIn = async (you: Browser, at = get().base) => typePassword(you, await you.visit(`${at}/login`));

  it('signs a person in and sees their claims, the enterprise among them', async () => {
    const { base, server, enterpriseId, site } = get();
    const you = browser();
    const at = await signIn(you);
    expect(at.kind === 'page' && at.url.href).toBe(`${base}${b.landing}`);
    const claims = (await me(you))!;
    expect(claims).toMatchObject({
      iss: server.url,
      name: person.displayName,
      preferred_username: person.username,
      email: person.email,
      phone_number: '+8613800138000',
      acr: 'urn:sme-passport:acr:password',
      amr: ['pwd'],
      enterprise: expectedEnterprise(enterpriseId),
    });
    expect(claims.sid).toEqual(expect.any(String));
    expect(site.output()).not.toContain('Error');
  });

  it('refreshes its tokens with the refresh token bound to the sign-in session', async () => {
    const you = browser();
    await signIn(you);
    const res = await you.fetch(`${get().base}/refresh`, { method: 'POST' });
    expect(res.status).toBe(200);
    expect(((await res.json()) as { expires_in: number }).expires_in).toBeGreaterThan(0);
  });

  it(`calls the window’s API with its access token, a JWT for it (${b.resourceHow}), before and after a refresh`, async () => {
    const { base, clientId, enterpriseId, api } = get();
    const you = browser();
    await signIn(you);
    const sub = (await me(you))!.sub;
    const expected = { caller: { sub, client_id: clientId, scope: 'orders:read', enterprise_id: enterpriseId }, orders: [] };
    const orders = async () => {
      const res = await you.fetch(`${base}/orders`);
      return [res.status, await res.json()];
    };
    expect(await orders()).toEqual([200, expected]);
    expect((await you.fetch(`${base}/refresh`, { method: 'POST' })).status).toBe(200);
    expect(await orders()).toEqual([200, expected]);
    expect(api.output()).not.toContain('Error');
  });

  it('signs in without a password after another window (single sign-on)', async () => {
    const { base, other } = get();
    const you = browser();
    await other.signIn(you, { identifier: person.username, password: person.password });
    expect(asksForPassword(await you.visit(`${base}/login`))).toBe(false);
    expect((await me(you))?.preferred_username).toBe(person.username);
  });

  it(`signs out through its /logout (RP-initiated, with the id_token_hint${b.refreshBeforeLogout ? ' its last refresh gave' : ''}), with no confirmation, and back at its own page`, async () => {
    const { base, server } = get();
    const you = browser();
    await signIn(you);
    if (b.refreshBeforeLogout) expect((await you.fetch(`${base}/refresh`, { method: 'POST' })).status).toBe(200);
    const toProvider = await you.visit(`${base}/logout`, server.url);
    expect(toProvider.kind === 'redirect' && toProvider.to.searchParams.get('id_token_hint')).toEqual(expect.any(String));
    const back = `${base}${b.signedOut}`;
    const at = await passThroughLogout(you, await you.visit(toProvider.kind === 'redirect' ? toProvider.to : '', back), back);
    expect(at.kind === 'redirect' && at.to.href).toBe(back);
    expect(await me(you)).toBeUndefined();
    // The provider's session ended too: the next sign-in asks for the password.
    expect(asksForPassword(await you.visit(`${base}/login`))).toBe(true);
  });

  it('ends its session when the person signs out at another window (back-channel)', async () => {
    const you = browser();
    await signIn(you);
    await signOutAtAnotherWindow(get().server, you, get().other);
    await eventually(async () => (await me(you)) === undefined);
  });

  if (b.quietSite) it('is refused a refresh once the person signed out at another window (the refresh token is bound to the session), and ends its session', async () => {
    const { server, other } = get();
    const quiet = get().quiet!;
    const you = browser();
    await signIn(you, quiet.url);
    expect((await you.fetch(`${quiet.url}/refresh`, { method: 'POST' })).status).toBe(200);
    await signOutAtAnotherWindow(server, you, other);
    // No back-channel logout reached it: its own session is still there.
    expect((await me(you, quiet.url))?.preferred_username).toBe(person.username);
    const res = await you.fetch(`${quiet.url}/refresh`, { method: 'POST' });
    expect([res.status, await res.text()]).toEqual([401, 'signed out at the provider']);
    expect(await me(you, quiet.url)).toBeUndefined();
    expect(quiet.process.output()).not.toContain('Error');
  });

  it.skipIf(!hasChromium)('ends its session when the person signs out at another window, in chromium (front-channel), and only for its sid', async () => {
    const { front, server, windowId } = get();
    await front.before?.();
    const another = await anotherWindowForChromium(server, windowId);
    const chromium = await launchChromium();
    try {
      const page = await chinesePage(chromium);
      await page.goto(`${front.url}/login`);
      await page.fill('#identifier', person.username);
      await page.fill('#password', person.password);
      await page.click('button[type=submit]:not(.secondary)');
      await page.waitForURL(`${front.url}${b.landing}`);
      const sid = (JSON.parse((await (await page.goto(`${front.url}/me`))!.text())) as { sid: string }).sid;

      const wrong: Record<string, string>[] = [{ iss: server.url, sid: 'not-its-sid' }, { iss: 'https://passport.example.gov.cn', sid }, { sid }, ...(b.refusesMissingSid ? [{ iss: server.url }] : [])];
      for (const query of wrong) {
        await page.goto(`${front.url}/frontchannel-logout?${new URLSearchParams(query)}`);
        expect(await b.signedIn(page, front.url), JSON.stringify(query)).toBe(true);
      }

      const framed = page.waitForResponse((res) => res.url().startsWith(`${front.url}/frontchannel-logout?`));
      await another.signOut(page);
      expect(Object.fromEntries(new URL((await framed).url()).searchParams)).toEqual({ iss: server.url, sid });
      expect(await b.signedIn(page, front.url)).toBe(false);
      expect(front.process.output()).not.toContain('Error');
    } finally {
      await chromium.close();
      await another.close();
      await front.after?.();
    }
  });

  it('refuses a logout token that is not the provider’s, and keeps the session', async () => {
    const { base, server, clientId } = get();
    const you = browser();
    await signIn(you);
    const sid = String((await me(you))!.sid);
    for (const token of await forgedLogoutTokens(server.url, clientId, sid)) {
      const res = await fetch(`${base}/backchannel-logout`, { method: 'POST', body: new URLSearchParams({ logout_token: token }) });
      expect(res.status).toBe(400);
    }
    expect((await me(you))?.sid).toBe(sid);
    expect(server.errors).toEqual([]);
  });
}
