import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as oidc from 'openid-client';
import { createAccount } from '../../src/accounts/accounts.ts';
import { PASSWORD_POLICIES } from '../../src/accounts/password-policy.ts';
import { claimDue, enqueueLogout, settle, type DeliverySettings } from '../../src/oidc/logout-deliveries.ts';
import { listWindows, type Window } from '../../src/windows/windows.ts';
import { adminToken, api, makeAdmin, signInAtProvider } from '../helpers/admin.ts';
import { browser, type Visit } from '../helpers/browser.ts';
import { runCliInProcess } from '../helpers/cli-in-process.ts';
import crypto from 'node:crypto';
import { onPostgres, testDatabase, type TestDatabase } from '../helpers/database.ts';
import { migrate } from '../../src/db/migrate.ts';
import { createClient, setClientDisabled } from '../../src/windows/clients.ts';
import { seedWindowRegistry } from '../../src/windows/seed.ts';
import { freePort, startNode, type Node } from '../helpers/processes.ts';
import { logoutReceiver, type LogoutReceiver } from '../helpers/logout-receiver.ts';
import { startTestServer, type TestServer } from '../helpers/server.ts';
import { eventually } from '../helpers/wait.ts';
import { windowSite, type WindowSite } from '../helpers/window-site.ts';

// Back-channel logout as a delivery (src/oidc/logout-deliveries.ts): a window that is
// down when a person signs out is told when it comes back, exactly once; one that never
// answers is given up on at the give-up age; every attempt is on record and shown.

const password = 'Yellow-River-Bridge-7';
// Retries every second or so; given up after GIVE_UP seconds.
const GIVE_UP = 20;

let server: TestServer;
let windows: Window[];
let receiver: LogoutReceiver;
let site: WindowSite;
let dir: string;
let people = 0;

beforeAll(async () => {
  server = await startTestServer({ LOGOUT_RETRY_FIRST: '1', LOGOUT_RETRY_MAX: '1', LOGOUT_GIVE_UP: String(GIVE_UP), SIGN_IN_RATE_LIMIT: '1000/60' });
  windows = await listWindows(server.db);
  receiver = await logoutReceiver();
  site = await windowSite(server, { windowId: windows[0]!.id, name: 'deliveries', backchannelLogoutUri: receiver.backchannelUri });
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sme-passport-deliveries-'));
});

afterAll(async () => {
  await receiver?.close();
  await server?.close();
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

type Delivery = { id: string; state: string; attempts: number; created_at: Date; abandoned_at: Date | null; delivered_at: Date | null; last_error: string | null };
type AttemptRow = { outcome: string; http_status: number | null; error: string | null; duration_ms: number };

const deliveryOf = async (sid: string): Promise<Delivery> => server.db('logout_deliveries').where({ sid }).first();
const attemptsOf = async (id: string): Promise<AttemptRow[]> => server.db('logout_delivery_attempts').where({ delivery_id: id }).orderBy('id');

// A new person signs in at the site and signs out there (RP-initiated logout): the
// sign-out answers, the notification waits in the queue.
async function signInAndOut(at: WindowSite = site): Promise<{ sid: string; done: Visit }> {
  const username = `person.${++people}`;
  await createAccount(server.db, { username, displayName: username, password }, PASSWORD_POLICIES.asvs);
  const you = browser();
  const signedIn = await at.signIn(you, { identifier: username, password });
  const sid = signedIn.claims.sid as string;
  const endSession = oidc.buildEndSessionUrl(at.config, { id_token_hint: signedIn.tokens.id_token!, post_logout_redirect_uri: at.postLogoutUri, state: 'bye' });
  const confirm = await you.visit(endSession, at.postLogoutUri);
  const done = await you.submit(confirm, '/session/end/confirm', { logout: 'yes' }, at.postLogoutUri);
  return { sid, done };
}

describe('back-channel logout deliveries', () => {
  it('tells a window that was down when the person signed out once it is back, exactly once, with every attempt on record', async () => {
    receiver.answer = 503;
    const { sid, done } = await signInAndOut();
    // The sign-out answered while the window was down, and the notification was already queued.
    expect(done.kind).toBe('redirect');
    const queued = await deliveryOf(sid);
    expect(queued).toMatchObject({ state: expect.stringMatching(/^(pending|delivered)$/) });
    await eventually(async () => (await attemptsOf(queued.id)).length >= 2);

    // Down altogether: connections refused.
    await receiver.down();
    await eventually(async () => (await attemptsOf(queued.id)).some((a) => /ECONNREFUSED/.test(a.error ?? '')));
    receiver.answer = 'ok';
    await receiver.up();
    const delivered = await eventually(async () => {
      const d = await deliveryOf(sid);
      return d.state === 'delivered' && d;
    });

    const attempts = await attemptsOf(queued.id);
    const mine = receiver.received.filter((r) => r.token?.sid === sid);
    const figures = {
      attempts: attempts.length,
      answered503: attempts.filter((a) => a.http_status === 503).length,
      refused: attempts.filter((a) => /ECONNREFUSED/.test(a.error ?? '')).length,
      delivered: attempts.filter((a) => a.outcome === 'delivered').length,
      receivedByWindow: mine.length,
      acceptedByWindow: receiver.accepted(sid).length,
      lost: 0,
    };
    console.info(`down-then-back figures: ${JSON.stringify(figures)}`);
    expect(figures.delivered).toBe(1);
    expect(figures.acceptedByWindow).toBe(1);
    expect(figures.answered503).toBeGreaterThanOrEqual(2);
    expect(figures.refused).toBeGreaterThanOrEqual(1);
    expect(delivered.attempts).toBe(attempts.length);
    expect(figures.receivedByWindow).toBe(figures.answered503 + 1);
    expect(attempts.at(-1)).toMatchObject({ outcome: 'delivered', http_status: null, error: null });
    // Each attempt signed a fresh logout token.
    expect(new Set(mine.map((r) => r.token!.jti)).size).toBe(mine.length);
    expect(mine.every((r) => r.token!.iss === server.url && r.token!.aud === site.clientId)).toBe(true);
    // One record on the trail for the notification, when it was delivered.
    const records = await server.db('audit_events').where({ event: 'backchannel_logout', target: `client:${site.clientId}` }).whereRaw("after->>'sid' = ?", [sid]);
    expect(records.map((r) => [r.outcome, r.after.attempts])).toEqual([['success', attempts.length]]);
    expect(server.errors).toEqual([]);
  });

  it('gives up on a window that never answers at the give-up age, and says so', async () => {
    receiver.answer = 500;
    const { sid } = await signInAndOut();
    const abandoned = await eventually(async () => {
      const d = await deliveryOf(sid);
      return d.state === 'abandoned' && d;
    });
    const attempts = await attemptsOf(abandoned.id);
    expect(attempts.length).toBeGreaterThanOrEqual(3);
    expect(attempts.every((a) => a.outcome === 'failed' && a.http_status === 500)).toBe(true);
    expect(new Date(abandoned.abandoned_at!).getTime() - new Date(abandoned.created_at).getTime()).toBeGreaterThanOrEqual(GIVE_UP * 1000 - 1000);
    expect(abandoned.last_error).toMatch(/got: 500/);
    const record = await server.db('audit_events').where({ event: 'backchannel_logout' }).whereRaw("after->>'sid' = ?", [sid]).first();
    expect(record).toMatchObject({ outcome: 'failure', reason: expect.stringMatching(/got: 500/) });
    const logged = server.errors.splice(0).map(String);
    expect(logged).toEqual([expect.stringMatching(new RegExp(`back-channel logout to ${site.clientId} abandoned after ${attempts.length} attempts`))]);
    receiver.answer = 'ok';
  });

  it('counts a window that answers too slowly, or with a redirect, as not told, and tries again', async () => {
    receiver.answer = 'slow';
    const slow = await signInAndOut();
    const slowRow = await deliveryOf(slow.sid);
    await eventually(async () => (await attemptsOf(slowRow.id)).length >= 1);
    receiver.answer = 'redirect';
    await eventually(async () => (await attemptsOf(slowRow.id)).some((a) => a.http_status === 302));
    receiver.answer = 'ok';
    await eventually(async () => (await deliveryOf(slow.sid)).state === 'delivered');
    const attempts = await attemptsOf(slowRow.id);
    expect(attempts[0]).toMatchObject({ outcome: 'failed', http_status: null, error: expect.stringMatching(/timeout|abort/i) });
    expect(attempts[0]!.duration_ms).toBeGreaterThanOrEqual(2000);
    expect(attempts.find((a) => a.http_status === 302)).toMatchObject({ outcome: 'failed', error: expect.stringMatching(/got: 302/) });
    // A redirect is not followed.
    expect(receiver.received.some((r) => r.path === '/elsewhere')).toBe(false);
    expect(receiver.accepted(slow.sid)).toHaveLength(1);
  });

  it('shows the figures in the command line, the admin API and the console, to those who may see them', async () => {
    receiver.answer = 503;
    const waiting = await signInAndOut();
    await eventually(async () => (await deliveryOf(waiting.sid)).attempts >= 1);
    const windowId = windows[0]!.id;

    const cli = await runCliInProcess(server.db, ['logout-deliveries', '--window', String(windowId), '--json'], { dir });
    expect(cli.stderr).toBe('');
    const shown = JSON.parse(cli.stdout);
    expect(shown).toMatchObject({ window: windowId, days: 7, delivered: 2, abandoned: 1, pending: 1, total: 4, rate: 0.5 });
    expect(shown.failures[0]).toMatchObject({ clientId: site.clientId, httpStatus: 503, error: expect.stringMatching(/got: 503/) });
    expect(shown.waiting).toEqual([expect.objectContaining({ clientId: site.clientId, attempts: expect.any(Number), lastError: expect.stringMatching(/got: 503/) })]);
    const human = await runCliInProcess(server.db, ['logout-deliveries', '--window', String(windowId)], { dir });
    expect(human.stdout).toContain('4 notifications, 2 delivered (50.0%), 1 abandoned, 1 pending');
    expect(human.stdout).toMatch(/latest failed attempts:\n {2}\S+\t[^\t]+\t503\t/);
    for (const [args, message] of [
      [['--window', 'abc'], /--window: "abc" is not a window id/],
      [['--window', '99999'], /no window with id 99999|window/],
      [['--window', String(windowId), '--days', '0'], /--days: "0" must be at least 1/],
      [['--window', String(windowId), '--days', '__proto__'], /--days: "__proto__" is not a number/],
    ] as const) {
      const refused = await runCliInProcess(server.db, ['logout-deliveries', ...args], { dir });
      expect({ code: refused.code, stderr: refused.stderr }).toEqual({ code: 1, stderr: expect.stringMatching(message) });
    }

    const own = await makeAdmin(server, 'deliveries.window', [{ role: 'window_admin', windowId }]);
    const other = await makeAdmin(server, 'deliveries.other', [{ role: 'window_admin', windowId: windows[1]!.id }]);
    const ownToken = await adminToken(server, own);
    expect(await api(server, ownToken, 'GET', `/windows/${windowId}/logout-deliveries?days=30`)).toMatchObject({ status: 200, body: { days: 30, pending: 1, delivered: 2 } });
    expect(await api(server, await adminToken(server, other), 'GET', `/windows/${windowId}/logout-deliveries`)).toMatchObject({ status: 403 });
    expect(await api(server, ownToken, 'GET', `/windows/${windowId}/logout-deliveries?days=31`)).toMatchObject({ status: 400 });

    // Another administrator of the window for the console: each TOTP code counts once.
    const viewer = await makeAdmin(server, 'deliveries.viewer', [{ role: 'window_admin', windowId }]);
    const b = browser();
    const login = await b.visit(`${server.url}/admin`);
    await signInAtProvider(b, login, viewer, '\0');
    const page = await b.visit(`${server.url}/admin/windows/${windowId}/logout-deliveries`);
    expect(page.kind === 'page' && page.status).toBe(200);
    const html = page.kind === 'page' ? page.html : '';
    expect(html).toContain('50.0%');
    expect(html).toMatch(/id="delivery-failures"[\s\S]*<td>503<\/td>/);
    expect(html).toMatch(/id="delivery-waiting"[\s\S]*got: 503/);
    const windowPage = await b.visit(`${server.url}/admin/windows/${windowId}`);
    expect(windowPage.kind === 'page' && windowPage.html).toContain(`href="/admin/windows/${windowId}/logout-deliveries"`);

    receiver.answer = 'ok';
    await eventually(async () => (await deliveryOf(waiting.sid)).state === 'delivered');
    server.errors.splice(0);
  });

  it('gives up at once on a notification whose client was disabled meanwhile', async () => {
    const other = await windowSite(server, { windowId: windows[2]!.id, name: 'disabled-site', backchannelLogoutUri: receiver.backchannelUri });
    await setClientDisabled(server.db, other.clientId, true);
    await enqueueLogout(server.db, { clientId: other.clientId, windowId: windows[2]!.id, accountId: 'someone', sid: 'sid-of-a-disabled-client' });
    const abandoned = await eventually(async () => {
      const d = await deliveryOf('sid-of-a-disabled-client');
      return d.state === 'abandoned' && d;
    });
    expect(abandoned).toMatchObject({ attempts: 1, last_error: 'the client is disabled or deleted' });
    expect(receiver.received.some((r) => r.token?.sid === 'sid-of-a-disabled-client')).toBe(false);
    expect(server.errors.splice(0).map(String)).toEqual([`back-channel logout to ${other.clientId} abandoned after 1 attempt: the client is disabled or deleted`]);
  });

  it('does not answer a sign-out as done when its notification cannot be queued', async () => {
    await server.db.raw("CREATE FUNCTION refuse_delivery() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'queue unavailable'; END $$");
    await server.db.raw('CREATE TRIGGER refuse_delivery BEFORE INSERT ON logout_deliveries FOR EACH ROW EXECUTE FUNCTION refuse_delivery()');
    try {
      const { done } = await signInAndOut();
      expect(done.kind === 'page' && done.status).toBe(500);
    } finally {
      await server.db.raw('DROP TRIGGER refuse_delivery ON logout_deliveries');
      await server.db.raw('DROP FUNCTION refuse_delivery()');
    }
    expect(server.errors.splice(0).map(String)[0]).toMatch(new RegExp(`queueing the back-channel logout of ${site.clientId} failed|queue unavailable`));
  });

  it('publishes the number of pending deliveries as a metric', async () => {
    const res = await fetch(`${server.url}/metrics`);
    expect(await res.text()).toMatch(/^sme_passport_logout_deliveries_pending \d+$/m);
  });
});

describe('claiming deliveries', () => {
  const settings: DeliverySettings = { firstRetrySeconds: 1, maxRetrySeconds: 1, giveUpSeconds: 60 };

  it('gives each due delivery to one claimant however many claim at once, and a lapsed lease to the next', async () => {
    const database = await testDatabase();
    try {
      const db = database.db;
      for (let i = 0; i < 30; i++) await enqueueLogout(db, { clientId: 'a-client', windowId: null, accountId: 'someone', sid: `sid-${i}` });
      const claims = await Promise.all([claimDue(db), claimDue(db), claimDue(db)]);
      const ids = claims.flat().map((c) => c.id);
      expect(new Set(ids).size).toBe(ids.length);
      expect(ids).toHaveLength(30);
      // Held by their claims: nothing is due.
      expect(await claimDue(db)).toEqual([]);

      // A node that died mid-delivery: its lease runs out, another node claims the row.
      const first = claims.flat()[0]!;
      await db('logout_deliveries').where({ id: first.id }).update({ next_attempt_at: db.fn.now() });
      const [again] = await claimDue(db);
      expect(again).toMatchObject({ id: first.id });
      expect(again!.claim).not.toBe(first.claim);
      // The late answer of the first changes nothing; the second settles it.
      expect(await settle(db, settings, first, { delivered: true, durationMs: 5 })).toBeUndefined();
      expect(await settle(db, settings, again!, { delivered: true, durationMs: 5 })).toEqual({ state: 'delivered', attempts: 1 });
      expect(await settle(db, settings, again!, { delivered: true, durationMs: 5 })).toBeUndefined();
      const { n } = (await db('logout_delivery_attempts').where({ delivery_id: first.id }).count({ n: '*' }).first()) as { n: string | number };
      expect(Number(n)).toBe(3);

      // A failure within the give-up age waits for its retry; a final one is abandoned at once.
      const [, second, third] = claims.flat();
      expect(await settle(db, settings, second!, { delivered: false, error: 'expected 200 OK, got: 503', httpStatus: 503, durationMs: 5 })).toEqual({ state: 'pending', attempts: 1 });
      expect(await settle(db, settings, third!, { delivered: false, error: 'the client is disabled or deleted', durationMs: 1, final: true })).toEqual({ state: 'abandoned', attempts: 1 });
    } finally {
      await database.close();
    }
  });
});

// Two server processes on one PostgreSQL database: people sign out at either node while
// the window is down; both nodes retry, and each notification reaches the window once.
describe.skipIf(!onPostgres())('two nodes delivering from one queue', () => {
  let database: TestDatabase;
  let nodeDir: string;
  let ports: number[] = [];
  let nodes: Node[] = [];
  let window: LogoutReceiver;
  let client: { clientId: string; clientSecret: string | undefined };
  const redirectUri = 'http://127.0.0.1:9/two-nodes/callback';
  const postLogoutUri = 'http://127.0.0.1:9/two-nodes/signed-out';

  beforeAll(async () => {
    database = await testDatabase();
    nodeDir = fs.mkdtempSync(path.join(os.tmpdir(), 'sme-passport-nodes-'));
    await migrate(database);
    await seedWindowRegistry(database.db);
    const [first] = await listWindows(database.db);
    window = await logoutReceiver();
    client = await createClient(database.db, { windowId: first!.id, name: 'two-nodes', redirectUris: [redirectUri], postLogoutRedirectUris: [postLogoutUri], backchannelLogoutUri: window.backchannelUri });
    ports = [await freePort(), await freePort()];
    const env = {
      DATABASE_URL: database.url!,
      ISSUER: `http://localhost:${ports[0]}`,
      MASTER_KEY: crypto.randomBytes(32).toString('base64'),
      DATA_DIR: nodeDir,
      SIGN_IN_RATE_LIMIT: '10000/60',
      LOGOUT_RETRY_FIRST: '1',
      LOGOUT_RETRY_MAX: '1',
    };
    nodes = await Promise.all(ports.map((port) => startNode({ ...env, PORT: String(port) })));
  });

  afterAll(async () => {
    await Promise.all(nodes.map((n) => n.stop()));
    await window?.close();
    await database?.close();
    if (nodeDir) fs.rmSync(nodeDir, { recursive: true, force: true });
  });

  const onNode = (url: URL | string, i: number) => Object.assign(new URL(url), { port: String(ports[i]) });
  async function viaNode(i: number) {
    const config = await oidc.discovery(new URL(nodes[0]!.url), client.clientId, client.clientSecret, undefined, { execute: [oidc.allowInsecureRequests] });
    config[oidc.customFetch] = (url, options) => fetch(onNode(url, i), options as RequestInit);
    return config;
  }

  // Signs in and out at node i; the sid of the session.
  async function signInAndOutAt(i: number, username: string): Promise<string> {
    await createAccount(database.db, { username, displayName: username, password }, PASSWORD_POLICIES.asvs);
    const you = browser();
    const config = await viaNode(i);
    const verifier = oidc.randomPKCECodeVerifier();
    const url = oidc.buildAuthorizationUrl(config, { redirect_uri: redirectUri, scope: 'openid', code_challenge: await oidc.calculatePKCECodeChallenge(verifier), code_challenge_method: 'S256', state: 's' });
    const back = await you.submit(await you.visit(onNode(url, i), redirectUri), '/login', { identifier: username, password }, redirectUri);
    if (back.kind !== 'redirect') throw new Error('sign-in failed');
    const tokens = await oidc.authorizationCodeGrant(config, back.to, { pkceCodeVerifier: verifier, expectedState: 's' });
    const endSession = oidc.buildEndSessionUrl(config, { id_token_hint: tokens.id_token!, post_logout_redirect_uri: postLogoutUri });
    const done = await you.submit(await you.visit(onNode(endSession, i), postLogoutUri), '/session/end/confirm', { logout: 'yes' }, postLogoutUri);
    expect(done.kind).toBe('redirect');
    return tokens.claims()!.sid as string;
  }

  it('delivers each notification once, whichever node queued it and however many retry it', async () => {
    window.answer = 503;
    const sids: string[] = [];
    for (let i = 0; i < 6; i++) sids.push(await signInAndOutAt(i % 2, `node.person.${i}`));
    const attemptsOf = async () =>
      (await database.db('logout_delivery_attempts as a').join('logout_deliveries as d', 'd.id', 'a.delivery_id').select('d.sid', 'a.outcome')) as Array<{ sid: string; outcome: string }>;
    await eventually(async () => {
      const attempts = await attemptsOf();
      return sids.every((sid) => attempts.filter((a) => a.sid === sid).length >= 2);
    });
    window.answer = 'ok';
    await eventually(async () => Number(((await database.db('logout_deliveries').where({ state: 'delivered' }).count({ n: '*' }).first()) as { n: string }).n) === sids.length);
    for (const sid of sids) expect(window.accepted(sid), sid).toHaveLength(1);
    const attempts = await attemptsOf();
    expect(attempts.filter((a) => a.outcome === 'delivered')).toHaveLength(sids.length);
    // Every request the window received is an attempt on record, and no more.
    expect(window.received.filter((r) => r.token)).toHaveLength(attempts.length);
    const jtis = window.received.map((r) => r.token!.jti);
    expect(new Set(jtis).size).toBe(jtis.length);
    console.info(`two nodes: ${sids.length} notifications, ${attempts.length} attempts, ${attempts.filter((a) => a.outcome === 'delivered').length} delivered, each accepted once`);
    for (const node of nodes) expect(node.output()).not.toMatch(/"level":"?(error|50)/);
  });
});
