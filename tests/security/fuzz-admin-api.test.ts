import crypto from 'node:crypto';
import fc from 'fast-check';
import type { z } from 'zod';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createAccount } from '../../src/accounts/accounts.ts';
import { PASSWORD_POLICIES } from '../../src/accounts/password-policy.ts';
import { OPERATIONS, type Operation } from '../../src/admin/api/operations.ts';
import { ADMIN_API_PATH } from '../../src/admin/api/token.ts';
import { createEnterprise } from '../../src/enterprises/enterprises.ts';
import { completeUscc } from '../../src/enterprises/uscc.ts';
import { listKeys } from '../../src/oidc/keys.ts';
import { createClient } from '../../src/windows/clients.ts';
import { createApi } from '../../src/windows/apis.ts';
import { createWindow } from '../../src/windows/windows.ts';
import { adminToken, makeAdmin } from '../helpers/admin.ts';
import { fuzzOptions, fuzzRuns, hostileText, percentEncode, tally } from '../helpers/fuzz.ts';
import { changedTables, snapshot } from '../helpers/rows.ts';
import { startTestServer, type TestServer } from '../helpers/server.ts';

// Every field of every admin API operation, read from the operations table (so a new
// operation is fuzzed without anyone listing it here): path parameters, query fields and
// body fields, each with hostile strings while the rest of the request stays valid.
// Properties: never a 5xx, and a refused request (4xx) changes no row (apart from the
// rate-limit counters and the audit trail's own record of a refused change).

const RUNS = fuzzRuns(25);
const record = tally('admin API');
const UNTOUCHED = ['rate_limits', 'audit_events'];

let server: TestServer;
const tokens = {} as Record<'system' | 'audit', string>;
const ids = {} as Record<'windowId' | 'clientId' | 'apiId' | 'accountId' | 'enterpriseId' | 'kid', string>;
let personName: string;
const unique = (prefix: string) => `${prefix}-${crypto.randomBytes(4).toString('hex')}`;

// The fields of an operation's params, query or body schema.
function fieldsOf(schema: z.ZodType | undefined): string[] {
  let s: any = schema;
  while (s) {
    const def = s._zod.def;
    if (def.type === 'object') return Object.keys(def.shape);
    s = def.type === 'pipe' ? def.in : def.innerType;
  }
  return [];
}

// A valid request of each operation that takes a body or a query; the fuzzer replaces
// one field at a time. An operation added without one here fails the first test below.
const BODIES: Record<string, () => Record<string, unknown>> = {
  createWindow: () => ({ kind: 'service', name: unique('机构') }),
  updateWindow: () => ({ name: unique('机构') }),
  createClient: () => ({ name: unique('rp'), redirectUris: ['https://rp.example.cn/cb'], grantTypes: ['authorization_code'] }),
  updateClient: () => ({ name: unique('rp') }),
  createApi: () => ({ identifier: `https://${unique('api')}.example.cn/v1`, name: unique('api'), scopes: ['orders:read'] }),
  updateApi: () => ({ name: unique('api') }),
  rotateClientSecret: () => ({ graceSeconds: 60 }),
  setEnterpriseStatus: () => ({ status: 'pending' }),
  grantRole: () => ({ account: personName, role: 'window_admin', windowId: Number(ids.windowId) }),
  revokeRole: () => ({ account: personName, role: 'window_admin', windowId: Number(ids.windowId) }),
  rotateKeys: () => ({ delaySeconds: 86_400 }),
};
const QUERIES: Record<string, () => Record<string, string>> = {
  listWindowEnterprises: () => ({ status: 'pending' }),
  findAccount: () => ({ q: personName }),
  allWindowFigures: () => ({ year: '2026' }),
  windowFigures: () => ({ year: '2026' }),
  logoutDeliveries: () => ({ days: '7' }),
  listAuditEvents: () => ({ limit: '5' }),
  exportAuditEvents: () => ({ from: '2026-01-01', to: '2026-02-01', limit: '5' }),
};

type Where = 'params' | 'query' | 'body';
const targets = OPERATIONS.flatMap((op) =>
  (['params', 'query', 'body'] as const).flatMap((where) => {
    const fields = fieldsOf(where === 'body' ? (op.documentedBody ?? op.body) : op[where]);
    // A field no schema knows, too: its name is as hostile as any value.
    return [...fields, ...(where !== 'params' && fields.length ? ['*unknown*'] : [])].map((field) => ({ op, where, field }));
  }),
);

// A hostile value for a body field: a string, or one inside the shapes fields take
// (a list, an object, a JWK set).
const bodyValue = (s: fc.Arbitrary<string>) =>
  fc.oneof(s, s.map((v) => [v]), fc.tuple(s, s).map(([k, v]) => ({ [k]: v })), fc.tuple(s, s).map(([k, v]) => ({ keys: [{ kty: 'EC', crv: 'P-256', [k]: v, kid: v }] })));

function request(op: Operation, where: Where, field: string, value: unknown, hostileKey: string) {
  const params: Record<string, string> = {};
  for (const name of fieldsOf(op.params)) params[name] = ids[name as keyof typeof ids];
  const query: Record<string, unknown> = { ...QUERIES[op.id]?.() };
  const body: Record<string, unknown> | undefined = op.body ? { ...BODIES[op.id]?.() } : undefined;
  const set = (into: Record<string, unknown>) => (field === '*unknown*' ? (into[hostileKey] = value) : (into[field] = value));
  if (where === 'params') params[field] = String(value);
  if (where === 'query') set(query);
  if (where === 'body') set(body!);
  const path = op.path.replace(/\{(\w+)\}/g, (_, name: string) => percentEncode(params[name]!));
  const search = Object.entries(query)
    .map(([k, v]) => `${percentEncode(k)}=${percentEncode(String(v))}`)
    .join('&');
  return { method: op.method.toUpperCase(), url: `${server.url}${ADMIN_API_PATH}${path}${search ? `?${search}` : ''}`, body };
}

beforeAll(async () => {
  server = await startTestServer({ SIGN_IN_RATE_LIMIT: '1000/60' });
  const window = await createWindow(server.db, { kind: 'service', name: '模糊测试服务机构' });
  ids.windowId = String(window.id);
  ids.clientId = (await createClient(server.db, { windowId: window.id, name: 'fuzzed', redirectUris: ['https://rp.example.cn/cb'] })).clientId;
  ids.apiId = String((await createApi(server.db, { windowId: window.id, identifier: 'https://fuzzed.example.cn/api', name: 'fuzzed', scopes: ['fuzz:read'] })).id);
  personName = 'fuzz.person';
  ids.accountId = (await createAccount(server.db, { username: personName, displayName: '测试', password: 'Luoyang-Peony-Garden-1' }, PASSWORD_POLICIES.mlps)).id;
  ids.enterpriseId = (await createEnterprise(server.db, { uscc: completeUscc('9141010000099901'), name: '模糊测试公司', type: 'enterprise', region: '410100' })).id;
  ids.kid = (await listKeys(server.db)).find((k) => k.use === 'sig')!.kid;
  tokens.system = await adminToken(server, await makeAdmin(server, 'fuzz.system', [{ role: 'system_admin' }, { role: 'security_admin' }]));
  tokens.audit = await adminToken(server, await makeAdmin(server, 'fuzz.audit', [{ role: 'audit_admin' }]));
});

afterAll(async () => {
  await server?.close();
});

describe('fuzzing the admin API', () => {
  it('has a valid request for every operation that takes a body or a query', () => {
    expect(OPERATIONS.filter((op) => op.body && !BODIES[op.id]).map((op) => op.id)).toEqual([]);
    expect(OPERATIONS.filter((op) => op.query && !QUERIES[op.id]).map((op) => op.id)).toEqual([]);
  });

  it.each(targets.map((t) => [`${t.op.id} ${t.where}.${t.field}`, t] as const))('never answers 5xx, and a refusal writes nothing: %s', async (name, { op, where, field }) => {
    const token = op.roles.includes('audit_admin') && !op.roles.includes('system_admin') && !op.roles.includes('security_admin') ? tokens.audit : tokens.system;
    const value = where === 'body' ? bodyValue(hostileText()) : hostileText();
    // The database as the last request left it: one snapshot per case.
    let rows = await snapshot(server.db, UNTOUCHED);
    await fc.assert(
      fc.asyncProperty(value, hostileText(), async (v, key) => {
        const r = request(op, where, field, v, key);
        const before = rows;
        const res = await fetch(r.url, {
          method: r.method,
          headers: { authorization: `Bearer ${token}`, ...(r.body && { 'content-type': 'application/json' }) },
          ...(r.body && { body: JSON.stringify(r.body) }),
        });
        const answer = await res.text();
        record(name, res.status);
        if (res.status >= 500) throw new Error(`${r.method} ${r.url} answered ${res.status}: ${answer.slice(0, 300)}`);
        rows = await snapshot(server.db, UNTOUCHED);
        if (res.status >= 400) expect(changedTables(before, rows)).toEqual([]);
      }),
      fuzzOptions(name, RUNS),
    );
  });

  it('logged no failure while being fuzzed', () => {
    expect(server.errors).toEqual([]);
  });
});
