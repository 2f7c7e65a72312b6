import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createAccount } from '../../src/accounts/accounts.ts';
import { PASSWORD_POLICIES } from '../../src/accounts/password-policy.ts';
import { openPostgres } from '../../src/db/connect.ts';
import { migrate } from '../../src/db/migrate.ts';
import { createClient } from '../../src/windows/clients.ts';
import { seedWindowRegistry } from '../../src/windows/seed.ts';
import { listWindows } from '../../src/windows/windows.ts';
import { browser, type Browser } from '../helpers/browser.ts';
import { onPostgres } from '../helpers/database.ts';
import { privateCluster, whyNoPrivateCluster, type PostgresCluster } from '../helpers/postgres-cluster.ts';
import { freePort, runCli, startNode, type Node } from '../helpers/processes.ts';
import { logContractBreaches } from '../helpers/log-lines.ts';

// The database server restarts while two nodes serve token requests and single
// sign-on hops. What a client may see meanwhile: a success, or "temporarily
// unavailable" (503 with Retry-After, or the authorization error the spec allows);
// never a 500, never a request left hanging. Afterwards the audit chain verifies and
// everything the nodes wrote is JSON lines with no SQL and no request path.

const why = onPostgres() ? whyNoPrivateCluster() : 'runs on PostgreSQL only (this run is on embedded PGlite)';

type Answer = { kind: 'token' | 'hop'; label: string; ok: boolean; start: number; end: number };

const FORM = 'application/x-www-form-urlencoded';
const basic = (id: string, secret: string) => `Basic ${Buffer.from(`${encodeURIComponent(id)}:${encodeURIComponent(secret)}`).toString('base64')}`;
const REQUEST_CEILING_MS = 15_000;

// What a request came back with, as one short label; the error field of an OAuth
// error body or an authorization error redirect is part of it.
async function labelOf(res: Response): Promise<string> {
  const retryAfter = res.headers.get('retry-after') ? '' : ' without Retry-After';
  const type = res.headers.get('content-type') ?? '';
  const body = type.includes('json') ? ((await res.json()) as { error?: string }) : (await res.arrayBuffer(), {});
  if (res.status === 503) return `503 ${body.error ?? type.split(';')[0]}${retryAfter}`;
  return body.error ? `${res.status} ${body.error}` : String(res.status);
}

async function timed(kind: Answer['kind'], work: () => Promise<{ label: string; ok: boolean }>): Promise<Answer> {
  const start = performance.now();
  try {
    return { kind, ...(await work()), start, end: performance.now() };
  } catch (err) {
    const label = (err as Error).name === 'TimeoutError' ? 'no answer' : `network error ${(err as Error).message}`;
    return { kind, label, ok: false, start, end: performance.now() };
  }
}

describe.skipIf(why !== undefined)(`a PostgreSQL restart under load${why ? ` (skipped: ${why})` : ''}`, () => {
  const person = (i: number) => ({ username: `hopper.${i}`, displayName: `Hopper ${i}`, password: `Yellow-River-Bridge-${i}7` });
  const redirectUri = 'http://127.0.0.1:9/fault/callback';
  let cluster: PostgresCluster | undefined;
  let dataDir: string;
  let nodes: Node[] = [];
  let ports: number[] = [];
  let env: Record<string, string>;
  let service: { clientId: string; clientSecret: string };
  let site: { clientId: string; clientSecret: string };

  beforeAll(async () => {
    cluster = await privateCluster('sme_passport');
    dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'sme-passport-fault-'));
    const database = openPostgres(cluster.url);
    const { db, close } = database;
    try {
      await migrate(database);
      await seedWindowRegistry(db);
      const [window] = await listWindows(db);
      const machine = await createClient(db, { windowId: window!.id, name: 'fault service', redirectUris: [], grantTypes: ['client_credentials'] });
      const web = await createClient(db, { windowId: window!.id, name: 'fault site', redirectUris: [redirectUri] });
      service = { clientId: machine.clientId, clientSecret: machine.clientSecret! };
      site = { clientId: web.clientId, clientSecret: web.clientSecret! };
      for (const i of [0, 1]) await createAccount(db, person(i), PASSWORD_POLICIES.mlps);
    } finally {
      await close();
    }
    ports = [await freePort(), await freePort()];
    env = { DATABASE_URL: cluster.url, ISSUER: `http://localhost:${ports[0]}`, MASTER_KEY: crypto.randomBytes(32).toString('base64'), DATA_DIR: dataDir };
    nodes = await Promise.all(ports.map((port) => startNode({ ...env, PORT: String(port) })));
  });

  afterAll(async () => {
    await Promise.all(nodes.map((n) => n.stop()));
    await cluster?.drop();
    if (dataDir) fs.rmSync(dataDir, { recursive: true, force: true });
  });

  const base = (i: number) => `http://localhost:${ports[i % ports.length]}`;
  const authorizeUrl = (i: number, state: string) =>
    `${base(i)}/auth?${new URLSearchParams({ client_id: site.clientId, response_type: 'code', scope: 'openid', redirect_uri: redirectUri, state })}`;

  async function signIn(i: number): Promise<Browser> {
    const you = browser();
    const page = await you.visit(authorizeUrl(i, 'sign-in'), redirectUri);
    const back = await you.submit(page, '/login', { identifier: person(i).username, password: person(i).password }, redirectUri);
    if (back.kind !== 'redirect' || !back.to.searchParams.get('code')) throw new Error('the sign-in before the restart did not complete');
    return you;
  }

  const tokenRequest = (i: number) =>
    timed('token', async () => {
      const res = await fetch(`${base(i)}/token`, {
        method: 'POST',
        headers: { authorization: basic(service.clientId, service.clientSecret), 'content-type': FORM },
        body: 'grant_type=client_credentials',
        signal: AbortSignal.timeout(REQUEST_CEILING_MS),
      });
      const label = await labelOf(res);
      return { label, ok: res.status === 200 };
    });

  // A single sign-on hop: the session alone gets a code, which the site redeems.
  const hop = (you: Browser, i: number) =>
    timed('hop', async () => {
      const state = crypto.randomBytes(8).toString('base64url');
      const auth = await you.fetch(authorizeUrl(i, state), { redirect: 'manual', signal: AbortSignal.timeout(REQUEST_CEILING_MS) });
      const location = auth.headers.get('location');
      const to = location ? new URL(location, base(i)) : undefined;
      const code = to?.href.startsWith(redirectUri) ? to.searchParams.get('code') : null;
      if (auth.status !== 303 || !code) {
        const error = to?.href.startsWith(redirectUri) ? to.searchParams.get('error') : null;
        if (error) return (await auth.arrayBuffer(), { label: `authorize redirect error=${error}`, ok: false });
        return { label: `authorize ${await labelOf(auth)}`, ok: false };
      }
      await auth.arrayBuffer();
      const token = await fetch(`${base(i + 1)}/token`, {
        method: 'POST',
        headers: { authorization: basic(site.clientId, site.clientSecret), 'content-type': FORM },
        body: new URLSearchParams({ grant_type: 'authorization_code', code, redirect_uri: redirectUri }),
        signal: AbortSignal.timeout(REQUEST_CEILING_MS),
      });
      return { label: `code ${await labelOf(token)}`, ok: token.status === 200 };
    });

  it('answers every request with a success or a 503 with Retry-After, recovers within 5 s, and keeps the audit chain and the log contract', async () => {
    const people = await Promise.all([0, 1].map(signIn));
    const answers: Answer[] = [];
    let stopAt = Number.POSITIVE_INFINITY;
    const loop = async (work: () => Promise<Answer>) => {
      while (performance.now() < stopAt) answers.push(await work());
    };
    const loops = [
      ...[0, 1, 2, 3].map((i) => loop(() => tokenRequest(i))),
      ...people.map((you, i) => loop(() => hop(you, i))),
    ];

    await new Promise((resolve) => setTimeout(resolve, 1500));
    const restartStart = performance.now();
    await cluster!.restart();
    const restartEnd = performance.now();
    // Long enough after the database is back to see every node succeed again.
    stopAt = restartEnd + 6000;
    await Promise.all(loops);

    const during = answers.filter((a) => a.end >= restartStart);
    const byLabel: Record<string, number> = {};
    for (const a of during) byLabel[`${a.kind}: ${a.label}`] = (byLabel[`${a.kind}: ${a.label}`] ?? 0) + 1;
    const failures = during.filter((a) => !a.ok);
    const lastFailureEnd = Math.max(restartEnd, ...failures.map((a) => a.end));
    const recoverySeconds = (lastFailureEnd - restartEnd) / 1000;
    const seconds = (ms: number) => Math.round(ms) / 1000;
    const breaches = nodes.map((node) => logContractBreaches(node.output(), ['POST /token', '/auth?', redirectUri]));
    const figures = {
      restartSeconds: seconds(restartEnd - restartStart),
      failureWindowSeconds: failures.length ? seconds(Math.max(...failures.map((a) => a.end)) - Math.min(...failures.map((a) => a.start))) : 0,
      answersFromRestartOn: during.length,
      failures: failures.length,
      recoverySecondsAfterDatabaseBack: seconds(recoverySeconds * 1000),
      byLabel,
      logLinesBreakingTheContract: breaches.map((b) => b.length),
    };
    console.log(`database restart figures: ${JSON.stringify(figures)}`);

    const acceptable = (label: string) => /^(authorize |code )?503 temporarily_unavailable$|^(authorize )?503 text\/html$|^authorize redirect error=temporarily_unavailable$/.test(label);
    expect(failures.map((a) => `${a.kind}: ${a.label}`).filter((label) => !acceptable(label.replace(/^\w+: /, '')))).toEqual([]);
    expect(recoverySeconds).toBeLessThan(5);
    for (const kind of ['token', 'hop'] as const) expect(answers.some((a) => a.kind === kind && a.ok && a.start > lastFailureEnd)).toBe(true);

    const verified = await runCli(['audit', 'verify', '--json'], env);
    expect({ code: verified.code, stderr: verified.stderr }).toEqual({ code: 0, stderr: '' });
    expect(JSON.parse(verified.stdout)).toMatchObject({ ok: true });

    expect(breaches.flat()).toEqual([]);
  });
});
