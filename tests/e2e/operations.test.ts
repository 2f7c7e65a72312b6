import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { AddressInfo } from 'node:net';
import Koa from 'koa';
import Router from '@koa/router';
import { createAccount } from '../../src/accounts/accounts.ts';
import { PASSWORD_POLICIES } from '../../src/accounts/password-policy.ts';
import { windowSite, type WindowSite } from '../helpers/window-site.ts';
import { browser } from '../helpers/browser.ts';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as oidc from 'openid-client';
import { ConfigError, loadConfig } from '../../src/config.ts';
import { startServer, type RunningServer } from '../../src/server.ts';
import { createLogger, safeError } from '../../src/http/logging.ts';
import { createMetrics, metricsRoute } from '../../src/http/metrics.ts';
import { createClient } from '../../src/windows/clients.ts';
import { listWindows } from '../../src/windows/windows.ts';
import { testDatabase, type TestDatabase } from '../helpers/database.ts';
import { startTestServer, type TestServer } from '../helpers/server.ts';

// Health and readiness, Prometheus metrics, request ids and the request log, on the
// real server.

const METRICS_TOKEN = crypto.randomBytes(32).toString('base64url');

// The real server with a real (pino) logger whose lines are collected here.
async function serverWithLog(env: Record<string, string>) {
  const database: TestDatabase = await testDatabase();
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'sme-passport-ops-'));
  const lines: string[] = [];
  const logger = createLogger({ level: 'info', destination: { write: (line: string) => void lines.push(line) } });
  const config = loadConfig({ NODE_ENV: 'test', PORT: '0', DATA_DIR: dataDir, MASTER_KEY: crypto.randomBytes(32).toString('base64'), DEMO: 'false', ...env });
  const running: RunningServer = await startServer(config, { database, logger });
  return {
    url: running.url,
    db: database.db,
    lines,
    async close() {
      await running.close();
      await database.close();
      fs.rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

const get = (server: { url: string }, pathname: string, headers: Record<string, string> = {}) => fetch(`${server.url}${pathname}`, { headers, redirect: 'manual' });

// Every label value in a Prometheus text exposition.
const labelValues = (text: string, label: string) => [...text.matchAll(new RegExp(`[{,]${label}="([^"]*)"`, 'g'))].map((m) => m[1]!);

const metricValue = (text: string, series: string) => {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
};

describe('health, readiness, metrics and request ids (no proxy, no metrics token)', () => {
  let server: TestServer;
  let client: { clientId: string; clientSecret: string | undefined };

  beforeAll(async () => {
    server = await startTestServer();
    const [w] = await listWindows(server.db);
    client = await createClient(server.db, { windowId: w!.id, name: 'ops-service', redirectUris: [], grantTypes: ['client_credentials'] });
  });
  afterAll(async () => {
    await server?.close();
  });

  it('answers /healthz and /readyz with JSON, not cached', async () => {
    const health = await get(server, '/healthz');
    expect(health.status).toBe(200);
    expect(health.headers.get('content-type')).toMatch(/^application\/json/);
    expect(health.headers.get('cache-control')).toBe('no-store');
    expect(await health.json()).toEqual({ status: 'ok' });

    const ready = await get(server, '/readyz');
    expect(ready.status).toBe(200);
    expect(ready.headers.get('cache-control')).toBe('no-store');
    expect(await ready.json()).toEqual({ status: 'ok', checks: { database: 'ok', signingKeys: 'ok' } });
  });

  it('counts requests by route template and tokens by kind, never by id or path', async () => {
    const config = await oidc.discovery(new URL(server.url), client.clientId, client.clientSecret, undefined, { execute: [oidc.allowInsecureRequests] });
    const tokens = await oidc.clientCredentialsGrant(config);
    expect(tokens.access_token).toBeTruthy();
    // Paths that carry ids, answered by our routers, the provider and nobody.
    const ids = [crypto.randomBytes(9).toString('hex'), crypto.randomBytes(9).toString('hex')];
    await get(server, `/interaction/${ids[0]}`);
    await get(server, `/no-such-page/${ids[1]}?token=${ids[1]}`);

    const response = await get(server, '/metrics');
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toMatch(/^text\/plain/);
    const text = await response.text();

    expect(metricValue(text, 'http_requests_total{method="POST",route="token",status="200"}')).toBe(1);
    expect(metricValue(text, 'http_requests_total{method="GET",route="discovery",status="200"}')).toBeGreaterThanOrEqual(1);
    expect(metricValue(text, 'http_requests_total{method="GET",route="/interaction/:uid",status="400"}')).toBe(1);
    expect(text).toMatch(/^http_request_duration_seconds_bucket\{le="[\d.]+",method="POST",route="token",status="200"\} \d+$/m);
    expect(metricValue(text, 'sme_passport_tokens_issued_total{kind="client_credentials"}')).toBe(1);
    expect(metricValue(text, 'sme_passport_sign_ins_total{outcome="failure"}')).toBe(0);
    expect(text).toMatch(/^process_cpu_user_seconds_total /m);
    expect(text).toMatch(/^nodejs_eventloop_lag_seconds /m);
    expect(metricValue(text, 'sme_passport_db_pool_max')).toBeGreaterThanOrEqual(1);
    expect(metricValue(text, 'sme_passport_db_pool_used')).toBeGreaterThanOrEqual(0);

    const routes = labelValues(text, 'route');
    expect(routes).toContain('other');
    for (const route of routes) expect(route).toMatch(/^(?:[a-z_]+|\/[A-Za-z0-9/:._()*-]*)$/);
    for (const secret of [...ids, client.clientId, tokens.access_token]) expect(text).not.toContain(secret);
    expect(text).not.toContain('/no-such-page');
  });

  it('puts a request id on every response, and makes its own when no proxy is trusted', async () => {
    const uuid = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
    const seen = new Set<string>();
    for (const pathname of ['/healthz', '/', '/jwks', '/.well-known/openid-configuration', '/auth', '/no-such-page', '/metrics']) {
      const response = await get(server, pathname, { 'X-Request-Id': 'from-the-outside-1234' });
      const id = response.headers.get('x-request-id');
      expect(id, pathname).toMatch(uuid);
      seen.add(id!);
    }
    expect(seen.size).toBe(7);
    const tokenError = await fetch(`${server.url}/token`, { method: 'POST', body: new URLSearchParams({ grant_type: 'client_credentials' }) });
    expect(tokenError.status).toBe(400);
    expect(tokenError.headers.get('x-request-id')).toMatch(uuid);
  });
});

describe('behind a trusted proxy, with a metrics token, with the real logger', () => {
  let server: Awaited<ReturnType<typeof serverWithLog>>;

  beforeAll(async () => {
    server = await serverWithLog({ TRUST_PROXY: 'true', METRICS_TOKEN });
  });
  afterAll(async () => {
    await server?.close();
  });

  it('keeps a well-formed incoming X-Request-Id and replaces any other', async () => {
    const echoed = await get(server, '/jwks', { 'X-Request-Id': 'lb-7f3a9c01.req_2' });
    expect(echoed.headers.get('x-request-id')).toBe('lb-7f3a9c01.req_2');
    for (const bad of ['short', 'has spaces in it', 'x'.repeat(129), 'semi;colon;12345']) {
      const replaced = await get(server, '/healthz', { 'X-Request-Id': bad });
      expect(replaced.headers.get('x-request-id'), bad).not.toBe(bad);
      expect(replaced.headers.get('x-request-id')).toMatch(/^[0-9a-f-]{36}$/);
    }
    expect(server.lines.some((line) => JSON.parse(line).requestId === 'lb-7f3a9c01.req_2')).toBe(true);
  });

  it('asks for the bearer token on /metrics', async () => {
    const without = await get(server, '/metrics');
    expect(without.status).toBe(401);
    expect(without.headers.get('www-authenticate')).toMatch(/^Bearer/);
    expect((await get(server, '/metrics', { Authorization: `Bearer ${METRICS_TOKEN}x` })).status).toBe(401);
    expect((await get(server, '/metrics', { Authorization: `Basic ${METRICS_TOKEN}` })).status).toBe(401);
    const withToken = await get(server, '/metrics', { Authorization: `Bearer ${METRICS_TOKEN}` });
    expect(withToken.status).toBe(200);
    expect(await withToken.text()).toMatch(/^http_requests_total\{/m);
    // The probes are not behind it.
    expect((await get(server, '/healthz')).status).toBe(200);
  });

  it('logs one JSON line per request with no password, token, code, cookie or phone number in it', async () => {
    const secrets = { password: 'Tianzhong-Mountain-99!', token: crypto.randomBytes(24).toString('base64url'), code: '482913', phone: '13812345678', cookie: crypto.randomBytes(16).toString('hex') };
    const before = server.lines.length;
    const response = await fetch(`${server.url}/token?access_token=${secrets.token}&code=${secrets.code}`, {
      method: 'POST',
      headers: {
        'Content-Type': 'application/x-www-form-urlencoded',
        Authorization: `Basic ${Buffer.from(`client:${secrets.password}`).toString('base64')}`,
        Cookie: `_session=${secrets.cookie}`,
        'X-Request-Id': 'trace-0001-log-test',
      },
      body: new URLSearchParams({ grant_type: 'password', username: secrets.phone, password: secrets.password, code: secrets.code }),
    });
    expect(response.status).toBeGreaterThanOrEqual(400);
    await get(server, `/interaction/${secrets.phone}?code=${secrets.code}&token=${secrets.token}`);

    const lines = server.lines.slice(before);
    const entries = lines.map((line) => JSON.parse(line) as Record<string, unknown>);
    const tokenLine = entries.find((e) => e.requestId === 'trace-0001-log-test' && e.route === 'token');
    expect(tokenLine).toMatchObject({ level: 'info', method: 'POST', route: 'token', status: response.status });
    expect(typeof tokenLine!.durationMs).toBe('number');
    expect(entries.find((e) => e.route === '/interaction/:uid')).toMatchObject({ method: 'GET' });
    const all = lines.join('\n');
    for (const secret of Object.values(secrets)) expect(all).not.toContain(secret);
    expect(all).not.toContain('access_token');
  });
});

describe('readiness when the database is gone', () => {
  let server: TestServer;

  beforeAll(async () => {
    server = await startTestServer();
  });
  afterAll(async () => {
    await server?.close();
  });

  it('says 503 and names the database', async () => {
    expect((await get(server, '/readyz')).status).toBe(200);
    await server.db.destroy();
    const ready = await get(server, '/readyz');
    expect(ready.status).toBe(503);
    expect(ready.headers.get('cache-control')).toBe('no-store');
    expect(await ready.json()).toMatchObject({ status: 'unavailable', failed: ['database'], checks: { database: 'failed', signingKeys: 'ok' } });
    // The process itself is up.
    expect((await get(server, '/healthz')).status).toBe(200);
  });
});

describe('the /metrics rule in production', () => {
  async function appWith(access: { token: string | undefined; production: boolean }) {
    const router = new Router();
    metricsRoute(router, createMetrics(), access);
    const app = new Koa().use(router.routes());
    const listening = app.listen(0, '127.0.0.1');
    await new Promise((resolve) => listening.once('listening', resolve));
    return { url: `http://127.0.0.1:${(listening.address() as AddressInfo).port}`, close: () => new Promise((resolve) => listening.close(resolve)) };
  }

  it('does not exist without a token, asks for it with one, and is open outside production', async () => {
    const bare = await appWith({ token: undefined, production: true });
    const guarded = await appWith({ token: METRICS_TOKEN, production: true });
    const open = await appWith({ token: undefined, production: false });
    try {
      expect((await get(bare, '/metrics')).status).toBe(404);
      expect((await get(bare, '/metrics', { Authorization: `Bearer ${METRICS_TOKEN}` })).status).toBe(404);
      expect((await get(guarded, '/metrics')).status).toBe(401);
      expect((await get(guarded, '/metrics', { Authorization: `Bearer ${METRICS_TOKEN}` })).status).toBe(200);
      expect((await get(open, '/metrics')).status).toBe(200);
    } finally {
      await Promise.all([bare.close(), guarded.close(), open.close()]);
    }
  });
});

describe('settings and the error serializer', () => {
  it('validates LOG_LEVEL and METRICS_TOKEN', () => {
    expect(loadConfig({}).logLevel).toBe('info');
    expect(loadConfig({ LOG_LEVEL: 'silent' }).logLevel).toBe('silent');
    expect(loadConfig({}).metricsToken).toBeUndefined();
    expect(loadConfig({ METRICS_TOKEN }).metricsToken).toBe(METRICS_TOKEN);
    expect(() => loadConfig({ LOG_LEVEL: 'verbose' })).toThrow(ConfigError);
    expect(() => loadConfig({ LOG_LEVEL: 'verbose' })).toThrow(/LOG_LEVEL/);
    expect(() => loadConfig({ METRICS_TOKEN: 'too-short' })).toThrow(/METRICS_TOKEN: must be at least 32 characters/);
  });

  it('logs an error by name, message and stack only, with secret-looking values scrubbed', () => {
    const lines: string[] = [];
    const logger = createLogger({ destination: { write: (line: string) => void lines.push(line) } });
    const token = crypto.randomBytes(32).toString('base64url');
    const err = Object.assign(new Error(`invalid_grant: password=hunter2secret for 13912345678 with code 583920, token ${token}`), {
      status: 400,
      error: 'invalid_grant',
      params: { password: 'hunter2secret', code: '583920' },
      detail: 'Key (phone)=(13912345678) already exists',
    });
    logger.error('token exchange failed', err);
    logger.error('plain value', `Bearer ${token}`);
    const out = lines.join('\n');
    for (const secret of ['hunter2secret', '13912345678', '583920', token, 'already exists']) expect(out).not.toContain(secret);
    const entry = JSON.parse(lines[0]!);
    expect(entry).toMatchObject({ level: 'error', msg: 'token exchange failed', err: { name: 'Error', status: 400, error: 'invalid_grant' } });
    expect(entry.err.message).toContain('139****5678');
    expect(entry.err.stack).toMatch(/^Error: invalid_grant: password=\[redacted\]/);
    expect(entry.err.stack).toMatch(/\n\s+at /);
    expect(safeError('a string').message).toBe('a string');
  });
});

describe('sign-ins in the metrics', () => {
  let server: TestServer;
  let site: WindowSite;

  beforeAll(async () => {
    server = await startTestServer();
    const [w] = await listWindows(server.db);
    site = await windowSite(server, { windowId: w!.id, name: 'ops-site' });
    await createAccount(server.db, { username: 'counted', displayName: '计数', password: 'Gongyi-Kiln-1250' }, PASSWORD_POLICIES.mlps);
  });
  afterAll(async () => {
    await server?.close();
  });

  it('counts each sign-in by its outcome', async () => {
    const you = browser();
    const { visit } = await site.authorize(you);
    await you.submit(visit, '/login', { identifier: 'counted', password: 'not-it-at-all' }, site.redirectUri);
    await site.signIn(browser(), { identifier: 'counted', password: 'Gongyi-Kiln-1250' });
    const text = await (await get(server, '/metrics')).text();
    expect(metricValue(text, 'sme_passport_sign_ins_total{outcome="failure"}')).toBe(1);
    expect(metricValue(text, 'sme_passport_sign_ins_total{outcome="success"}')).toBe(1);
  });
});
