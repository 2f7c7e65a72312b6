import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as oidc from 'openid-client';
import { createAccount } from '../../src/accounts/accounts.ts';
import { PASSWORD_POLICIES } from '../../src/accounts/password-policy.ts';
import { createEnterprise, type Enterprise } from '../../src/enterprises/enterprises.ts';
import { addMember } from '../../src/enterprises/memberships.ts';
import { purgeEndedChoices } from '../../src/enterprises/acting.ts';
import { liveSessionUids } from '../../src/oidc/adapter.ts';
import { listWindows } from '../../src/windows/windows.ts';
import { browser, type Browser, type Visit } from '../helpers/browser.ts';
import { startTestServer, type TestServer } from '../helpers/server.ts';
import { windowSite, type WindowSite } from '../helpers/window-site.ts';

// A person signs in once and acts for one of their enterprises; every window learns
// whom from the `enterprise` claim.

let server: TestServer;
let a: WindowSite;
let b: WindowSite;
let x: Enterprise;
let y: Enterprise;
const password = 'Central-Plains-2014';
const scope = 'openid profile enterprise';

beforeAll(async () => {
  server = await startTestServer();
  const windows = await listWindows(server.db);
  a = await windowSite(server, { windowId: windows.find((w) => w.region === '410100')!.id, name: 'zz' });
  b = await windowSite(server, { windowId: windows.find((w) => w.region === '410300')!.id, name: 'ly' });
  x = await createEnterprise(server.db, { uscc: '91410000170001401D', name: '宇通客车股份有限公司', type: 'enterprise', region: '410100', status: 'verified' });
  y = await createEnterprise(server.db, { name: '洛阳青年创业团队', type: 'team', region: '410300' });
  const both = await createAccount(server.db, { username: 'zhao.lei', displayName: '赵磊', password }, PASSWORD_POLICIES.mlps);
  const one = await createAccount(server.db, { username: 'sun.li', displayName: '孙丽', password }, PASSWORD_POLICIES.mlps);
  await createAccount(server.db, { username: 'zhou.min', displayName: '周敏', password }, PASSWORD_POLICIES.mlps);
  await addMember(server.db, { enterpriseId: x.id, accountId: both.id, role: 'legal_rep' });
  await addMember(server.db, { enterpriseId: y.id, accountId: both.id, role: 'operator' });
  await addMember(server.db, { enterpriseId: x.id, accountId: one.id, role: 'admin' });
});

afterAll(async () => {
  await server?.close();
});

const isChooser = (v: Visit) => v.kind === 'page' && v.html.includes('/select"');

async function signInAt(site: WindowSite, you: Browser, username: string | undefined, choose: string | undefined, params: Record<string, string> = {}) {
  const { visit, checks } = await site.authorize(you, { scope, ...params });
  let at = visit;
  if (username) at = await you.submit(at, '/login', { identifier: username, password }, site.redirectUri);
  const asked = isChooser(at);
  const page = at.kind === 'page' ? at.html : '';
  if (choose !== undefined) {
    expect(asked).toBe(true);
    at = await you.submit(at, '/select', { enterprise: choose }, site.redirectUri);
  }
  const tokens = await site.redeem(at, checks);
  return { tokens, claims: tokens.claims()!, asked, page };
}

describe('acting for an enterprise', () => {
  it('advertises the enterprise scope and claim', async () => {
    const metadata = a.config.serverMetadata();
    expect(metadata.scopes_supported).toContain('enterprise');
    expect(metadata.claims_supported).toContain('enterprise');
  });

  it('asks a person with two memberships once, and every window of the session gets the choice', async () => {
    const you = browser();
    const atA = await signInAt(a, you, 'zhao.lei', x.id);
    expect(atA.page).toContain('宇通客车股份有限公司');
    expect(atA.page).toContain('洛阳青年创业团队');
    const expected = { id: x.id, uscc: '91410000170001401D', name: '宇通客车股份有限公司', type: 'enterprise', region: '410100', status: 'verified', role: 'legal_rep' };
    expect(atA.claims.enterprise).toEqual(expected);
    expect((await oidc.fetchUserInfo(a.config, atA.tokens.access_token, atA.claims.sub)).enterprise).toEqual(expected);

    const atB = await signInAt(b, you, undefined, undefined);
    expect(atB.asked).toBe(false);
    expect(atB.claims.enterprise).toEqual(expected);

    // prompt=select_account asks again, with the current choice preselected, and switches.
    const switched = await signInAt(b, you, undefined, y.id, { prompt: 'select_account' });
    expect(switched.page).toMatch(new RegExp(`value="${x.id}" checked`));
    expect(switched.claims.enterprise).toEqual({ id: y.id, uscc: null, name: '洛阳青年创业团队', type: 'team', region: '410300', status: 'pending', role: 'operator' });

    // Acting as oneself is a choice too: no enterprise claim.
    const myself = await signInAt(a, you, undefined, '', { prompt: 'select_account' });
    expect(myself.claims.enterprise).toBeUndefined();
    expect((await signInAt(b, you, undefined, undefined)).claims.enterprise).toBeUndefined();
  });

  it('chooses the only membership without asking, and asks nobody without memberships', async () => {
    const one = await signInAt(a, browser(), 'sun.li', undefined);
    expect(one.asked).toBe(false);
    expect(one.claims.enterprise).toMatchObject({ id: x.id, role: 'admin' });
    const none = await signInAt(a, browser(), 'zhou.min', undefined);
    expect(none.asked).toBe(false);
    expect(none.claims.enterprise).toBeUndefined();
    expect(none.claims.name).toBe('周敏');
  });

  it('gives no enterprise claim to a window that did not ask for the scope', async () => {
    const you = browser();
    await signInAt(a, you, 'sun.li', undefined);
    const { visit, checks } = await b.authorize(you, { scope: 'openid profile' });
    expect((await b.redeem(visit, checks)).claims()!.enterprise).toBeUndefined();
  });

  it('refuses an enterprise the person does not belong to, and changes nothing', async () => {
    const you = browser();
    const { visit } = await a.authorize(you, { scope });
    const chooser = await you.submit(visit, '/login', { identifier: 'zhao.lei', password }, a.redirectUri);
    const outsider = await createEnterprise(server.db, { name: '别人的团队', type: 'team', region: '410100' });
    const answer = await you.submit(chooser, '/select', { enterprise: outsider.id }, a.redirectUri);
    expect(answer.kind === 'page' && answer.status).toBe(400);
    expect(answer.kind === 'page' && answer.html).toContain('role="alert"');
    expect(await server.db('acting_enterprises').where({ enterprise_id: outsider.id }).first()).toBeUndefined();
    expect(server.errors).toEqual([]);
  });
});

describe('clean-up', () => {
  it('forgets the choices of sessions that ended', async () => {
    const before = Number((await server.db('acting_enterprises').count({ n: '*' }).first())?.n);
    expect(before).toBeGreaterThan(0);
    expect(await purgeEndedChoices(server.db, liveSessionUids)).toBe(0);
    await server.db('oidc_artifacts').where({ model: 'Session' }).delete();
    expect(await purgeEndedChoices(server.db, liveSessionUids)).toBe(before);
  });
});
