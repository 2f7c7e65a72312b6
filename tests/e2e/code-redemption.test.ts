import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as oidc from 'openid-client';
import { createAccount } from '../../src/accounts/accounts.ts';
import { PASSWORD_POLICIES } from '../../src/accounts/password-policy.ts';
import { listWindows } from '../../src/windows/windows.ts';
import { browser, type Visit } from '../helpers/browser.ts';
import { startTestServer, type TestServer } from '../helpers/server.ts';
import { windowSite, type WindowSite } from '../helpers/window-site.ts';

// The token endpoint reads a code, its session and its grant and marks the code
// consumed in one statement (src/oidc/adapter.ts). What the library promised before must
// still hold: a failed redemption changes nothing, a code redeems once, and a session
// is saved when it changes.

const person = { username: 'li.na', displayName: '李娜', password: 'Yellow-River-1987' };

let server: TestServer;
let a: WindowSite;
let b: WindowSite;

beforeAll(async () => {
  server = await startTestServer();
  const [first, second] = await listWindows(server.db);
  a = await windowSite(server, { windowId: first!.id, name: 'redeem-a', backchannel: true });
  b = await windowSite(server, { windowId: second!.id, name: 'redeem-b' });
  await createAccount(server.db, person, PASSWORD_POLICIES.mlps);
});

afterAll(async () => {
  await a?.close();
  await b?.close();
  await server?.close();
});

const codeOf = (callback: Visit) => {
  if (callback.kind !== 'redirect') throw new Error(`expected a redirect, got a page (${callback.status})`);
  return new URL(callback.to).searchParams.get('code')!;
};

// A token request as a window's back end would send it, outside openid-client, so
// that each parameter can be wrong on purpose.
async function redeemRaw(site: WindowSite, fields: Record<string, string>) {
  const res = await fetch(`${server.url}/token`, {
    method: 'POST',
    headers: {
      authorization: `Basic ${Buffer.from(`${encodeURIComponent(site.clientId)}:${encodeURIComponent(site.clientSecret!)}`).toString('base64')}`,
      'content-type': 'application/x-www-form-urlencoded',
    },
    body: new URLSearchParams({ grant_type: 'authorization_code', ...fields }),
  });
  return { status: res.status, body: (await res.json()) as { error?: string; error_description?: string; id_token?: string } };
}

const sessionRow = async (uid: string) => server.db('oidc_artifacts').where({ model: 'Session', uid }).first('payload', 'expires_at');

describe('redeeming a code', () => {
  it('changes nothing when a redemption fails, so the right one still succeeds', async () => {
    const you = browser();
    const { visit, checks } = await a.authorize(you);
    const callback = await you.submit(visit, '/login', { identifier: person.username, password: person.password }, a.redirectUri);
    const code = codeOf(callback);

    const wrongRedirect = await redeemRaw(a, { code, redirect_uri: `${a.redirectUri}/`, code_verifier: checks.pkceCodeVerifier });
    expect(wrongRedirect).toMatchObject({ status: 400, body: { error: 'invalid_grant' } });
    const wrongVerifier = await redeemRaw(a, { code, redirect_uri: a.redirectUri, code_verifier: 'x'.repeat(43) });
    expect(wrongVerifier).toMatchObject({ status: 400, body: { error: 'invalid_grant' } });
    const otherClient = await redeemRaw(b, { code, redirect_uri: a.redirectUri, code_verifier: checks.pkceCodeVerifier });
    expect(otherClient).toMatchObject({ status: 400, body: { error: 'invalid_grant' } });

    const row = await server.db('oidc_artifacts').where({ model: 'AuthorizationCode', id: code }).first('consumed_at');
    expect(row.consumed_at).toBeNull();
    const tokens = await a.redeem(callback, checks);
    expect(tokens.claims()!.sub).toBeTruthy();
    // And once only: the second use is refused and revokes what the first issued.
    await expect(a.redeem(callback, checks)).rejects.toMatchObject({ error: 'invalid_grant' });
    expect((await oidc.tokenIntrospection(a.config, tokens.access_token)).active).toBe(false);
  });

  it('refuses a code whose session has ended', async () => {
    const you = browser();
    const { visit, checks } = await a.authorize(you);
    const callback = await you.submit(visit, '/login', { identifier: person.username, password: person.password }, a.redirectUri);
    const code = codeOf(callback);
    const { payload } = await server.db('oidc_artifacts').where({ model: 'AuthorizationCode', id: code }).first('payload');
    await server.db('oidc_artifacts').where({ model: 'Session', uid: payload.sessionUid }).delete();
    await expect(a.redeem(callback, checks)).rejects.toMatchObject({ error: 'invalid_grant' });
  });

  it('lets exactly one of many concurrent redemptions succeed, and never two when mixed with failing ones', async () => {
    const codeToRedeem = async () => {
      const you = browser();
      const { visit, checks } = await a.authorize(you);
      const callback = await you.submit(visit, '/login', { identifier: person.username, password: person.password }, a.redirectUri);
      const code = codeOf(callback);
      return {
        right: () => redeemRaw(a, { code, redirect_uri: a.redirectUri, code_verifier: checks.pkceCodeVerifier }),
        wrong: () => redeemRaw(a, { code, redirect_uri: a.redirectUri, code_verifier: 'y'.repeat(43) }),
      };
    };
    const only = await codeToRedeem();
    const answers = await Promise.all([only.right(), only.right(), only.right(), only.right()]);
    expect(answers.filter((r) => r.status === 200)).toHaveLength(1);
    for (const r of answers.filter((r) => r.status !== 200)) expect(r.body.error).toBe('invalid_grant');

    // A redemption bound to fail (someone with the code but not its verifier) never holds
    // the code, even for a moment: however they interleave, exactly one right one wins.
    for (let round = 0; round < 3; round++) {
      const mixed = await codeToRedeem();
      const raced = await Promise.all([mixed.wrong(), mixed.right(), mixed.wrong(), mixed.right(), mixed.wrong(), mixed.right()]);
      expect(raced.filter((r) => r.status === 200)).toHaveLength(1);
      for (const r of raced.filter((r) => r.status !== 200)) expect(r.body.error).toBe('invalid_grant');
      expect((await mixed.right()).status).toBe(400);
    }
  });
});

describe('saving the session', () => {
  it('writes a session that changed, and does not rewrite one that did not within a minute', async () => {
    const you = browser();
    const first = await a.signIn(you, { identifier: person.username, password: person.password });
    const sid = first.claims.sid as string;
    const { payload } = await server.db('oidc_artifacts').where({ model: 'Session' }).whereRaw("payload->'authorizations'->?->>'sid' = ?", [a.clientId, sid]).first('payload');
    const uid = payload.uid as string;
    const afterSignIn = await sessionRow(uid);

    // Signed in at A again: nothing in the session changes but its sliding expiry.
    const again = await a.signIn(you, undefined);
    expect(again.askedForPassword).toBe(false);
    const unchanged = await sessionRow(uid);
    expect(unchanged.expires_at).toEqual(afterSignIn.expires_at);
    expect(unchanged.payload).toEqual(afterSignIn.payload);

    // At B for the first time: the session now names B, and is written.
    const atB = await b.signIn(you, undefined);
    expect(atB.askedForPassword).toBe(false);
    const changed = await sessionRow(uid);
    expect(Object.keys(changed.payload.authorizations)).toEqual(expect.arrayContaining([a.clientId, b.clientId]));
    expect(new Date(changed.expires_at).getTime()).toBeGreaterThanOrEqual(new Date(afterSignIn.expires_at).getTime());
  });
});
