import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import http2 from 'node:http2';
import tls from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as oidc from 'openid-client';
import { createAccount } from '../../src/accounts/accounts.ts';
import { PASSWORD_POLICIES } from '../../src/accounts/password-policy.ts';
import { createClient } from '../../src/windows/clients.ts';
import { seedWindowRegistry } from '../../src/windows/seed.ts';
import { listWindows } from '../../src/windows/windows.ts';
import { migrate } from '../../src/db/migrate.ts';
import { browser } from '../helpers/browser.ts';
import { startLoad, totalFailed, totalRequests, KINDS, type LoadParties, type LoadReport } from '../helpers/cluster-load.ts';
import { onPostgres, testDatabase, type TestDatabase } from '../helpers/database.ts';
import { missingTools, passThroughLogout, toolsPresent } from '../helpers/examples.ts';
import { NGINX, OPENSSL, selfSignedCertificate, startNginx, tempDir, trustInThisProcess, type Nginx } from '../helpers/nginx.ts';
import { freePort, spawnNode, type Node } from '../helpers/processes.ts';
import { eventually } from '../helpers/wait.ts';
import { relyingParty } from '../helpers/window-site.ts';

// Three nodes in production mode on one PostgreSQL database behind Debian's nginx with
// deploy/nginx/sme-passport.conf, over TLS: a province's cluster on one machine. What a
// person and the window sites see through the balancer while nodes are restarted one at
// a time, or one dies.

const TOOLS = { [NGINX]: 'nginx', [OPENSSL]: 'openssl' };
const NODES = 3;
// Virtual users of the load: each has one request in flight at a time.
const USERS = 3;

const person = { username: 'zhou.min', displayName: '周敏', password: 'Songshan-Peak-1491' };
const credentials = { identifier: person.username, password: person.password };

let database: TestDatabase;
let dir: string;
let nginx: Nginx | undefined;
let issuer: string;
let httpPort: number;
let ports: number[] = [];
// Each slot's current process, and the output of every process it had.
let nodes: Node[] = [];
const earlierOutput: string[][] = [];
let env: Record<string, string>;
const sites = {
  first: { redirectUri: 'http://127.0.0.1:9/first/callback', postLogoutUri: 'http://127.0.0.1:9/first/signed-out' },
  second: { redirectUri: 'http://127.0.0.1:9/second/callback', postLogoutUri: 'http://127.0.0.1:9/second/signed-out' },
};
let clients: Record<'first' | 'second' | 'service', { clientId: string; clientSecret: string | undefined }>;

async function startNodeOn(slot: number): Promise<Node> {
  const { started, ...node } = spawnNode({ ...env, PORT: String(ports[slot]) });
  try {
    await started;
  } catch (err) {
    await node.stop();
    throw err;
  }
  return { ...node, url: issuer };
}

const nodeUrl = (slot: number) => `http://127.0.0.1:${ports[slot]}`;

// Request lines a slot's processes logged (each request ends with one, naming its
// route), the test's own readiness probes left out.
function requestsOn(slot: number): number {
  const outputs = [...(earlierOutput[slot] ?? []), nodes[slot]!.output()];
  return outputs
    .join('\n')
    .split('\n')
    .filter((line) => line.includes('"route":') && !line.includes('"route":"/readyz"')).length;
}

const ready = async (slot: number) => (await fetch(`${nodeUrl(slot)}/readyz`).catch(() => undefined))?.status === 200;

const rp = (site: 'first' | 'second') => relyingParty({ url: issuer }, { ...clients[site], redirectUri: sites[site].redirectUri });

const parties: LoadParties = {
  first: () => rp('first'),
  second: () => rp('second'),
  service: () => oidc.discovery(new URL(issuer), clients.service.clientId, clients.service.clientSecret),
  person: credentials,
};

// The TLS version a handshake with nginx settled on, or why there was none.
function handshake(version: tls.SecureVersion): Promise<string> {
  return new Promise((resolve) => {
    const socket = tls.connect({ host: '127.0.0.1', port: Number(new URL(issuer).port), servername: 'localhost', minVersion: version, maxVersion: version, ciphers: 'DEFAULT@SECLEVEL=0' }, () => {
      resolve(socket.getProtocol() ?? 'none');
      socket.end();
    });
    socket.on('error', (err: Error & { code?: string }) => resolve(err.code ?? err.message));
  });
}

// A GET over HTTP/2, as browsers send it (the Host is the :authority pseudo-header).
function getOverHttp2(pathname: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const session = http2.connect(issuer);
    session.on('error', reject);
    const stream = session.request({ ':path': pathname });
    let status = 0;
    let body = '';
    stream.on('response', (headers) => (status = Number(headers[':status'])));
    stream.setEncoding('utf8');
    stream.on('data', (chunk: string) => (body += chunk));
    stream.on('end', () => {
      session.close();
      resolve({ status, body });
    });
    stream.on('error', reject);
  });
}

// Whether the session in this browser is known to a node asked directly (as nginx would
// ask it): a silent authorization request gets a code, or login_required.
async function sessionOnNode(you: ReturnType<typeof browser>, slot: number): Promise<'code' | 'login_required' | string> {
  const config = (await rp('first')).config;
  const verifier = oidc.randomPKCECodeVerifier();
  const url = oidc.buildAuthorizationUrl(config, { redirect_uri: sites.first.redirectUri, scope: 'openid', prompt: 'none', state: 's', code_challenge: await oidc.calculatePKCECodeChallenge(verifier), code_challenge_method: 'S256' });
  const direct = new URL(`${url.pathname}${url.search}`, nodeUrl(slot));
  const res = await fetch(direct, {
    redirect: 'manual',
    headers: { cookie: await you.jar.getCookieString(url.href), 'x-forwarded-proto': 'https', 'x-forwarded-host': new URL(issuer).host },
  });
  const back = new URL(res.headers.get('location') ?? 'http://none/');
  return back.searchParams.has('code') ? 'code' : (back.searchParams.get('error') ?? `status ${res.status}`);
}

function show(label: string, report: LoadReport, extra: Record<string, unknown> = {}) {
  const byKind = Object.fromEntries(KINDS.map((k) => [k, `${report.byKind[k].requests} requests, ${report.byKind[k].flows} flows, ${report.byKind[k].failed} failed`]));
  console.log(`${label}: ${JSON.stringify({ requests: totalRequests(report), failedFlows: totalFailed(report), serverErrors: report.serverErrors, byKind, ...extra }, null, 2)}`);
  if (report.failures.length > 0) console.log(`${label}, failures:\n  ${report.failures.slice(0, 20).join('\n  ')}`);
  // Where they came from: the nodes' request lines that were not a success, nginx's errors.
  const nodeLines = ports.flatMap((_, slot) => [...(earlierOutput[slot] ?? []), nodes[slot]!.output()].join('\n').split('\n').filter((l) => /"status":[45]\d\d/.test(l) && !l.includes('"route":"/readyz"')).map((l) => `node ${slot}: ${l}`));
  const nginxLines = nginx!.output().split('\n').filter((l) => /\[(error|crit|alert|emerg)\]/.test(l));
  if (nodeLines.length + nginxLines.length > 0) console.log(`${label}, errors logged:\n  ${[...nodeLines, ...nginxLines].slice(-30).join('\n  ')}`);
}

async function setUp() {
  database = await testDatabase();
  dir = tempDir('sme-passport-nginx-');
  await migrate(database);
  await seedWindowRegistry(database.db);
  const [first, second] = await listWindows(database.db);
  clients = {
    first: await createClient(database.db, { windowId: first!.id, name: 'first window', redirectUris: [sites.first.redirectUri], postLogoutRedirectUris: [sites.first.postLogoutUri] }),
    second: await createClient(database.db, { windowId: second!.id, name: 'second window', redirectUris: [sites.second.redirectUri], postLogoutRedirectUris: [sites.second.postLogoutUri] }),
    service: await createClient(database.db, { windowId: first!.id, name: 'back end', grantTypes: ['client_credentials'] }),
  };
  await createAccount(database.db, person, PASSWORD_POLICIES.mlps);

  const certificate = selfSignedCertificate(dir);
  trustInThisProcess(certificate);
  const httpsPort = await freePort();
  ports = [];
  for (let i = 0; i < NODES; i++) ports.push(await freePort());
  issuer = `https://localhost:${httpsPort}`;
  env = {
    NODE_ENV: 'production',
    HOST: '127.0.0.1',
    ISSUER: issuer,
    TRUST_PROXY: 'true',
    DATABASE_URL: database.url!,
    MASTER_KEY: crypto.randomBytes(32).toString('base64'),
    DATA_DIR: path.join(dir, 'data'),
    // Every request comes from 127.0.0.1.
    SIGN_IN_RATE_LIMIT: '100000/60',
    DATABASE_POOL_MAX: '4',
    PASSWORD_HASH_CONCURRENCY: '1',
  };
  // One after another: the first start seeds, and three at once are slow on two cores.
  for (let slot = 0; slot < NODES; slot++) nodes.push(await startNodeOn(slot));
  await eventually(async () => (await Promise.all(ports.map((_, slot) => ready(slot)))).every(Boolean), { every: 200 });
  httpPort = await freePort();
  nginx = await startNginx({ httpsPort, httpPort, nodes: ports.map((p) => `127.0.0.1:${p}`), certificate, dir });
}

async function tearDown() {
  await nginx?.stop();
  await Promise.all(nodes.map((n) => n.stop()));
  await database?.close();
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
}

const present = onPostgres() && toolsPresent(import.meta.filename, missingTools(TOOLS));
it.runIf(present)('has its tools installed', () => expect(missingTools(TOOLS)).toEqual([]));

describe.runIf(present)('three nodes behind nginx with deploy/nginx/sme-passport.conf (PostgreSQL only: the nodes share one database)', () => {
  beforeAll(setUp);
  afterAll(tearDown);

  it('signs a person in over TLS, signs them in at a second window without a password, and signs them out of every node, the requests spread over all three', async () => {
    // The site file as it is, with no warning.
    expect(nginx!.output()).not.toMatch(/\[(warn|error|crit|alert|emerg)\]/);
    const before = ports.map((_, slot) => requestsOn(slot));
    const discovery = await fetch(`${issuer}/.well-known/openid-configuration`);
    // The node builds its URLs from the Host and scheme nginx passes on; the request id is nginx's.
    expect(await discovery.json()).toMatchObject({ issuer, authorization_endpoint: `${issuer}/auth`, end_session_endpoint: `${issuer}/session/end` });
    const requestId = discovery.headers.get('x-request-id')!;
    expect(requestId).toMatch(/^[0-9a-f]{32}$/);
    expect(discovery.headers.get('strict-transport-security')).toBe('max-age=63072000');
    // Plain HTTP is sent to HTTPS (on 443, as in production).
    const plain = await fetch(`http://localhost:${httpPort}/account`, { redirect: 'manual' });
    expect([plain.status, plain.headers.get('location')]).toEqual([301, `https://localhost/account`]);

    const overHttp2 = await getOverHttp2('/.well-known/openid-configuration');
    expect(overHttp2.status).toBe(200);
    expect(JSON.parse(overHttp2.body)).toMatchObject({ issuer, authorization_endpoint: `${issuer}/auth` });
    // TLS 1.2 and 1.3 only.
    expect(await handshake('TLSv1.3')).toBe('TLSv1.3');
    expect(await handshake('TLSv1.2')).toBe('TLSv1.2');
    expect(await handshake('TLSv1.1')).not.toMatch(/^TLS/);

    const you = browser();
    const first = await rp('first');
    const signedIn = await first.signIn(you, credentials);
    expect(signedIn.askedForPassword).toBe(true);
    expect(signedIn.claims.preferred_username).toBe(person.username);
    // The node knows it is reached over HTTPS (X-Forwarded-Proto): its cookies are Secure.
    const cookies = await you.jar.getCookies(issuer);
    expect(cookies.length).toBeGreaterThan(0);
    expect(cookies.filter((c) => !c.secure).map((c) => c.key)).toEqual([]);
    const sso = await (await rp('second')).signIn(you, undefined);
    expect(sso.askedForPassword).toBe(false);
    expect(sso.claims.sub).toBe(signedIn.claims.sub);
    expect(await Promise.all(ports.map((_, slot) => sessionOnNode(you, slot)))).toEqual(['code', 'code', 'code']);

    const end = new URL(`${issuer}/session/end`);
    end.search = new URLSearchParams({ id_token_hint: sso.tokens.id_token!, post_logout_redirect_uri: sites.second.postLogoutUri }).toString();
    const out = await passThroughLogout(you, await you.visit(end, sites.second.postLogoutUri), sites.second.postLogoutUri);
    expect(out.kind === 'redirect' && out.to.href).toBe(sites.second.postLogoutUri);
    expect(await Promise.all(ports.map((_, slot) => sessionOnNode(you, slot)))).toEqual(['login_required', 'login_required', 'login_required']);
    // And through the balancer: the password again.
    expect((await first.signIn(browser(), credentials)).askedForPassword).toBe(true);

    // One request id in nginx's access log and a node's log line; no query string logged.
    expect(nginx!.accessLog()).toContain(` ${requestId} `);
    expect(ports.some((_, slot) => nodes[slot]!.output().includes(`"requestId":"${requestId}"`))).toBe(true);
    expect(nginx!.accessLog()).toMatch(/"GET \/session\/end HTTP\/1\.1" /);
    expect(nginx!.accessLog()).not.toContain('?');

    const through = ports.map((_, slot) => requestsOn(slot) - before[slot]!);
    console.log(`requests per node through nginx (and the test's direct checks, 2 per node): ${through.join(', ')}`);
    for (const n of through) expect(n).toBeGreaterThan(2);
  });

  it('serves a load without one failed request while the nodes are restarted one at a time (SIGTERM, exit 0, start, ready)', { timeout: 600_000 }, async () => {
    const nginxCpuBefore = nginx!.cpuSeconds();
    const load = startLoad(parties, USERS);
    const restarts: Array<{ node: number; stopMs: number; exitCode: number | null; startMs: number; servingAgainMs: number }> = [];
    try {
      // Some load first, so each restart happens under it.
      await eventually(() => totalRequests(load.report()) > 50, { every: 100 });
      for (let slot = 0; slot < NODES; slot++) {
        const old = nodes[slot]!;
        const stopping = Date.now();
        const exited = new Promise<number | null>((resolve) => old.process.once('exit', (code) => resolve(code)));
        old.process.kill('SIGTERM');
        const exitCode = await exited;
        const stopMs = Date.now() - stopping;
        earlierOutput[slot] = [...(earlierOutput[slot] ?? []), old.output()];
        const starting = Date.now();
        nodes[slot] = await startNodeOn(slot);
        await eventually(() => ready(slot), { every: 100 });
        const startMs = Date.now() - starting;
        // nginx sends it requests again once fail_timeout has passed.
        const served = requestsOn(slot);
        await eventually(() => requestsOn(slot) > served, { every: 100 });
        restarts.push({ node: slot, stopMs, exitCode, startMs, servingAgainMs: Date.now() - starting });
        expect(exitCode, old.output().slice(-3000)).toBe(0);
      }
    } finally {
      const report = await load.stop();
      // What TLS and proxying cost nginx per request (docs/capacity.md sizes the balancer with it).
      const nginxCpuMsPerRequest = Number((((nginx!.cpuSeconds() - nginxCpuBefore) * 1000) / Math.max(1, totalRequests(report))).toFixed(3));
      show('rolling restart under load', report, { users: USERS, restarts, nginxCpuMsPerRequest });
    }
    const report = load.report();
    expect(report.failures).toEqual([]);
    expect(report.serverErrors).toBe(0);
    for (const kind of KINDS) expect(report.byKind[kind].flows, kind).toBeGreaterThan(0);
  });

  it('loses at most the requests in flight on a node that is killed (SIGKILL), and sessions go on on the others', { timeout: 600_000 }, async () => {
    const you = browser();
    await (await rp('first')).signIn(you, credentials);
    const load = startLoad(parties, USERS);
    const victim = NODES - 1;
    try {
      await eventually(() => totalRequests(load.report()) > 50, { every: 100 });
      const exited = new Promise<void>((resolve) => nodes[victim]!.process.once('exit', () => resolve()));
      nodes[victim]!.process.kill('SIGKILL');
      await exited;
      const atKill = totalRequests(load.report());
      // The load goes on over the two others for a while.
      await eventually(() => totalRequests(load.report()) > atKill + 300, { every: 100 });
    } finally {
      const report = await load.stop();
      show('one node killed under load', report, { users: USERS });
    }
    const report = load.report();
    expect(totalFailed(report), report.failures.join('\n')).toBeLessThanOrEqual(USERS);
    const hop = await (await rp('second')).signIn(you, undefined);
    expect(hop.askedForPassword).toBe(false);
  });
});
