import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generate } from 'otplib';
import { createAccount } from '../../src/accounts/accounts.ts';
import { PASSWORD_POLICIES } from '../../src/accounts/password-policy.ts';
import { confirmEnrolment, startEnrolment } from '../../src/accounts/totp.ts';
import { createEnterprise } from '../../src/enterprises/enterprises.ts';
import { addMember } from '../../src/enterprises/memberships.ts';
import { completeUscc } from '../../src/enterprises/uscc.ts';
import { listWindows, type Window } from '../../src/windows/windows.ts';
import { adminToken, api, makeAdmin, signInAtProvider } from '../helpers/admin.ts';
import { browser } from '../helpers/browser.ts';
import { startTestServer, type TestServer } from '../helpers/server.ts';
import { windowSite, type WindowSite } from '../helpers/window-site.ts';

// Each window's service figures, counted from the audit trail: people and enterprises
// served at two windows (with a password and by single sign-on), failures, a lockout and
// a second factor; the province sees both windows, a window administrator only theirs.

let server: TestServer;
let zhengzhou: Window;
let luoyang: Window;
let zz: WindowSite;
let ly: WindowSite;
const password = 'Songshan-Shaolin-495';
// The province's year (China Standard Time).
const year = new Date(Date.now() + 8 * 3600_000).getUTCFullYear();
const scope = 'openid profile enterprise';

async function person(username: string, enterprise?: { region: string; serial: number }) {
  const account = await createAccount(server.db, { username, displayName: username, password }, PASSWORD_POLICIES.mlps);
  if (enterprise) {
    const e = await createEnterprise(server.db, { uscc: completeUscc(`91${enterprise.region}${String(enterprise.serial).padStart(8, '0')}`), name: `${username} 有限公司`, type: 'enterprise', region: enterprise.region });
    await addMember(server.db, { enterpriseId: e.id, accountId: account.id, role: 'legal_rep' });
  }
  return account;
}

beforeAll(async () => {
  server = await startTestServer({ SIGN_IN_RATE_LIMIT: '1000/60' });
  const windows = await listWindows(server.db);
  zhengzhou = windows.find((w) => w.region === '410100')!;
  luoyang = windows.find((w) => w.region === '410300')!;
  zz = await windowSite(server, { windowId: zhengzhou.id, name: 'figures-zz' });
  ly = await windowSite(server, { windowId: luoyang.id, name: 'figures-ly' });

  // One person signs in at Zhengzhou and is then served at Luoyang by single sign-on,
  // acting for their enterprise at both.
  await person('served.both', { region: '410100', serial: 1 });
  const both = browser();
  await zz.signIn(both, { identifier: 'served.both', password }, { scope });
  expect((await ly.signIn(both, undefined, { scope })).askedForPassword).toBe(false);
  // Another enterprise at Zhengzhou only; a person acting for nobody at Luoyang.
  await person('served.zz', { region: '410102', serial: 2 });
  await zz.signIn(browser(), { identifier: 'served.zz', password }, { scope });
  await person('served.ly');
  await ly.signIn(browser(), { identifier: 'served.ly', password }, { scope });
  // One with a second factor at Zhengzhou.
  const withMfa = await person('served.mfa');
  const masterKey = Buffer.from(server.masterKey, 'base64');
  const enrolment = await startEnrolment(masterKey, withMfa);
  await confirmEnrolment(server.db, masterKey, withMfa.id, enrolment.sealed, await generate({ secret: enrolment.secret }));
  const mfaBrowser = browser();
  const { visit, checks } = await zz.authorize(mfaBrowser, { scope });
  await zz.redeem(await signInAtProvider(mfaBrowser, visit, { account: withMfa, password, totpSecret: enrolment.secret }, zz.redirectUri), checks);

  // A wrong password at Luoyang; five at Zhengzhou, which lock the account.
  const fail = async (site: WindowSite, username: string) => {
    const b = browser();
    const { visit: page } = await site.authorize(b, { scope });
    await b.submit(page, '/login', { identifier: username, password: 'Not-the-password-1' }, site.redirectUri);
  };
  await fail(ly, 'served.ly');
  await person('locked.out');
  for (let i = 0; i < 5; i++) await fail(zz, 'locked.out');
});

// A label is under its bar when the text (centred on x, at most 5.5px a character
// either side) spans the bar's centre.
const underIt = (tick: { x: number; text: string }, bar: { center: number }) => Math.abs(bar.center - tick.x) <= [...tick.text].length * 5.5;

// The bars (their label and centre) and the axes' labels of the page's chart.
function chartOf(html: string) {
  const num = (attrs: string, name: string) => Number(new RegExp(`\\b${name}="([-\\d.]+)"`).exec(attrs)![1]);
  const bars = [...html.matchAll(/<rect ([^>]*)><title>([^<]*): (\d+)<\/title><\/rect>/g)].map((m) => ({
    label: m[2]!,
    value: Number(m[3]),
    center: num(m[1]!, 'x') + num(m[1]!, 'width') / 2,
  }));
  const xTicks = [...html.matchAll(/<text class="x-tick" ([^>]*)>([^<]*)<\/text>/g)].map((m) => ({ x: num(m[1]!, 'x'), text: m[2]! }));
  const yTicks = [...html.matchAll(/<text class="y-tick" [^>]*>([^<]*)<\/text>/g)].map((m) => Number(m[1]));
  return { bars, xTicks, yTicks };
}

afterAll(async () => {
  await zz?.close();
  await ly?.close();
  await server?.close();
});

describe('service figures', () => {
  it('counts people and enterprises served, second factors, failures and lockouts per window', async () => {
    const audit = await makeAdmin(server, 'figures.auditor', [{ role: 'audit_admin' }]);
    const token = await adminToken(server, audit);
    const all = await api(server, token, 'GET', `/figures?year=${year}`);
    expect(all.status).toBe(200);
    const byWindow = new Map(all.body.windows.map((w: { windowId: number }) => [w.windowId, w]));
    expect(byWindow.get(zhengzhou.id)).toEqual({
      windowId: zhengzhou.id,
      name: zhengzhou.name,
      year,
      signIns: 3,
      persons: 3,
      enterprises: 2,
      targetProgress: 2 / 1000,
      mfaShare: 1 / 3,
      failures: 5,
      lockouts: 1,
    });
    expect(byWindow.get(luoyang.id)).toEqual({ windowId: luoyang.id, name: luoyang.name, year, signIns: 2, persons: 2, enterprises: 1, targetProgress: 1 / 1000, mfaShare: 0, failures: 1, lockouts: 0 });

    const one = await api(server, token, 'GET', `/windows/${luoyang.id}/figures?year=${year}`);
    const { name: _name, ...luoyangFigures } = byWindow.get(luoyang.id) as Record<string, unknown>;
    expect(one.body.figures).toEqual(luoyangFigures);
    const today = new Date(Date.now() + 8 * 3600_000).toISOString().slice(0, 10);
    expect(one.body.daily).toEqual([{ day: today, signIns: 2 }]);

    // Another year has nothing on record.
    expect((await api(server, token, 'GET', `/windows/${luoyang.id}/figures?year=${year - 1}`)).body.figures).toMatchObject({ signIns: 0, persons: 0, enterprises: 0, mfaShare: null });
    // Every window is listed, those without a record with zeros.
    const lastYear = (await api(server, token, 'GET', `/figures?year=${year - 1}`)).body.windows;
    expect(lastYear.map((w: { windowId: number }) => w.windowId)).toEqual((await listWindows(server.db)).map((w) => w.id));
    expect(lastYear.every((w: Record<string, unknown>) => w.signIns === 0 && w.enterprises === 0 && w.failures === 0 && w.mfaShare === null)).toBe(true);
    expect((await api(server, token, 'GET', '/figures?year=soon')).body.fields).toEqual([{ field: 'year', code: 'year', params: {}, message: 'must be a year such as 2026' }]);
  });

  it('shows a window administrator their own window only, as figures and as a page with a chart', async () => {
    const admin = await makeAdmin(server, 'figures.zz', [{ role: 'window_admin', windowId: zhengzhou.id }]);
    const b = browser();
    const home = await signInAtProvider(b, await b.visit(`${server.url}/admin`), admin, '\0');
    expect(home.kind === 'page' && home.status).toBe(200);
    const page = await b.visit(`${server.url}/admin/windows/${zhengzhou.id}/figures?year=${year}`);
    expect(page.kind === 'page' && page.status).toBe(200);
    const html = page.kind === 'page' ? page.html : '';
    expect(html).toContain('<svg');
    expect(html).toMatch(/<rect [^>]*><title>\d{4}-\d{2}-\d{2}: 3<\/title><\/rect>/);
    // Labels under their bars: the first of each month (MM-DD), centred on its bar.
    const { bars, xTicks, yTicks } = chartOf(html);
    const today = new Date(Date.now() + 8 * 3600_000).toISOString().slice(0, 10);
    expect(bars.length).toBe(Math.round((Date.parse(today) - Date.UTC(year, 0, 1)) / 86_400_000) + 1);
    expect(xTicks[0]!.text).toBe('01-01');
    for (const tick of xTicks) expect(bars.some((bar) => underIt(tick, bar) && bar.label.slice(5) === tick.text)).toBe(true);
    if (bars.length > 31) expect(xTicks.map((t) => t.text).every((t) => t.endsWith('-01'))).toBe(true);
    expect(yTicks).toEqual([0, 1, 2, 3]);
    // The numbers as a table too, for those who cannot see the chart.
    expect(html).toMatch(/<svg [^>]*role="img" aria-labelledby="daily-chart-title daily-chart-desc"/);
    expect(html).toContain(`<tr><td>${today}</td><td>3</td></tr>`);
    const other = await b.visit(`${server.url}/admin/windows/${luoyang.id}/figures?year=${year}`);
    expect(other.kind === 'page' && other.status).toBe(403);
    const province = await b.visit(`${server.url}/admin/figures`);
    expect(province.kind === 'page' && province.status).toBe(403);
    expect(server.errors).toEqual([]);
  });
});

describe('the province figures page', () => {
  it('lists every window, one without activity with zeros, with a chart labelled under its bars', async () => {
    const auditor = await makeAdmin(server, 'figures.province', [{ role: 'audit_admin' }]);
    const b = browser();
    const home = await signInAtProvider(b, await b.visit(`${server.url}/admin`), auditor, '\0');
    expect(home.kind === 'page' && home.status).toBe(200);
    const page = await b.visit(`${server.url}/admin/figures?year=${year}`);
    expect(page.kind === 'page' && page.status).toBe(200);
    const html = page.kind === 'page' ? page.html : '';
    const windows = await listWindows(server.db);
    const quiet = windows.find((w) => w.id !== zhengzhou.id && w.id !== luoyang.id)!;
    // Window, sign-ins, persons, enterprises, progress, second factor, failures, lockouts.
    const row = new RegExp(`<tr><td><a href="/admin/windows/${quiet.id}/figures\\?year=${year}">[^<]*</a></td><td>0</td><td>0</td><td>0</td><td><progress [^>]*></progress> 0.0%</td><td>–</td><td>0</td><td>0</td></tr>`);
    expect(html).toMatch(row);
    const { bars, xTicks, yTicks } = chartOf(html);
    expect(bars.length).toBe(windows.length);
    expect(bars.find((bar) => bar.label === zhengzhou.name)!.value).toBe(2);
    expect(bars.find((bar) => bar.label === quiet.name)!.value).toBe(0);
    expect(xTicks.length).toBeGreaterThan(0);
    for (const tick of xTicks) expect(bars.some((bar) => underIt(tick, bar) && bar.label.startsWith(tick.text.replace(/…$/, '')))).toBe(true);
    expect(yTicks).toEqual([0, 1, 2]);
    expect(html).toContain(`<tr><td>${quiet.name}</td><td>0</td></tr>`);
    expect(server.errors).toEqual([]);
  });
});
