import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generate } from 'otplib';
import { createAccount } from '../../src/accounts/accounts.ts';
import { PASSWORD_POLICIES } from '../../src/accounts/password-policy.ts';
import { ACR } from '../../src/oidc/claims.ts';
import { listWindows } from '../../src/windows/windows.ts';
import { browser, type Browser, type Visit } from '../helpers/browser.ts';
import { startTestServer, type TestServer } from '../helpers/server.ts';
import { windowSite, type WindowSite } from '../helpers/window-site.ts';

// TOTP: enrolment on the account page (codes computed here, as an authenticator
// would), sign-in with it, single use, recovery codes, amr/acr, and step-up by acr_values.

let server: TestServer;
let a: WindowSite;
let b: WindowSite;
const password = 'Yuntai-Mountain-1400';
const html = (v: Visit) => (v.kind === 'page' ? v.html : `redirect to ${v.to.href}`);
const alert = (v: Visit) => (v.kind === 'page' ? /role="alert">([^<]*)</.exec(v.html)?.[1] : undefined);
const now = () => Math.floor(Date.now() / 1000);

beforeAll(async () => {
  server = await startTestServer();
  const windows = await listWindows(server.db);
  a = await windowSite(server, { windowId: windows[9]!.id, name: 'a' });
  b = await windowSite(server, { windowId: windows[10]!.id, name: 'b' });
});

afterAll(async () => {
  await server?.close();
});

// Turns TOTP on through the account page; returns the secret and the recovery codes.
async function enrol(you: Browser) {
  const page = await you.visit(`${server.url}/account/mfa`);
  expect(html(page)).toContain('<svg');
  const secret = /<code>([A-Z2-7]+)<\/code>/.exec(html(page))![1]!;
  const noPassword = await you.submit(page, '/account/mfa', { code: await generate({ secret }), password: 'Not-The-Password-9' });
  expect(noPassword.kind === 'page' && noPassword.status).toBe(401);
  const wrong = await you.submit(noPassword, '/account/mfa', { code: '000000', password });
  expect(wrong.kind === 'page' && wrong.status).toBe(400);
  expect(/<code>([A-Z2-7]+)<\/code>/.exec(html(wrong))![1]).toBe(secret);
  const done = await you.submit(wrong, '/account/mfa', { code: await generate({ secret }), password });
  const codes = [...html(done).matchAll(/<code>([0-9a-f-]{19})<\/code>/g)].map((m) => m[1]!);
  expect(codes).toHaveLength(10);
  return { secret, codes };
}

async function signInWithSecondFactor(site: WindowSite, you: Browser, username: string, code: string, params: Record<string, string> = {}) {
  const { visit, checks } = await site.authorize(you, params);
  const mfa = visit.kind === 'page' && visit.html.includes('name="password"') ? await you.submit(visit, '/login', { identifier: username, password }, site.redirectUri) : visit;
  expect(html(mfa)).toContain('/mfa"');
  const back = await you.submit(mfa, '/mfa', { code }, site.redirectUri);
  return { back, finish: () => site.redeem(back, checks) };
}

describe('two-step verification', () => {
  it('is asked for at sign-in once enrolled; a code works once; recovery codes work once', async () => {
    await createAccount(server.db, { username: 'guo.tao', displayName: '郭涛', password }, PASSWORD_POLICIES.mlps);
    const first = browser();
    const plain = await a.signIn(first, { identifier: 'guo.tao', password });
    expect(plain.claims).toMatchObject({ acr: ACR.password, amr: ['pwd'] });
    const { secret, codes } = await enrol(first);
    expect(await server.db('totp_factors').first()).toMatchObject({ secret_sealed: expect.stringMatching(/^v1\./) });
    expect(JSON.stringify(await server.db('totp_factors').first())).not.toContain(secret);

    // The code of the next 30-second step: the enrolment used up the current one.
    const code = await generate({ secret, epoch: now() + 30 });
    const you = browser();
    const wrong = await signInWithSecondFactor(a, you, 'guo.tao', '123456');
    expect(alert(wrong.back)).toBe('动态码不正确或已使用过。');
    const right = await you.submit(wrong.back, '/mfa', { code }, a.redirectUri);
    expect(right.kind).toBe('redirect');

    const replay = await signInWithSecondFactor(a, browser(), 'guo.tao', code);
    expect(alert(replay.back)).toBe('动态码不正确或已使用过。');

    const recovered = await signInWithSecondFactor(b, browser(), 'guo.tao', codes[0]!.toUpperCase());
    expect((await recovered.finish()).claims()).toMatchObject({ acr: ACR.mfa, amr: ['pwd', 'mfa'] });
    const again = await signInWithSecondFactor(b, browser(), 'guo.tao', codes[0]!);
    expect(alert(again.back)).toBe('动态码不正确或已使用过。');
  });

  it('steps a password-only session up when a window asks for acr_values=mfa', async () => {
    await createAccount(server.db, { username: 'lu.yan', displayName: '陆燕', password }, PASSWORD_POLICIES.mlps);
    const you = browser();
    await a.signIn(you, { identifier: 'lu.yan', password });
    const { secret } = await enrol(you);
    const stepUp = await signInWithSecondFactor(b, you, 'lu.yan', await generate({ secret, epoch: now() + 30 }), { acr_values: ACR.mfa });
    const claims = (await stepUp.finish()).claims()!;
    expect(claims).toMatchObject({ acr: ACR.mfa, amr: ['pwd', 'otp', 'mfa'] });
  });

  it('tells a person without a second factor that the window requires one', async () => {
    await createAccount(server.db, { username: 'shi.lei', displayName: '石磊', password }, PASSWORD_POLICIES.mlps);
    const you = browser();
    const { visit } = await a.authorize(you, { acr_values: ACR.mfa });
    const answer = await you.submit(visit, '/login', { identifier: 'shi.lei', password }, a.redirectUri);
    expect(answer.kind === 'page' && answer.status).toBe(403);
    expect(html(answer)).toContain('此网站要求两步验证');
  });

  it('turns off only with the current password', async () => {
    await createAccount(server.db, { username: 'wei.na', displayName: '魏娜', password }, PASSWORD_POLICIES.mlps);
    const you = browser();
    await a.signIn(you, { identifier: 'wei.na', password });
    await enrol(you);
    const page = await you.visit(`${server.url}/account`);
    const refused = await you.submit(page, '/account/mfa/remove', { password: 'Not-The-Password-1' });
    expect(refused.kind === 'page' && refused.status).toBe(401);
    const off = await you.submit(refused, '/account/mfa/remove', { password });
    expect(html(off)).toContain('未启用');
    expect((await a.signIn(browser(), { identifier: 'wei.na', password })).claims.acr).toBe(ACR.password);
    expect(server.errors).toEqual([]);
  });
});
