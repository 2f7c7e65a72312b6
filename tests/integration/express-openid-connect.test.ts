import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createClient } from '../../src/windows/clients.ts';
import { browser } from '../helpers/browser.ts';
import { chinesePage, hasChromium, launchChromium } from '../helpers/chromium.ts';
import { anotherWindowForChromium, asksForPassword, exampleApi, EXAMPLES, expectedEnterprise, forgedLogoutTokens, passThroughLogout, person, setUpPerson, signOutAtAnotherWindow, startExample, startSameSiteServer, typePassword, type ExampleProcess } from '../helpers/examples.ts';
import { freePort } from '../helpers/processes.ts';
import type { TestServer } from '../helpers/server.ts';
import { eventually } from '../helpers/wait.ts';
import { windowSite, type WindowSite } from '../helpers/window-site.ts';

// docs/examples/express-openid-connect/app.js, the guide's Express site, as a process of
// its own against the real server.

let server: TestServer;
let site: ExampleProcess | undefined;
let quietSite: ExampleProcess | undefined;
let frontSite: ExampleProcess | undefined;
let front: string;
let windowId: number;
let other: WindowSite;
let base: string;
let quiet: string;
let clientId: string;
let enterpriseId: string;
let api: ExampleProcess | undefined;

// The example as a process with a client of its own; `backchannel`: whether the client
// has a back-channel logout URI; `apiIdentifier`: the window's API its tokens are for;
// `frontchannel`: whether the client has a front-channel logout URI.
async function startSite(windowId: number, name: string, backchannel: boolean, apiIdentifier?: string, frontchannel = false) {
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const created = await createClient(server.db, {
    windowId,
    name,
    redirectUris: [`${url}/callback`],
    postLogoutRedirectUris: [`${url}/signed-out`],
    ...(backchannel && { backchannelLogoutUri: `${url}/backchannel-logout` }),
    ...(frontchannel && { frontchannelLogoutUri: `${url}/frontchannel-logout` }),
  });
  const env = {
    ISSUER: server.url,
    CLIENT_ID: created.clientId,
    CLIENT_SECRET: created.clientSecret!,
    BASE_URL: url,
    PORT: String(port),
    SESSION_SECRET: 'a-test-secret-of-at-least-32-characters',
    ...(apiIdentifier && { API_IDENTIFIER: apiIdentifier }),
  };
  return { url, clientId: created.clientId, process: await startExample(process.execPath, [`${EXAMPLES}/express-openid-connect/app.js`], env, `${url}/`) };
}

beforeAll(async () => {
  server = await startSameSiteServer();
  const given = await setUpPerson(server);
  windowId = given.windowId;
  enterpriseId = given.enterprise.id;
  other = await windowSite(server, { windowId, name: 'other-window' });
  const started = await exampleApi(server, windowId);
  api = started.process;
  ({ url: base, clientId, process: site } = await startSite(windowId, 'express-openid-connect 示例', true, started.api.identifier));
  // The same site without back-channel logout: it learns of a sign-out elsewhere only
  // when its refresh token is refused.
  ({ url: quiet, process: quietSite } = await startSite(windowId, 'express-openid-connect 示例（无后端通道退出）', false));
  // With front-channel logout only.
  ({ url: front, process: frontSite } = await startSite(windowId, 'express-openid-connect 示例（前端通道退出）', false, undefined, true));
});

afterAll(async () => {
  await site?.stop();
  await quietSite?.stop();
  await frontSite?.stop();
  await api?.stop();
  await other?.close();
  await server?.close();
});

const me = async (you: ReturnType<typeof browser>, at = base) => {
  const res = await you.fetch(`${at}/me`, { redirect: 'manual' });
  return res.status === 200 ? ((await res.json()) as Record<string, unknown>) : undefined;
};

describe('the express-openid-connect example', () => {
  it('signs a person in and sees their claims, the enterprise among them', async () => {
    const you = browser();
    const login = await you.visit(`${base}/login`);
    const at = await typePassword(you, login);
    expect(at.kind === 'page' && at.url.href).toBe(`${base}/`);
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
    expect(site!.output()).not.toContain('Error');
  });

  it('refreshes its tokens with the refresh token bound to the sign-in session', async () => {
    const you = browser();
    await typePassword(you, await you.visit(`${base}/login`));
    const res = await you.fetch(`${base}/refresh`, { method: 'POST' });
    expect(res.status).toBe(200);
    expect(((await res.json()) as { expires_in: number }).expires_in).toBeGreaterThan(0);
  });

  it('calls the window’s API with its access token, a JWT for it (authorizationParams.resource), before and after a refresh', async () => {
    const you = browser();
    await typePassword(you, await you.visit(`${base}/login`));
    const sub = (await me(you))!.sub;
    const expected = { caller: { sub, client_id: clientId, scope: 'orders:read', enterprise_id: enterpriseId }, orders: [] };
    const orders = async () => {
      const res = await you.fetch(`${base}/orders`);
      return [res.status, await res.json()];
    };
    expect(await orders()).toEqual([200, expected]);
    expect((await you.fetch(`${base}/refresh`, { method: 'POST' })).status).toBe(200);
    expect(await orders()).toEqual([200, expected]);
    expect(api!.output()).not.toContain('Error');
  });

  it('signs in without a password after another window (single sign-on)', async () => {
    const you = browser();
    await other.signIn(you, { identifier: person.username, password: person.password });
    const at = await you.visit(`${base}/login`);
    expect(asksForPassword(at)).toBe(false);
    expect((await me(you))?.preferred_username).toBe(person.username);
  });

  it('signs out through its /logout (RP-initiated, with id_token_hint) and back at its own page', async () => {
    const you = browser();
    await typePassword(you, await you.visit(`${base}/login`));
    const toProvider = await you.visit(`${base}/logout`, server.url);
    expect(toProvider.kind === 'redirect' && toProvider.to.searchParams.get('id_token_hint')).toEqual(expect.any(String));
    const at = await passThroughLogout(you, await you.visit(toProvider.kind === 'redirect' ? toProvider.to : '', `${base}/signed-out`), `${base}/signed-out`);
    expect(at.kind === 'redirect' && at.to.href).toBe(`${base}/signed-out`);
    expect(await me(you)).toBeUndefined();
    // The provider's session ended too: the next sign-in asks for the password.
    expect(asksForPassword(await you.visit(`${base}/login`))).toBe(true);
  });

  it('ends its session when the person signs out at another window (back-channel)', async () => {
    const you = browser();
    await typePassword(you, await you.visit(`${base}/login`));
    await signOutAtAnotherWindow(server, you, other);
    await eventually(async () => (await me(you)) === undefined);
  });

  it('is refused a refresh once the person signed out at another window (the refresh token is bound to the session), and ends its session', async () => {
    const you = browser();
    await typePassword(you, await you.visit(`${quiet}/login`));
    expect((await you.fetch(`${quiet}/refresh`, { method: 'POST' })).status).toBe(200);
    await signOutAtAnotherWindow(server, you, other);
    // No back-channel logout reached it: its own session is still there.
    expect((await me(you, quiet))?.preferred_username).toBe(person.username);
    const res = await you.fetch(`${quiet}/refresh`, { method: 'POST' });
    expect([res.status, await res.text()]).toEqual([401, 'signed out at the provider']);
    expect(await me(you, quiet)).toBeUndefined();
    expect(quietSite!.output()).not.toContain('Error');
  });

  it.skipIf(!hasChromium)('ends its session when the person signs out at another window, in chromium (front-channel), and only for its sid', async () => {
    const another = await anotherWindowForChromium(server, windowId);
    const chromium = await launchChromium();
    try {
      const page = await chinesePage(chromium);
      const text = async (url: string) => (await page.goto(url))!.text();
      await page.goto(`${front}/login`);
      await page.fill('#identifier', person.username);
      await page.fill('#password', person.password);
      await page.click('button[type=submit]:not(.secondary)');
      await page.waitForURL(`${front}/`);
      const sid = (JSON.parse(await text(`${front}/me`)) as { sid: string }).sid;

      const wrong: Record<string, string>[] = [{ iss: server.url, sid: 'not-its-sid' }, { iss: 'https://passport.example.gov.cn', sid }, { sid }];
      for (const query of wrong) {
        await page.goto(`${front}/frontchannel-logout?${new URLSearchParams(query)}`);
        expect(await text(`${front}/`), JSON.stringify(query)).toBe('signed in');
      }

      const framed = page.waitForResponse((res) => res.url().startsWith(`${front}/frontchannel-logout?`));
      await another.signOut(page);
      expect(Object.fromEntries(new URL((await framed).url()).searchParams)).toEqual({ iss: server.url, sid });
      expect(await text(`${front}/`)).toBe('signed out');
      expect(frontSite!.output()).not.toContain('Error');
    } finally {
      await chromium.close();
      await another.close();
    }
  });

  it('refuses a logout token that is not the provider’s, and keeps the session', async () => {
    const you = browser();
    await typePassword(you, await you.visit(`${base}/login`));
    const sid = String((await me(you))!.sid);
    for (const token of await forgedLogoutTokens(server.url, clientId, sid)) {
      const res = await fetch(`${base}/backchannel-logout`, { method: 'POST', body: new URLSearchParams({ logout_token: token }) });
      expect(res.status).toBe(400);
    }
    expect((await me(you))?.sid).toBe(sid);
    expect(server.errors).toEqual([]);
  });
});
