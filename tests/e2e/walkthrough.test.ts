import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Browser, Page } from 'playwright-core';
import { generate } from 'otplib';
import { chinesePage, hasChromium, launchChromium } from '../helpers/chromium.ts';
import { makeAdmin } from '../helpers/admin.ts';
import { runCliInProcess } from '../helpers/cli-in-process.ts';
import { startTestServer, type TestServer } from '../helpers/server.ts';
import { createAccount } from '../../src/accounts/accounts.ts';
import { PASSWORD_POLICIES } from '../../src/accounts/password-policy.ts';
import { createEnterprise } from '../../src/enterprises/enterprises.ts';
import { addMember } from '../../src/enterprises/memberships.ts';
import { completeUscc } from '../../src/enterprises/uscc.ts';
import { createClient } from '../../src/windows/clients.ts';
import { listWindows, type Window } from '../../src/windows/windows.ts';

// Every page a person and an administrator see, walked in a real browser (Debian's
// chromium) at a desktop width and a phone width: each page is saved as a full-page
// screenshot (artifacts/<nn>-<page>-<width>.png), checked with axe-core against
// WCAG 2.0/2.1 A and AA (a serious or critical violation fails), and, being a zh-CN
// page, checked for English left in its visible text. Each walk also writes what it
// found, every impact, to artifacts/walk-<who>-<width>.json.

const ARTIFACTS = fileURLToPath(new URL('../../artifacts/', import.meta.url));
const AXE_SOURCE = fs.readFileSync(createRequire(import.meta.url).resolve('axe-core/axe.min.js'), 'utf8');
const WCAG_TAGS = ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa'];
const WIDTHS = [1280, 390] as const;

// Latin-script words a zh-CN page may show: names of products and standards a person
// meets as such (authenticator apps, protocols and formats a window integrates with) and
// the abbreviations Chinese technical text uses as they are (UTC names a time zone).
// Codes, URLs, e-mail addresses, text marked up as code or as another language, and what
// the test itself typed are allowed without being listed here.
const LATIN_ALLOWED = new Set([
  ...['Google', 'Microsoft', 'Authenticator', 'FreeOTP'],
  ...['OpenID', 'Connect', 'OIDC', 'JWT', 'JWKS', 'JSON', 'Lines', 'CSV', 'RFC'],
  ...['API', 'ICP', 'ID', 'TOTP', 'URI', 'URL', 'UTC'],
  // The prefix of a command-line actor's id (cli:<user>), named on the audit filter.
  'cli',
]);

// Pages of the console that are only looked at: [name, path].
const CONSOLE_PAGES: Array<[string, string]> = [
  ['administrators', '/admin/administrators'],
  ['accounts', '/admin/accounts'],
  ['keys', '/admin/keys'],
  ['audit', '/admin/audit'],
  ['figures', '/admin/figures'],
];

type Violation = { id: string; impact: string | null; help: string; targets: string[] };
// overflow: how many pixels the page is wider than the window (WCAG 1.4.10, which axe
// does not check): a page that reflows scrolls only up and down.
type Finding = { page: string; url: string; violations: Violation[]; latin: string[]; overflow: number };

// One walk: numbers its pages from `first`, and collects what each one has wrong.
function walk(page: Page, width: number, typed: string[], first: number) {
  const findings: Finding[] = [];
  let n = first - 1;
  return {
    findings,
    async look(name: string) {
      await page.waitForLoadState('load');
      n += 1;
      fs.mkdirSync(ARTIFACTS, { recursive: true });
      await page.screenshot({ path: `${ARTIFACTS}${String(n).padStart(2, '0')}-${name}-${width}.png`, fullPage: true });
      // evaluate, not a script tag: the pages' CSP allows no inline script.
      await page.evaluate(AXE_SOURCE);
      const violations = await page.evaluate(async (tags) => {
        const axe = (window as unknown as { axe: { run(context: Document, options: object): Promise<{ violations: Array<{ id: string; impact: string | null; help: string; nodes: Array<{ target: unknown[] }> }> }> } }).axe;
        const results = await axe.run(document, { runOnly: { type: 'tag', values: tags }, resultTypes: ['violations'] });
        return results.violations.map((v) => ({ id: v.id, impact: v.impact, help: v.help, targets: v.nodes.map((node) => node.target.join(' ')) }));
      }, WCAG_TAGS);
      const text = await page.evaluate(() => ({
        lang: document.documentElement.lang,
        visible: document.body.innerText,
        marked: [...document.querySelectorAll<HTMLElement>('code, kbd, samp, [lang]:not([lang|="zh"])')].map((e) => e.innerText),
        overflow: document.documentElement.scrollWidth - document.documentElement.clientWidth,
      }));
      const latin = text.lang === 'zh-CN' ? latinWords(text.visible, [...text.marked, ...typed]) : [];
      findings.push({ page: name, url: new URL(page.url()).pathname, violations, latin, overflow: text.overflow });
    },
  };
}

// The Latin-script words of a text that are neither allowed nor a code, a URL, an
// address or one of the exceptions given.
function latinWords(visible: string, exceptions: string[]): string[] {
  let text = visible;
  for (const e of exceptions.filter((s) => s.trim()).sort((a, b) => b.length - a.length)) text = text.split(e).join(' ');
  text = text.replace(/\b[\w.+-]+@[\w-]+(\.[\w-]+)+/g, ' ').replace(/\bhttps?:\/\/\S+/g, ' ');
  const words = new Set<string>();
  for (const token of text.match(/[\w/][\w/.:'’=-]*/g) ?? []) {
    // A code: a path, anything with a digit, an underscore or an equals sign (ids, USCCs,
    // protocol values and parameters), words joined by dots or a colon (user names, event
    // names, audit targets), or a lower-case letter before a capital (operation names,
    // random ids).
    if (/[/\d_=]|[A-Za-z][.:][\w-]|[a-z][A-Z]/.test(token)) continue;
    for (const word of token.split(/[.:'’-]+/)) if (/[A-Za-z]/.test(word) && !LATIN_ALLOWED.has(word)) words.add(word);
  }
  return [...words].sort();
}

const serious = (f: Finding) => f.violations.filter((v) => v.impact === 'serious' || v.impact === 'critical');

// What failed, for a person to read: page, rule, impact, the elements.
function problems(findings: Finding[]): string {
  const lines: string[] = [];
  for (const f of findings) {
    for (const v of serious(f)) lines.push(`${f.page} (${f.url}): ${v.id} [${v.impact}] ${v.help}\n    ${v.targets.slice(0, 8).join('\n    ')}`);
    if (f.overflow > 0) lines.push(`${f.page} (${f.url}): ${f.overflow} px wider than the window`);
    if (f.latin.length) lines.push(`${f.page} (${f.url}): Latin words on a zh-CN page: ${f.latin.join(' ')}`);
  }
  return lines.join('\n');
}

function report(who: string, width: number, findings: Finding[]) {
  fs.mkdirSync(ARTIFACTS, { recursive: true });
  fs.writeFileSync(`${ARTIFACTS}walk-${who}-${width}.json`, JSON.stringify(findings, null, 2));
  const found = problems(findings);
  expect(found, found).toBe('');
}

const now = () => Math.floor(Date.now() / 1000);

let server: TestServer;
let browser: Browser;
let zhengzhou: Window;
let consentClientId: string;
const CONSENT_REDIRECT = 'http://127.0.0.1:9/walk-partner/callback';
// The province's first administrators, as `sme-passport admin bootstrap` printed them.
let bootstrapped: Array<{ role: string; username: string; one_time_password: string }>;
let cliDir: string;

beforeAll(async () => {
  if (!hasChromium) return;
  // Every request comes from one address: room for more than one person would need.
  server = await startTestServer({ SIGN_IN_RATE_LIMIT: '1000/60', CODE_RATE_LIMIT: '100/3600', REGISTER_RATE_LIMIT: '100/3600' });
  zhengzhou = (await listWindows(server.db)).find((w) => w.region === '410100')!;
  // A third-party site asking for whom the person acts: the chooser, then consent.
  consentClientId = (await createClient(server.db, { windowId: zhengzhou.id, name: '郑州市企业服务合作方', redirectUris: [CONSENT_REDIRECT], thirdParty: true })).clientId;
  cliDir = fs.mkdtempSync(path.join(os.tmpdir(), 'sme-passport-walk-'));
  const made = await runCliInProcess(server.db, ['admin', 'bootstrap', '--json'], { dir: cliDir });
  expect(made.stderr).toBe('');
  bootstrapped = JSON.parse(made.stdout).administrators;
  browser = await launchChromium();
});

afterAll(async () => {
  await browser?.close();
  await server?.close();
  if (cliDir) fs.rmSync(cliDir, { recursive: true, force: true });
});

const codeFor = async (destination: string) =>
  /(\d{6})/.exec((await server.db('outbox').where({ destination }).orderBy('id', 'desc').first())?.body ?? '')?.[1] ?? '';

const submit = (page: Page, form = 'form') => page.click(`${form} button[type=submit]:not(.secondary)`);

async function walkAsPerson(width: number) {
  const person = { username: `walk.person.${width}`, displayName: '步行测试', password: 'Songshan-Walk-2026', email: `walk.${width}@example.cn` };
  const account = await createAccount(server.db, person, PASSWORD_POLICIES.mlps);
  for (const [i, name] of ['郑州步行科技有限公司', '洛阳步行商店'].entries()) {
    const enterprise = await createEnterprise(server.db, { uscc: completeUscc(`91410100${width}000${i}`.padEnd(16, '0')), name, type: 'enterprise', region: '410100', status: 'verified' });
    await addMember(server.db, { enterpriseId: enterprise.id, accountId: account.id, role: i === 0 ? 'legal_rep' : 'operator' });
  }
  const newcomer = { contact: `newcomer.${width}@example.cn`, username: `walk.newcomer.${width}`, name: '新来的人', password: 'Funiu-Mountain-2026' };
  const page = await chinesePage(browser, { viewport: { width, height: 900 } });
  try {
    const w = walk(page, width, [person.username, person.email, newcomer.contact, newcomer.username], 1);
    await page.route('http://127.0.0.1:9/**', (route) => route.fulfill({ status: 200, contentType: 'text/html', body: '<!DOCTYPE html><title>partner</title>' }));

    await page.goto(`${server.url}/`);
    await w.look('home');

    const verifier = crypto.randomBytes(32).toString('base64url');
    const authorize = new URLSearchParams({
      client_id: consentClientId,
      response_type: 'code',
      scope: 'openid profile enterprise',
      redirect_uri: CONSENT_REDIRECT,
      state: crypto.randomBytes(16).toString('base64url'),
      code_challenge: crypto.createHash('sha256').update(verifier).digest('base64url'),
      code_challenge_method: 'S256',
    });
    await page.goto(`${server.url}/auth?${authorize}`);
    await page.waitForSelector('#identifier');
    await w.look('sign-in');
    await page.fill('#identifier', person.username);
    await page.fill('#password', 'not-the-password');
    await submit(page);
    await page.getByRole('alert').waitFor();
    await w.look('sign-in-wrong-password');
    await page.fill('#password', person.password);
    await submit(page);

    await page.locator('input[name=enterprise]').first().waitFor();
    await w.look('choose-enterprise');
    await page.getByText('洛阳步行商店').click();
    await submit(page);
    await page.waitForURL(/\/interaction\//);
    await page.locator('form[action$="/confirm"]').waitFor();
    await w.look('consent');
    await submit(page, 'form[action$="/confirm"]');
    await page.waitForURL(`${CONSENT_REDIRECT}?**`);

    await page.goto(`${server.url}/account`);
    await page.waitForURL(`${server.url}/account`);
    await w.look('account-centre');

    await page.goto(`${server.url}/account/mfa`);
    await w.look('two-step-enrol');
    const secret = (await page.locator('main code').first().innerText()).trim();
    await page.fill('#code', '000000');
    await page.fill('#password', person.password);
    await submit(page, 'main form');
    await page.getByRole('alert').waitFor();
    await w.look('two-step-enrol-error');
    await page.fill('#code', await generate({ secret, epoch: now() }));
    await page.fill('#password', person.password);
    await submit(page, 'main form');
    await page.locator('.recovery-codes').waitFor();
    await w.look('two-step-recovery-codes');

    await page.goto(`${server.url}/session/end`);
    await w.look('sign-out');
    await page.click('button[name=logout]');
    await page.waitForURL(/\/session\/end\/success/);
    await w.look('signed-out');

    await page.goto(`${server.url}/register`);
    await w.look('register-contact');
    await page.fill('#contact', 'neither a phone nor an address');
    await submit(page);
    await page.getByRole('alert').waitFor();
    await w.look('register-contact-error');
    await page.fill('#contact', newcomer.contact);
    await submit(page);
    await page.locator('#code').waitFor();
    await w.look('register-details');
    await page.fill('#code', '000000');
    await page.fill('#username', newcomer.username);
    await page.fill('#name', newcomer.name);
    await page.fill('#password', newcomer.password);
    await page.fill('#confirm_password', newcomer.password);
    await submit(page);
    await page.getByRole('alert').waitFor();
    await w.look('register-details-error');
    await page.fill('#code', await codeFor(newcomer.contact));
    await page.fill('#password', newcomer.password);
    await page.fill('#confirm_password', newcomer.password);
    await submit(page);
    await page.locator('main a[href="/account"]').waitFor();
    await w.look('register-done');

    await page.goto(`${server.url}/reset`);
    await w.look('reset-contact');
    await page.fill('#contact', 'neither a phone nor an address');
    await submit(page);
    await page.getByRole('alert').waitFor();
    await w.look('reset-contact-error');
    await page.fill('#contact', person.email);
    await submit(page);
    await page.locator('#code').waitFor();
    await w.look('reset-details');
    await page.fill('#code', await codeFor(person.email));
    await page.fill('#password', 'Songshan-Walk-2027');
    await page.fill('#confirm_password', 'Songshan-Walk-2028');
    await submit(page);
    await page.getByRole('alert').waitFor();
    await w.look('reset-details-error');
    await page.fill('#code', await codeFor(person.email));
    await page.fill('#password', 'Songshan-Walk-2027');
    await page.fill('#confirm_password', 'Songshan-Walk-2027');
    await submit(page);
    await page.locator('main a[href="/account"]').waitFor();
    await w.look('reset-done');

    report('person', width, w.findings);
  } finally {
    await page.close();
  }
}

async function walkAsAdministrator(width: number) {
  // Keys are a security administrator's, the audit trail and the figures an audit
  // administrator's; a window administrator has the window and its clients.
  const admin = await makeAdmin(server, `walk.admin.${width}`, [{ role: 'security_admin' }, { role: 'audit_admin' }, { role: 'window_admin', windowId: zhengzhou.id }]);
  const page = await chinesePage(browser, { viewport: { width, height: 900 } });
  try {
    // The bootstrapped administrators' usernames and the command line's user (the actor
    // of bootstrap) are on the administrators' page and the trail: names, as typed.
    const w = walk(page, width, [admin.account.username, 'not a uri', ...bootstrapped.map((a) => a.username), os.userInfo().username], 31);
    await page.goto(`${server.url}/admin`);
    await page.waitForSelector('#identifier');
    await page.fill('#identifier', admin.account.username);
    await page.fill('#password', admin.password);
    await submit(page);
    await page.waitForSelector('#code');
    await w.look('admin-two-step');
    await page.fill('#code', await generate({ secret: admin.totpSecret, epoch: now() + 30 }));
    await submit(page);
    await page.waitForURL(`${server.url}/admin`);
    await w.look('console-home');

    await page.goto(`${server.url}/admin/windows`);
    await w.look('windows');
    await page.goto(`${server.url}/admin/windows/${zhengzhou.id}`);
    await w.look('window');
    await page.fill('#new-client #name', '步行测试应用');
    await page.fill('#new-client #redirectUris', 'not a uri');
    await submit(page, '#new-client');
    await page.getByRole('alert').waitFor();
    await w.look('client-create-error');
    await page.fill('#new-client #name', '步行测试应用');
    await page.fill('#new-client #redirectUris', `http://127.0.0.1:9/walk-${width}/callback`);
    await submit(page, '#new-client');
    await page.locator('#client-secret').waitFor();
    await w.look('client-secret');
    await page.click('main a[href^="/admin/clients/"]');
    await page.waitForURL(/\/admin\/clients\//);
    await w.look('client');

    for (const [name, path] of CONSOLE_PAGES) {
      await page.goto(`${server.url}${path}`);
      await w.look(name);
    }

    await page.click('header form[action="/admin/logout"] button');
    await page.locator('button[name=logout]').waitFor();
    await w.look('console-sign-out');
    await page.click('button[name=logout]');
    await page.waitForURL(`${server.url}/admin/signed-out`);
    await w.look('console-signed-out');

    report('admin', width, w.findings);
  } finally {
    await page.close();
  }
}

// A first administrator from bootstrap: the one-time password changed at the first
// sign-in, an authenticator enrolled there, the recovery codes, the console.
async function walkAsFirstAdministrator(width: number, role: string) {
  const first = bootstrapped.find((a) => a.role === role)!;
  const password = `Songshan-First-${width}`;
  const page = await chinesePage(browser, { viewport: { width, height: 900 } });
  try {
    const w = walk(page, width, [first.username], 51);
    await page.goto(`${server.url}/admin`);
    await page.waitForSelector('#identifier');
    await page.fill('#identifier', first.username);
    await page.fill('#password', first.one_time_password);
    await submit(page);
    await page.waitForSelector('#new_password');
    await w.look('first-sign-in-new-password');
    await page.fill('#password', first.one_time_password);
    await page.fill('#new_password', password);
    await page.fill('#confirm_password', password);
    await submit(page);
    await page.waitForSelector('form[action$="/mfa-enrol"]');
    await w.look('first-sign-in-enrol');
    const secret = await page.locator('main p.muted code').innerText();
    await page.fill('#code', await generate({ secret }));
    await page.fill('#password', password);
    await submit(page);
    await page.waitForSelector('form[action$="/enrolled"]');
    await w.look('first-sign-in-recovery-codes');
    await submit(page, 'form[action$="/enrolled"]');
    await page.waitForURL(`${server.url}/admin`);
    await w.look('first-console-home');
    report(`first-${role}`, width, w.findings);
  } finally {
    await page.close();
  }
}

// A walk took 75 s on a machine at load 17 (two cores): twice the usual ceiling.
const WALK_TIMEOUT = 240_000;

describe.skipIf(!hasChromium)('every page, walked at two widths', () => {
  for (const width of WIDTHS) {
    it(`a person, ${width} px wide`, () => walkAsPerson(width), WALK_TIMEOUT);
  }
  // Each bootstrapped account signs in for the first time once: one per width.
  for (const [width, role] of [[1280, 'system_admin'], [390, 'security_admin']] as const) {
    it(`a first administrator from admin bootstrap (${role}), ${width} px wide`, () => walkAsFirstAdministrator(width, role), WALK_TIMEOUT);
  }
  for (const width of WIDTHS) {
    it(`an administrator, ${width} px wide`, () => walkAsAdministrator(width), WALK_TIMEOUT);
  }
  it('finds Latin words, but not codes, addresses, URLs or what is marked as such', () => {
    expect(latinWords('请输入 Password 或 e-mail：li.na@example.cn https://a.example/b?c=d client_secret_basic RS256 /admin/x Google Authenticator', [])).toEqual(['Password', 'e', 'mail']);
    expect(latinWords('欢迎 walk.person.390 · English', ['walk.person.390', 'English'])).toEqual([]);
    expect(latinWords('以 resource=接口标识 申请；事件 account.created，对象 client:-jQPBCTUujpGhJewUFRlJA，操作 createClient', [])).toEqual([]);
  });
});
