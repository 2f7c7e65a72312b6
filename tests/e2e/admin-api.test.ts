import crypto from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createAccount } from '../../src/accounts/accounts.ts';
import { grantRole, rolesOf, type AdminRole } from '../../src/accounts/admin-roles.ts';
import { PASSWORD_POLICIES } from '../../src/accounts/password-policy.ts';
import { OPERATIONS } from '../../src/admin/api/operations.ts';
import { createEnterprise } from '../../src/enterprises/enterprises.ts';
import { completeUscc } from '../../src/enterprises/uscc.ts';
import { rotateSigningKeys } from '../../src/oidc/keys.ts';
import { createClient, getClient } from '../../src/windows/clients.ts';
import { createApi, getApi } from '../../src/windows/apis.ts';
import { createWindow, listWindows, type Window } from '../../src/windows/windows.ts';
import { adminToken, api, makeAdmin, signInAtProvider, type TestAdmin } from '../helpers/admin.ts';
import { browser } from '../helpers/browser.ts';
import { startTestServer, type TestServer } from '../helpers/server.ts';
import { windowSite } from '../helpers/window-site.ts';

// The admin API: every role against every operation, window administrators confined to
// their window even when they guess ids, the rules for handing out roles, what a token
// must be, validation, and the audit record of every change.

let server: TestServer;
let zhengzhou: Window;
let luoyang: Window;
let spare: Window;
const admins = {} as Record<'system' | 'security' | 'audit' | 'window', TestAdmin & { token: string }>;
const ROLE_OF = { system: 'system_admin', security: 'security_admin', audit: 'audit_admin', window: 'window_admin' } as const satisfies Record<string, AdminRole>;
const unique = (prefix: string) => `${prefix}-${crypto.randomBytes(4).toString('hex')}`;
let usccSerial = 0;
const uscc = (region: string) => completeUscc(`91${region}${String(++usccSerial).padStart(8, '0')}`);

const person = async (prefix: string) => createAccount(server.db, { username: unique(prefix), displayName: prefix, password: 'Pingdingshan-Coal-1955' }, PASSWORD_POLICIES.mlps);
const clientOf = async (window: Window) =>
  (await createClient(server.db, { windowId: window.id, name: unique('rp'), redirectUris: ['https://rp.example.cn/cb'], grantTypes: ['authorization_code', 'client_credentials'] })).clientId;

const apiOf = async (window: Window) => (await createApi(server.db, { windowId: window.id, identifier: `https://${unique('api')}.example.cn/v1`, name: unique('api'), scopes: ['orders:read'] })).id;

beforeAll(async () => {
  server = await startTestServer({ SIGN_IN_RATE_LIMIT: '1000/60' });
  const windows = await listWindows(server.db);
  zhengzhou = windows.find((w) => w.region === '410100')!;
  luoyang = windows.find((w) => w.region === '410300')!;
  spare = await createWindow(server.db, { kind: 'service', name: '测试服务机构' });
  for (const name of Object.keys(ROLE_OF) as Array<keyof typeof ROLE_OF>) {
    const role = ROLE_OF[name];
    const admin = await makeAdmin(server, `${name}.admin`, [{ role, ...(role === 'window_admin' && { windowId: zhengzhou.id }) }]);
    admins[name] = { ...admin, token: await adminToken(server, admin) };
  }
});

afterAll(async () => {
  await server?.close();
});

type Request = { method: string; path: string; body?: unknown };

// One valid request per operation, made fresh for each caller (deletions need something
// of their own to delete).
const requests: Record<string, (caller: keyof typeof admins) => Promise<Request>> = {
  me: async () => ({ method: 'GET', path: '/me' }),
  listWindows: async () => ({ method: 'GET', path: '/windows' }),
  createWindow: async () => ({ method: 'POST', path: '/windows', body: { kind: 'service', name: unique('机构') } }),
  getWindow: async () => ({ method: 'GET', path: `/windows/${zhengzhou.id}` }),
  updateWindow: async () => ({ method: 'PATCH', path: `/windows/${spare.id}`, body: { name: unique('机构') } }),
  disableWindow: async () => ({ method: 'POST', path: `/windows/${spare.id}/disable` }),
  enableWindow: async () => ({ method: 'POST', path: `/windows/${spare.id}/enable` }),
  listClients: async () => ({ method: 'GET', path: `/windows/${zhengzhou.id}/clients` }),
  createClient: async () => ({ method: 'POST', path: `/windows/${zhengzhou.id}/clients`, body: { name: unique('rp'), redirectUris: ['https://rp.example.cn/cb'] } }),
  getClient: async () => ({ method: 'GET', path: `/clients/${await clientOf(zhengzhou)}` }),
  updateClient: async () => ({ method: 'PATCH', path: `/clients/${await clientOf(zhengzhou)}`, body: { name: unique('rp') } }),
  rotateClientSecret: async () => ({ method: 'POST', path: `/clients/${await clientOf(zhengzhou)}/secret`, body: { graceSeconds: 60 } }),
  disableClient: async () => ({ method: 'POST', path: `/clients/${await clientOf(zhengzhou)}/disable` }),
  enableClient: async () => ({ method: 'POST', path: `/clients/${await clientOf(zhengzhou)}/enable` }),
  deleteClient: async () => ({ method: 'DELETE', path: `/clients/${await clientOf(zhengzhou)}` }),
  listApis: async () => ({ method: 'GET', path: `/windows/${zhengzhou.id}/apis` }),
  createApi: async () => ({ method: 'POST', path: `/windows/${zhengzhou.id}/apis`, body: { identifier: `https://${unique('api')}.example.cn/v1`, name: unique('api'), scopes: ['orders:read', 'orders:write'] } }),
  getApi: async () => ({ method: 'GET', path: `/apis/${await apiOf(zhengzhou)}` }),
  updateApi: async () => ({ method: 'PATCH', path: `/apis/${await apiOf(zhengzhou)}`, body: { scopes: ['orders:read'], accessTokenTtlSeconds: 600 } }),
  deleteApi: async () => ({ method: 'DELETE', path: `/apis/${await apiOf(zhengzhou)}` }),
  listWindowEnterprises: async () => ({ method: 'GET', path: `/windows/${zhengzhou.id}/enterprises?status=pending` }),
  setEnterpriseStatus: async () => {
    const e = await createEnterprise(server.db, { uscc: uscc('410102'), name: unique('企业'), type: 'enterprise', region: '410102' });
    return { method: 'POST', path: `/enterprises/${e.id}/status`, body: { status: 'verified' } };
  },
  findAccount: async () => ({ method: 'GET', path: `/accounts?q=${(await person('found')).username}` }),
  getAccount: async () => ({ method: 'GET', path: `/accounts/${(await person('shown')).id}` }),
  disableAccount: async () => ({ method: 'POST', path: `/accounts/${(await person('disabled')).id}/disable` }),
  enableAccount: async () => ({ method: 'POST', path: `/accounts/${(await person('enabled')).id}/enable` }),
  unlockAccount: async () => ({ method: 'POST', path: `/accounts/${(await person('unlocked')).id}/unlock` }),
  endAccountSessions: async () => ({ method: 'DELETE', path: `/accounts/${(await person('ended')).id}/sessions` }),
  listAdministrators: async () => ({ method: 'GET', path: '/administrators' }),
  grantRole: async (caller) => {
    const target = await person('grantee');
    const body = caller === 'system' ? { account: target.username, role: 'window_admin', windowId: zhengzhou.id } : { account: target.username, role: 'audit_admin' };
    return { method: 'POST', path: '/administrators/grants', body };
  },
  revokeRole: async (caller) => {
    const target = await person('revokee');
    const grant = caller === 'system' ? { role: 'window_admin' as const, windowId: zhengzhou.id } : { role: 'audit_admin' as const };
    await grantRole(server.db, { accountId: target.id, ...grant });
    return { method: 'POST', path: '/administrators/revocations', body: { account: target.id, ...grant } };
  },
  listKeys: async () => ({ method: 'GET', path: '/keys' }),
  rotateKeys: async () => ({ method: 'POST', path: '/keys/rotations', body: { delaySeconds: 3600 } }),
  retireKey: async () => {
    const [pending] = await rotateSigningKeys(server.db, Buffer.from(server.masterKey, 'base64'), 3600);
    return { method: 'POST', path: `/keys/${pending!.kid}/retire` };
  },
  allWindowFigures: async () => ({ method: 'GET', path: `/figures?year=${new Date().getUTCFullYear()}` }),
  windowFigures: async () => ({ method: 'GET', path: `/windows/${zhengzhou.id}/figures?year=${new Date().getUTCFullYear()}` }),
  logoutDeliveries: async () => ({ method: 'GET', path: `/windows/${zhengzhou.id}/logout-deliveries?days=7` }),
  listAuditEvents: async () => ({ method: 'GET', path: '/audit/events?outcome=success' }),
  exportAuditEvents: async () => ({ method: 'GET', path: '/audit/export?from=2026-01-01&to=2100-01-01&limit=10' }),
};

describe('every role against every operation', () => {
  it('covers every operation of the API', () => {
    expect(Object.keys(requests).sort()).toEqual(OPERATIONS.map((o) => o.id).sort());
  });

  for (const op of OPERATIONS) {
    it(`${op.method.toUpperCase()} ${op.path}: ${op.roles.join(', ')} only`, async () => {
      for (const caller of Object.keys(ROLE_OF) as Array<keyof typeof ROLE_OF>) {
        const request = await requests[op.id]!(caller);
        const answer = await api(server, admins[caller].token, request.method, request.path, request.body);
        const allowed = op.roles.includes(ROLE_OF[caller]);
        expect({ caller, status: answer.status, ...(answer.status >= 400 && { body: answer.body }) }).toEqual(
          allowed ? { caller, status: op.created ? 201 : op.method === 'delete' ? 204 : 200 } : { caller, status: 403, body: expect.objectContaining({ error: 'forbidden' }) },
        );
      }
    });
  }
});

describe('a window administrator', () => {
  it('sees and changes their own window only, even when guessing ids', async () => {
    const { token } = admins.window;
    const theirs = await clientOf(luoyang);
    const windows = await api(server, token, 'GET', '/windows');
    expect(windows.body.map((w: Window) => w.id)).toEqual([zhengzhou.id]);
    expect((await api(server, token, 'GET', `/windows/${luoyang.id}`)).status).toBe(403);
    expect((await api(server, token, 'GET', `/windows/${luoyang.id}/clients`)).status).toBe(403);
    expect((await api(server, token, 'GET', `/windows/${luoyang.id}/enterprises`)).status).toBe(403);
    expect((await api(server, token, 'POST', `/windows/${luoyang.id}/clients`, { name: 'x', redirectUris: ['https://x.example.cn/cb'] })).status).toBe(403);
    const guesses: Request[] = [
      { method: 'GET', path: `/clients/${theirs}` },
      { method: 'PATCH', path: `/clients/${theirs}`, body: { name: 'taken over' } },
      { method: 'POST', path: `/clients/${theirs}/secret` },
      { method: 'POST', path: `/clients/${theirs}/disable` },
      { method: 'DELETE', path: `/clients/${theirs}` },
    ];
    for (const g of guesses) {
      const answer = await api(server, token, g.method, g.path, g.body);
      expect(answer).toEqual({ status: 404, body: expect.objectContaining({ error: 'not_found', message: `clientId: no client with id ${theirs}` }) });
    }
    const theirApi = await apiOf(luoyang);
    expect((await api(server, token, 'GET', `/windows/${luoyang.id}/apis`)).status).toBe(403);
    expect((await api(server, token, 'POST', `/windows/${luoyang.id}/apis`, { identifier: 'https://x.example.cn/api', name: 'x', scopes: ['x:y'] })).status).toBe(403);
    for (const g of [
      { method: 'GET', path: `/apis/${theirApi}` },
      { method: 'PATCH', path: `/apis/${theirApi}`, body: { name: 'taken over' } },
      { method: 'DELETE', path: `/apis/${theirApi}` },
    ]) {
      expect(await api(server, token, g.method, g.path, g.body)).toEqual({ status: 404, body: expect.objectContaining({ error: 'not_found', message: `apiId: no API with id ${theirApi}` }) });
    }
    expect((await getApi(server.db, theirApi))!.name).not.toBe('taken over');
    // Answered exactly as a client that does not exist.
    expect((await api(server, token, 'GET', '/clients/no-such-client')).body.message).toBe('clientId: no client with id no-such-client');
    const untouched = (await getClient(server.db, theirs))!;
    expect(untouched).toMatchObject({ disabled: false, secretRotatedAt: null });
    expect(untouched.name).not.toBe('taken over');

    const elsewhere = await createEnterprise(server.db, { uscc: uscc('410302'), name: unique('洛阳企业'), type: 'enterprise', region: '410302' });
    expect((await api(server, token, 'POST', `/enterprises/${elsewhere.id}/status`, { status: 'verified' })).status).toBe(404);
    const pending = (await api(server, token, 'GET', `/windows/${zhengzhou.id}/enterprises?status=pending`)).body as Array<{ region: string }>;
    expect(pending.every((e) => e.region.startsWith('4101'))).toBe(true);
  });
});

describe('handing out roles', () => {
  it('follows the separation of duties', async () => {
    const target = await person('duties');
    const grant = (who: keyof typeof admins, body: Record<string, unknown>) => api(server, admins[who].token, 'POST', '/administrators/grants', body);
    expect((await grant('system', { account: target.username, role: 'audit_admin' })).status).toBe(403);
    expect((await grant('security', { account: target.username, role: 'window_admin', windowId: zhengzhou.id })).status).toBe(403);
    expect((await grant('security', { account: target.username, role: 'system_admin' })).status).toBe(201);
    const clash = await grant('security', { account: target.username, role: 'audit_admin' });
    // The message as it always was, and the problem's code beside it (src/problems.ts).
    expect(clash).toEqual({
      status: 400,
      body: {
        error: 'invalid_request',
        code: 'separation_of_duties',
        message: 'role: audit_admin cannot be held together with system_admin (separation of duties)',
        fields: [{ field: 'role', code: 'separation_of_duties', params: { role: 'audit_admin', other: 'system_admin' }, message: 'audit_admin cannot be held together with system_admin (separation of duties)' }],
      },
    });
    expect((await grant('system', { account: target.username, role: 'window_admin' })).body.fields).toEqual([
      { field: 'windowId', code: 'window_admin_window', params: {}, message: 'is needed for window_admin, and only for it' },
    ]);
    expect((await grant('security', { account: admins.security.account.username, role: 'audit_admin' })).status).toBe(403);
    expect((await grant('security', { account: 'nobody-at-all', role: 'audit_admin' })).status).toBe(404);
    expect(await rolesOf(server.db, target.id)).toEqual([{ role: 'system_admin', windowId: null }]);
  });
});

describe('what the API accepts', () => {
  it('takes only its own access tokens, from a live second-factor sign-in', async () => {
    expect((await api(server, undefined, 'GET', '/me')).status).toBe(401);
    expect((await api(server, 'not-a-token', 'GET', '/me')).body.error).toBe('invalid_token');
    // A window's own access token, for the same person, is not one for this API.
    const site = await windowSite(server, { windowId: zhengzhou.id, name: 'ordinary' });
    const you = browser();
    const admin = await makeAdmin(server, 'window.user', [{ role: 'audit_admin' }]);
    const { visit, checks } = await site.authorize(you);
    const tokens = await site.redeem(await signInAtProvider(you, visit, admin, site.redirectUri), checks);
    const answer = await api(server, tokens.access_token, 'GET', '/me');
    expect(answer).toEqual({ status: 401, body: { error: 'invalid_token', message: 'the access token is not for the admin API' } });

    // Signing out at the provider ends the console's token with the session.
    const signedIn = await makeAdmin(server, 'short.lived', [{ role: 'audit_admin' }]);
    const token = await adminToken(server, signedIn);
    expect((await api(server, token, 'GET', '/me')).status).toBe(200);
    await server.db('oidc_artifacts').where({ model: 'Session' }).whereRaw("payload->>'accountId' = ?", [signedIn.account.id]).delete();
    expect(await api(server, token, 'GET', '/me')).toEqual({ status: 401, body: expect.objectContaining({ error: 'invalid_token' }) });

    // A role revoked stops working at the next call.
    const revoked = await makeAdmin(server, 'was.admin', [{ role: 'audit_admin' }]);
    const revokedToken = await adminToken(server, revoked);
    await server.db('admin_roles').where({ account_id: revoked.account.id }).delete();
    expect((await api(server, revokedToken, 'GET', '/audit/events')).status).toBe(403);
  });

  it('refuses unknown fields and bad values by name, and changes nothing', async () => {
    const before = await server.db('clients').count({ n: '*' });
    const answer = await api(server, admins.system.token, 'POST', `/windows/${zhengzhou.id}/clients`, {
      name: '',
      redirectUris: ['http://rp.example.cn/cb', 'https://rp.example.cn/cb#x'],
      authMethod: 'client_secret_jwt',
      colour: 'red',
    });
    expect(answer.status).toBe(400);
    expect(answer.body.fields).toEqual(
      expect.arrayContaining([
        { field: 'name', code: 'not_empty', params: {}, message: 'must not be empty' },
        {
          field: 'redirectUris.0',
          code: 'uri_not_https',
          params: { uri: 'http://rp.example.cn/cb' },
          message: '"http://rp.example.cn/cb" must use https (http is allowed only for localhost and loopback addresses)',
        },
        { field: 'redirectUris.1', code: 'uri_fragment', params: { uri: 'https://rp.example.cn/cb#x' }, message: '"https://rp.example.cn/cb#x" must not have a fragment (#...)' },
        { field: 'authMethod', code: 'one_of', params: { values: 'client_secret_basic, client_secret_post, private_key_jwt, none' }, message: 'must be one of client_secret_basic, client_secret_post, private_key_jwt, none' },
        { field: 'colour', code: 'unknown_field', params: {}, message: 'is not a known field' },
      ]),
    );
    expect(await server.db('clients').count({ n: '*' })).toEqual(before);
    const malformed = await fetch(`${server.url}/api/admin/v1/windows`, { method: 'POST', headers: { authorization: `Bearer ${admins.system.token}`, 'content-type': 'application/json' }, body: '{"kind":' });
    expect(malformed.status).toBe(400);
    expect(await malformed.json()).toEqual({ error: 'invalid_request', message: 'the body is not valid JSON' });
    expect((await api(server, admins.system.token, 'GET', '/windows/abc')).body.fields).toEqual([{ field: 'windowId', code: 'window_id', params: {}, message: 'must be a window id (a number)' }]);
    expect((await api(server, admins.system.token, 'GET', '/nowhere')).status).toBe(404);
  });

  it('refuses a bad API by name (identifier, scopes, lifetime), and a taken identifier with 409', async () => {
    const before = await server.db('window_apis').count({ n: '*' });
    const answer = await api(server, admins.window.token, 'POST', `/windows/${zhengzhou.id}/apis`, {
      identifier: 'http://api.example.cn/v1',
      name: '',
      scopes: ['openid', 'Orders:Read', 'a'.repeat(65), 'ok:1', 'ok:1'],
      accessTokenTtlSeconds: 59,
      otherWindows: 'yes',
    });
    expect(answer.status).toBe(400);
    expect(answer.body.fields.map(({ field, message }: { field: string; message: string }) => ({ field, message }))).toEqual(
      expect.arrayContaining([
        { field: 'identifier', message: '"http://api.example.cn/v1" must use https (http is allowed only for localhost and loopback addresses)' },
        { field: 'name', message: 'must not be empty' },
        { field: 'scopes.0', message: '"openid" is an OpenID Connect scope, not an API\'s (choose another name)' },
        { field: 'scopes.1', message: 'each must be 1 to 64 of a-z, 0-9 and _ : . - (such as orders:read)' },
        { field: 'scopes.2', message: 'each must be 1 to 64 of a-z, 0-9 and _ : . - (such as orders:read)' },
        { field: 'accessTokenTtlSeconds', message: 'must be at least 60 seconds' },
        { field: 'otherWindows', message: 'must be true or false' },
      ]),
    );
    const body = { identifier: `https://${unique('api')}.example.cn/v1`, name: '订单', scopes: ['orders:read'] };
    expect((await api(server, admins.window.token, 'POST', `/windows/${zhengzhou.id}/apis`, body)).status).toBe(201);
    expect(await api(server, admins.system.token, 'POST', `/windows/${luoyang.id}/apis`, body)).toEqual({
      status: 409,
      body: expect.objectContaining({ error: 'conflict', message: `identifier: an API with the identifier ${body.identifier} exists already` }),
    });
    expect(Number((await server.db('window_apis').count({ n: '*' }))[0]!.n)).toBe(Number(before[0]!.n) + 1);
  });

  it('describes itself in OpenAPI', async () => {
    const doc = await (await fetch(`${server.url}/api/admin/v1/openapi.json`)).json();
    expect(doc.openapi).toBe('3.1.0');
    for (const op of OPERATIONS) expect(doc.paths[op.path][op.method].operationId).toBe(op.id);
    const create = doc.paths['/windows/{windowId}/clients'].post.requestBody.content['application/json'].schema;
    expect(create.additionalProperties).toBe(false);
    expect(Object.keys(create.properties)).toEqual(expect.arrayContaining(['name', 'redirectUris', 'authMethod', 'scopes', 'jwks']));
    expect(create.properties.windowId).toBeUndefined();
  });
});

describe('the audit record', () => {
  it('records every change with who, what, before and after, and never a secret', async () => {
    const clientId = await clientOf(zhengzhou);
    const rotated = await api(server, admins.window.token, 'POST', `/clients/${clientId}/secret`, { graceSeconds: 3600 });
    expect(rotated.status).toBe(200);
    const [record] = await server.db('audit_events').where({ event: 'admin.rotateClientSecret', target: `client:${clientId}` });
    expect(record).toMatchObject({ actor_type: 'account', actor_id: admins.window.account.id, outcome: 'success', window_id: zhengzhou.id, actor_ip: expect.any(String) });
    expect(record.before.secretRotatedAt).toBeNull();
    expect(record.after.secretRotatedAt).not.toBeNull();
    const everything = JSON.stringify(await server.db('audit_events').select('before', 'after'));
    expect(everything).not.toContain(rotated.body.clientSecret);

    await api(server, admins.audit.token, 'POST', '/windows', { kind: 'service', name: 'x' });
    const denied = await server.db('audit_events').where({ event: 'admin.createWindow', actor_id: admins.audit.account.id }).first();
    expect(denied).toMatchObject({ outcome: 'failure', reason: 'forbidden: role' });

    const trail = await api(server, admins.audit.token, 'GET', `/audit/events?event=admin.rotateClientSecret&windowId=${zhengzhou.id}`);
    expect(trail.body.map((e: { target: string }) => e.target)).toContain(`client:${clientId}`);
    expect(server.errors).toEqual([]);
  });
});
