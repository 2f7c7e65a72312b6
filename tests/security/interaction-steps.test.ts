import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generate } from 'otplib';
import type Router from '@koa/router';
import { createAccount, type Account } from '../../src/accounts/accounts.ts';
import { grantRole } from '../../src/accounts/admin-roles.ts';
import { PASSWORD_POLICIES } from '../../src/accounts/password-policy.ts';
import { confirmEnrolment, startEnrolment } from '../../src/accounts/totp.ts';
import { createEnterprise, type Enterprise } from '../../src/enterprises/enterprises.ts';
import { addMember } from '../../src/enterprises/memberships.ts';
import { interactionRoutes } from '../../src/interaction/routes.ts';
import { listWindows } from '../../src/windows/windows.ts';
import { browser, type Browser, type Visit } from '../helpers/browser.ts';
import { startTestServer, type TestServer } from '../helpers/server.ts';
import { windowSite, type WindowSite } from '../helpers/window-site.ts';

// Every step of a sign-in (each POST under /interaction/:uid, and the GET), called at an
// interaction that is at another step, twice and concurrently, with another account's
// pending cookie, and at another browser's interaction: refused with a 4xx, nothing
// changed, no sign-in completed. The list of steps is read from the router itself, so a
// new step without a row in EXPECTED_AT fails here.

type State = 'login' | 'mfa' | 'enrol' | 'select' | 'consent';
const STATES: State[] = ['login', 'mfa', 'enrol', 'select', 'consent'];

// Where each step belongs: at any other state it must be refused. (Abort cancels a
// sign-in at any step, so it is only tried at other browsers' interactions.)
const EXPECTED_AT: Record<string, State[]> = {
  '/login': ['login', 'mfa', 'enrol'],
  '/password': [],
  '/mfa-enrol': ['enrol'],
  '/mfa': ['mfa'],
  // Only after an administrator's enrolment in this interaction, a state none of these is at.
  '/enrolled': [],
  '/select': ['select'],
  '/confirm': ['consent'],
  '/abort': STATES,
};

let server: TestServer;
let site: WindowSite;
let thirdParty: WindowSite;
const password = 'Xiangguo-Temple-555';
const masterKey = () => Buffer.from(server.masterKey, 'base64');
const accounts = {} as Record<'plain' | 'totp' | 'admin' | 'member', Account>;
let totpSecret: string;
let enterprises: Enterprise[];

beforeAll(async () => {
  server = await startTestServer({ SIGN_IN_RATE_LIMIT: '10000/60', LOCKOUT_THRESHOLD: '100' });
  const windows = await listWindows(server.db);
  site = await windowSite(server, { windowId: windows[0]!.id, name: 'steps' });
  thirdParty = await windowSite(server, { windowId: windows[1]!.id, name: 'steps-third', thirdParty: true });
  const make = (username: string) => createAccount(server.db, { username, displayName: username, password }, PASSWORD_POLICIES.mlps);
  accounts.plain = await make('steps.plain');
  accounts.totp = await make('steps.totp');
  accounts.admin = await make('steps.admin');
  accounts.member = await make('steps.member');
  await grantRole(server.db, { accountId: accounts.admin.id, role: 'system_admin' });
  const enrolment = await startEnrolment(masterKey(), accounts.totp);
  await confirmEnrolment(server.db, masterKey(), accounts.totp.id, enrolment.sealed, await generate({ secret: enrolment.secret }));
  totpSecret = enrolment.secret;
  enterprises = [
    await createEnterprise(server.db, { name: '嵩山步骤科技有限公司', type: 'team', region: '410100' }),
    await createEnterprise(server.db, { name: '洛阳步骤服务社', type: 'team', region: '410300' }),
  ];
  for (const e of enterprises) await addMember(server.db, { enterpriseId: e.id, accountId: accounts.member.id, role: 'operator' });
});

afterAll(async () => {
  await server?.close();
});

type At = { b: Browser; page: Extract<Visit, { kind: 'page' }>; uid: string; csrf: string; account: Account };

const asPage = (v: Visit) => {
  if (v.kind !== 'page') throw new Error(`expected a page, got a redirect to ${v.to.href}`);
  return v;
};

// A fresh browser with an interaction at the given step.
async function interactionAt(state: State): Promise<At> {
  const b = browser();
  const rp = state === 'consent' ? thirdParty : site;
  const account = { login: accounts.plain, mfa: accounts.totp, enrol: accounts.admin, select: accounts.member, consent: accounts.plain }[state];
  const { visit } = await rp.authorize(b, state === 'select' ? { scope: 'openid enterprise' } : {});
  const login = asPage(visit);
  const page = state === 'login' ? login : asPage(await b.submit(login, '/login', { identifier: account.username, password }, rp.redirectUri));
  const marker = { login: '/login"', mfa: '/mfa"', enrol: '/mfa-enrol"', select: '/select"', consent: '/confirm"' }[state];
  expect(page.html).toContain(marker);
  const uid = /\/interaction\/([^/"?]+)/.exec(page.url.pathname)![1]!;
  const csrf = /name="csrf" value="([^"]+)"/.exec(page.html)![1]!;
  return { b, page, uid, csrf, account };
}

// What a step might change: second factors, sessions, grants and tokens, choices of
// enterprise, passwords.
async function snapshot() {
  return {
    totp: await server.db('totp_factors').orderBy('account_id').select('account_id', 'secret_sealed'),
    recovery: await server.db('recovery_codes').orderBy('code_hash').select('account_id', 'code_hash', 'used_at'),
    artifacts: await server.db('oidc_artifacts').whereIn('model', ['Session', 'Grant', 'AuthorizationCode', 'AccessToken', 'RefreshToken']).orderBy('id').select('model', 'id'),
    acting: await server.db('acting_enterprises').orderBy('session_uid').select('session_uid', 'enterprise_id'),
    passwords: await server.db('accounts').orderBy('id').select('id', 'password_hash'),
  };
}

// The fields an attacker would send to each step: right password, a current code, a real membership.
async function fieldsFor(step: string, at: At): Promise<Record<string, string>> {
  const code = await generate({ secret: totpSecret, epoch: Math.floor(Date.now() / 1000) + 30 });
  const fields: Record<string, Record<string, string>> = {
    '/login': { identifier: at.account.username, password },
    '/password': { identifier: at.account.username, password, new_password: 'Brand-New-Shaolin-2026!', confirm_password: 'Brand-New-Shaolin-2026!' },
    '/mfa-enrol': { password, code: '000000', sealed: '' },
    '/mfa': { code },
    '/enrolled': { secondFactorEnrolled: at.account.id, accountId: at.account.id },
    '/select': { enterprise: enterprises[0]!.id },
    '/confirm': {},
    '/abort': {},
  };
  return { csrf: at.csrf, ...fields[step] };
}

function post(b: Browser, uid: string, step: string, fields: Record<string, string>) {
  return b.fetch(`${server.url}/interaction/${uid}${step}`, {
    method: 'POST',
    redirect: 'manual',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams(fields),
  });
}

// Refused: a 4xx page, no way onward, no new authenticator shown.
async function expectRefused(res: Response, what: string) {
  const body = await res.text();
  expect({ what, status: res.status, location: res.headers.get('location') }).toEqual({ what, status: expect.toSatisfy((s: number) => s >= 400 && s < 500), location: null });
  expect(body).not.toMatch(/<code>[A-Z2-7]{16,}<\/code>/);
  expect(body).not.toMatch(/<code>[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}<\/code>/);
}

const routerSteps = () => {
  const router = interactionRoutes({ current: undefined as never }, server.db, {} as never, Buffer.alloc(32)) as Router;
  const posts = router.stack.filter((layer) => layer.methods.includes('POST')).map((layer) => String(layer.path).replace('/interaction/:uid', ''));
  const gets = router.stack.filter((layer) => layer.methods.includes('GET')).map((layer) => String(layer.path).replace('/interaction/:uid', ''));
  return { posts, gets };
};

const outOfOrder = () => Object.entries(EXPECTED_AT).flatMap(([step, at]) => STATES.filter((s) => !at.includes(s)).map((state) => ({ step, state })));

describe('interaction steps', () => {
  it('knows where every step of the router belongs', () => {
    const { posts, gets } = routerSteps();
    expect(posts.sort()).toEqual(Object.keys(EXPECTED_AT).sort());
    expect(gets).toEqual(['']);
  });

  it.each(outOfOrder())('refuses $step at an interaction at the $state step, twice and concurrently, and changes nothing', async ({ step, state }) => {
    const at = await interactionAt(state);
    const before = await snapshot();
    const fields = await fieldsFor(step, at);
    await expectRefused(await post(at.b, at.uid, step, fields), `${step} at ${state}`);
    await expectRefused(await post(at.b, at.uid, step, fields), `${step} at ${state}, again`);
    const together = await Promise.all([1, 2, 3].map(() => post(at.b, at.uid, step, fields)));
    for (const res of together) await expectRefused(res, `${step} at ${state}, concurrently`);
    expect(await snapshot()).toEqual(before);
    // The interaction still answers at its own step.
    const again = asPage(await at.b.visit(`${server.url}/interaction/${at.uid}`));
    expect(again.status).toBeLessThan(500);
  });

  it.each(Object.keys(EXPECTED_AT))('refuses %s at another browser’s interaction, and changes nothing', async (step) => {
    for (const state of STATES) {
      const victim = await interactionAt(state);
      const attacker = await interactionAt('login');
      const before = await snapshot();
      const fields = { ...(await fieldsFor(step, victim)), csrf: attacker.csrf };
      const answers = await Promise.all([1, 2].map(() => post(attacker.b, victim.uid, step, fields)));
      answers.push(await post(attacker.b, victim.uid, step, fields));
      for (const res of answers) await expectRefused(res, `${step} at another browser's ${state}`);
      expect(await snapshot()).toEqual(before);
      const get = await attacker.b.fetch(`${server.url}/interaction/${victim.uid}`, { redirect: 'manual' });
      expect(get.status).toBe(400);
      await get.body?.cancel();
    }
  });

  it('refuses the second factor and the enrolment with another account’s pending cookie, copied to this interaction', async () => {
    const holder = await interactionAt('mfa');
    const cookies = (await holder.b.jar.getCookies(`${server.url}/interaction/${holder.uid}/mfa`)).filter((c) => c.key.startsWith('mfa_pending'));
    expect(cookies).toHaveLength(2);
    for (const state of ['login', 'enrol'] as const) {
      const at = await interactionAt(state);
      for (const c of cookies) await at.b.jar.setCookie(`${c.key}=${c.value}; Path=/interaction/${at.uid}`, `${server.url}/interaction/${at.uid}/`);
      const before = await snapshot();
      for (const step of ['/mfa', '/mfa-enrol']) {
        const fields = await fieldsFor(step, holder);
        await expectRefused(await post(at.b, at.uid, step, { ...fields, csrf: at.csrf }), `${step} at ${state} with another account's cookie`);
      }
      expect(await snapshot()).toEqual(before);
    }
  });

  it('still completes each step where it belongs (the refusals above are not of everything)', async () => {
    const mfa = await interactionAt('mfa');
    const done = await mfa.b.submit(mfa.page, '/mfa', { code: await generate({ secret: totpSecret, epoch: Math.floor(Date.now() / 1000) + 30 }) }, site.redirectUri);
    expect(done.kind).toBe('redirect');
    const select = await interactionAt('select');
    expect((await select.b.submit(select.page, '/select', { enterprise: enterprises[1]!.id }, site.redirectUri)).kind).toBe('redirect');
    const consent = await interactionAt('consent');
    expect((await consent.b.submit(consent.page, '/confirm', {}, thirdParty.redirectUri)).kind).toBe('redirect');
    expect(server.errors).toEqual([]);
  });
});
