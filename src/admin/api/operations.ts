import { z } from 'zod';
import type { Db } from '../../db/connect.ts';
import type { Providers } from '../../oidc/provider.ts';
import { findAccount, findAccountByIdOrUsername, maskEmail, maskPhone, setAccountStatus } from '../../accounts/accounts.ts';
import { ADMIN_ROLES, administersWindow, grantRole, listAdministrators, revokeRole, rolesOf, type AdminRole } from '../../accounts/admin-roles.ts';
import { clearFailures, lockedUntil, lockKeyFor, secondFactorLockKey } from '../../accounts/lockout.ts';
import { hasTotp } from '../../accounts/totp.ts';
import { auditFilterSchema, listEvents, type AuditEvent } from '../../audit/trail.ts';
import { dailySignIns, windowFigures, YEARLY_TARGET, yearSchema } from '../../audit/figures.ts';
import { exportedRecords, exportQuerySchema } from '../../audit/export.ts';
import { ENTERPRISE_STATUSES, enterprisesInRegion, regionPrefix, requireEnterprise, setEnterpriseStatus } from '../../enterprises/enterprises.ts';
import { ForbiddenError, InputError, NotFoundError, OwnAccountError, RoleRequiredError } from '../../errors.ts';
import { listKeys, retireKey, rotateSigningKeys } from '../../oidc/keys.ts';
import { endSessionsOf } from '../../oidc/sessions.ts';
import { deliveryFigures } from '../../oidc/logout-deliveries.ts';
import {
  clientPatchSchema,
  createClient,
  deleteClient,
  getClient,
  listClients,
  newClientSchema,
  rotateClientSecret,
  setClientDisabled,
  updateClient,
  type Client,
} from '../../windows/clients.ts';
import { apiPatchSchema, createApi, deleteApi, getApi, listApis, newApiSchema, updateApi, type Api } from '../../windows/apis.ts';
import { createWindow, listWindows, newWindowSchema, requireWindow, setWindowDisabled, updateWindow, windowPatchSchema, type Window } from '../../windows/windows.ts';
import type { Principal } from './token.ts';
import { opaqueId, text } from '../../validation/text.ts';
import { problemCode } from '../../problems.ts';

// Every operation of the admin API, as data: who may call it, what it takes, what it
// does. The HTTP routes, the OpenAPI document, the console and the role tests all read
// this one table.

export type Services = { db: Db; providers: Providers; masterKey: Buffer; keyRotationDelaySeconds: number };

export type Call<P, Q, B> = { who: Principal; db: Db; services: Services; params: P; query: Q; body: B };

// What a change puts on record; the event is `admin.<operation id>`, and the actor,
// address and outcome are added by the caller.
export type Change = Pick<AuditEvent, 'target' | 'enterpriseId' | 'windowId' | 'before' | 'after'>;
export type Result = { body: unknown; change?: Change };

export type Operation = {
  id: string;
  method: 'get' | 'post' | 'patch' | 'delete';
  path: string;
  summary: string;
  roles: readonly AdminRole[];
  // Answers 201 Created (deletions answer 204, everything else 200).
  created?: true;
  params?: z.ZodType;
  query?: z.ZodType;
  body?: z.ZodType;
  // For the OpenAPI document, where the body is checked further in (with the path's values).
  documentedBody?: z.ZodType;
  // Changes run in one transaction with their audit record; false for those that call
  // out (back-channel logout) and so cannot hold a transaction open.
  transactional?: boolean;
  run(call: Call<any, any, any>): Promise<Result>;
};

function define<P extends z.ZodType = z.ZodUndefined, Q extends z.ZodType = z.ZodUndefined, B extends z.ZodType = z.ZodUndefined>(
  op: Omit<Operation, 'params' | 'query' | 'body' | 'run'> & { params?: P; query?: Q; body?: B; run(call: Call<z.output<P>, z.output<Q>, z.output<B>>): Promise<Result> },
): Operation {
  return op as Operation;
}

const holds = (who: Principal, role: AdminRole) => who.roles.some((r) => r.role === role);

// Window ids are public; another window's id is refused plainly.
function requireWindowScope(who: Principal, windowId: number): void {
  if (!administersWindow(who.roles, windowId)) throw new ForbiddenError('windowId', 'not_your_window', { windowId });
}

// Client ids are not: one outside the caller's windows is answered as if it did not
// exist, so guessing tells nothing.
async function clientInScope(call: { who: Principal; db: Db }, clientId: string): Promise<Client> {
  const client = await getClient(call.db, clientId);
  if (!client || !administersWindow(call.who.roles, client.windowId)) throw new NotFoundError('clientId', 'client_not_found', { id: clientId });
  return client;
}

// API ids are answered like client ids.
async function apiInScope(call: { who: Principal; db: Db }, apiId: number): Promise<Api> {
  const api = await getApi(call.db, apiId);
  if (!api || !administersWindow(call.who.roles, api.windowId)) throw new NotFoundError('apiId', 'api_not_found', { id: apiId });
  return api;
}

async function accountOf(db: Db, id: string) {
  const account = await findAccount(db, id);
  if (!account) throw new NotFoundError('accountId', 'account_not_found', { id });
  return account;
}

const windowIdParam = z.strictObject({ windowId: z.coerce.number({ error: problemCode('window_id') }).int().positive().max(2 ** 31 - 1) });
const apiIdParam = z.strictObject({ apiId: z.coerce.number({ error: problemCode('api_id') }).int().positive().max(2 ** 31 - 1) });
const clientIdParam = z.strictObject({ clientId: opaqueId('client') });
const accountIdParam = z.strictObject({ accountId: z.uuid(problemCode('account_id')) });
const enterpriseIdParam = z.strictObject({ enterpriseId: z.uuid(problemCode('enterprise_id')) });
const kidParam = z.strictObject({ kid: opaqueId('key') });

const clientBody = z.record(z.string(), z.unknown());
const roleBody = z.strictObject({
  account: text({ max: 254, error: 'account_or_username' }).min(1, problemCode('account_or_username')),
  role: z.enum(ADMIN_ROLES),
  windowId: z.number({ error: problemCode('window_id') }).int().positive().optional(),
});

const PROVINCE_ROLES: readonly AdminRole[] = ['system_admin', 'security_admin', 'audit_admin'];

// system_admin hands out window_admin; security_admin the province roles; nobody
// changes their own roles.
async function roleChange(call: Call<undefined, undefined, z.output<typeof roleBody>>) {
  const { who, body } = call;
  const needed: AdminRole = body.role === 'window_admin' ? 'system_admin' : 'security_admin';
  if (!holds(who, needed)) {
    throw new RoleRequiredError([needed], body.role === 'window_admin' ? { code: 'grants_window_admin', params: {} } : { code: 'grants_province_roles', params: { roles: PROVINCE_ROLES.join(', ') } });
  }
  const account = await findAccountByIdOrUsername(call.db, body.account);
  if (!account) throw new NotFoundError('account', 'account_not_found_by', { value: body.account });
  if (account.id === who.accountId) throw new OwnAccountError('account', 'own_roles');
  return { account, grant: { accountId: account.id, role: body.role, ...(body.windowId !== undefined && { windowId: body.windowId }) } };
}

const windowChange = (w: { before: Window; after: Window }): Result => ({
  body: w.after,
  change: { target: `window:${w.after.id}`, windowId: w.after.id, before: w.before, after: w.after },
});
const apiChange = (c: { before: Api; after: Api }): Result => ({
  body: c.after,
  change: { target: `api:${c.after.id}`, windowId: c.after.windowId, before: c.before, after: c.after },
});
const clientChange = (c: { before: Client; after: Client }): Result => ({
  body: c.after,
  change: { target: `client:${c.after.clientId}`, windowId: c.after.windowId, before: c.before, after: c.after },
});

export const OPERATIONS: Operation[] = [
  define({
    id: 'me',
    method: 'get',
    path: '/me',
    summary: 'Who is calling, and the roles they hold',
    roles: ADMIN_ROLES,
    run: async ({ who }) => ({ body: who }),
  }),

  define({
    id: 'listWindows',
    method: 'get',
    path: '/windows',
    summary: 'Windows: all of them for a system_admin, their own for a window_admin',
    roles: ['system_admin', 'window_admin'],
    run: async ({ who, db }) => ({ body: (await listWindows(db)).filter((w) => administersWindow(who.roles, w.id)) }),
  }),
  define({
    id: 'createWindow',
    created: true,
    method: 'post',
    path: '/windows',
    summary: 'Create a window',
    roles: ['system_admin'],
    body: newWindowSchema,
    run: async ({ db, body }) => {
      const w = await createWindow(db, body);
      return { body: w, change: { target: `window:${w.id}`, windowId: w.id, after: w } };
    },
  }),
  define({
    id: 'getWindow',
    method: 'get',
    path: '/windows/{windowId}',
    summary: 'One window',
    roles: ['system_admin', 'window_admin'],
    params: windowIdParam,
    run: async ({ who, db, params }) => {
      requireWindowScope(who, params.windowId);
      return { body: await requireWindow(db, params.windowId) };
    },
  }),
  define({
    id: 'updateWindow',
    method: 'patch',
    path: '/windows/{windowId}',
    summary: 'Rename a window, or change its region, cluster or direct administration',
    roles: ['system_admin'],
    params: windowIdParam,
    body: windowPatchSchema,
    run: async ({ db, params, body }) => windowChange(await updateWindow(db, params.windowId, body)),
  }),
  define({
    id: 'disableWindow',
    method: 'post',
    path: '/windows/{windowId}/disable',
    summary: "Disable a window: its clients stop working at once, on every node",
    roles: ['system_admin'],
    params: windowIdParam,
    run: async ({ db, params }) => windowChange(await setWindowDisabled(db, params.windowId, true)),
  }),
  define({
    id: 'enableWindow',
    method: 'post',
    path: '/windows/{windowId}/enable',
    summary: 'Enable a disabled window again',
    roles: ['system_admin'],
    params: windowIdParam,
    run: async ({ db, params }) => windowChange(await setWindowDisabled(db, params.windowId, false)),
  }),

  define({
    id: 'listClients',
    method: 'get',
    path: '/windows/{windowId}/clients',
    summary: "A window's clients (relying parties)",
    roles: ['system_admin', 'window_admin'],
    params: windowIdParam,
    run: async ({ who, db, params }) => {
      requireWindowScope(who, params.windowId);
      await requireWindow(db, params.windowId);
      return { body: await listClients(db, params.windowId) };
    },
  }),
  define({
    id: 'createClient',
    created: true,
    method: 'post',
    path: '/windows/{windowId}/clients',
    summary: 'Register a client; a secret, if it has one, is in this answer and never again',
    roles: ['system_admin', 'window_admin'],
    params: windowIdParam,
    body: clientBody,
    documentedBody: newClientSchema,
    run: async ({ who, db, params, body }) => {
      requireWindowScope(who, params.windowId);
      if ('windowId' in body) throw new InputError('windowId', 'window_in_path');
      const created = await createClient(db, { ...body, windowId: params.windowId } as never);
      const client = (await getClient(db, created.clientId))!;
      return {
        body: { ...client, ...(created.clientSecret && { clientSecret: created.clientSecret }) },
        change: { target: `client:${client.clientId}`, windowId: client.windowId, after: client },
      };
    },
  }),
  define({
    id: 'getClient',
    method: 'get',
    path: '/clients/{clientId}',
    summary: 'One client',
    roles: ['system_admin', 'window_admin'],
    params: clientIdParam,
    run: async (call) => ({ body: await clientInScope(call, call.params.clientId) }),
  }),
  define({
    id: 'updateClient',
    method: 'patch',
    path: '/clients/{clientId}',
    summary: "Change a client's name, URIs, grant types, allowed scopes, keys or party",
    roles: ['system_admin', 'window_admin'],
    params: clientIdParam,
    body: clientPatchSchema,
    run: async (call) => {
      await clientInScope(call, call.params.clientId);
      return clientChange(await updateClient(call.db, call.params.clientId, call.body));
    },
  }),
  define({
    id: 'rotateClientSecret',
    method: 'post',
    path: '/clients/{clientId}/secret',
    summary: 'A new secret, shown this once; the old one keeps working for graceSeconds (default 24 hours)',
    roles: ['system_admin', 'window_admin'],
    params: clientIdParam,
    body: z.strictObject({ graceSeconds: z.number({ error: problemCode('seconds') }).int(problemCode('whole_seconds')).optional() }).optional(),
    run: async (call) => {
      const before = await clientInScope(call, call.params.clientId);
      const rotated = await rotateClientSecret(call.db, before.clientId, call.body?.graceSeconds);
      const after = (await getClient(call.db, before.clientId))!;
      return {
        body: { clientId: after.clientId, clientSecret: rotated.clientSecret, previousSecretValidUntil: rotated.previousSecretValidUntil },
        change: { target: `client:${after.clientId}`, windowId: after.windowId, before, after },
      };
    },
  }),
  define({
    id: 'disableClient',
    method: 'post',
    path: '/clients/{clientId}/disable',
    summary: 'Disable a client: it stops working at once, on every node',
    roles: ['system_admin', 'window_admin'],
    params: clientIdParam,
    run: async (call) => {
      await clientInScope(call, call.params.clientId);
      return clientChange(await setClientDisabled(call.db, call.params.clientId, true));
    },
  }),
  define({
    id: 'enableClient',
    method: 'post',
    path: '/clients/{clientId}/enable',
    summary: 'Enable a disabled client again',
    roles: ['system_admin', 'window_admin'],
    params: clientIdParam,
    run: async (call) => {
      await clientInScope(call, call.params.clientId);
      return clientChange(await setClientDisabled(call.db, call.params.clientId, false));
    },
  }),
  define({
    id: 'deleteClient',
    method: 'delete',
    path: '/clients/{clientId}',
    summary: 'Delete a client and everything issued to it',
    roles: ['system_admin', 'window_admin'],
    params: clientIdParam,
    run: async (call) => {
      await clientInScope(call, call.params.clientId);
      const gone = await deleteClient(call.db, call.params.clientId);
      return { body: undefined, change: { target: `client:${gone.clientId}`, windowId: gone.windowId, before: gone } };
    },
  }),

  define({
    id: 'listApis',
    method: 'get',
    path: '/windows/{windowId}/apis',
    summary: "A window's APIs (resource servers), for which its clients get JWT access tokens",
    roles: ['system_admin', 'window_admin'],
    params: windowIdParam,
    run: async ({ who, db, params }) => {
      requireWindowScope(who, params.windowId);
      return { body: await listApis(db, params.windowId) };
    },
  }),
  define({
    id: 'createApi',
    created: true,
    method: 'post',
    path: '/windows/{windowId}/apis',
    summary: 'Register an API: its identifier (the resource indicator and the tokens’ aud), name, scopes and token lifetime',
    roles: ['system_admin', 'window_admin'],
    params: windowIdParam,
    body: clientBody,
    documentedBody: newApiSchema,
    run: async ({ who, db, params, body }) => {
      requireWindowScope(who, params.windowId);
      if ('windowId' in body) throw new InputError('windowId', 'window_in_path');
      const api = await createApi(db, { ...body, windowId: params.windowId } as never);
      return { body: api, change: { target: `api:${api.id}`, windowId: api.windowId, after: api } };
    },
  }),
  define({
    id: 'getApi',
    method: 'get',
    path: '/apis/{apiId}',
    summary: 'One API',
    roles: ['system_admin', 'window_admin'],
    params: apiIdParam,
    run: async (call) => ({ body: await apiInScope(call, call.params.apiId) }),
  }),
  define({
    id: 'updateApi',
    method: 'patch',
    path: '/apis/{apiId}',
    summary: "Change an API's name, scopes, token lifetime or whether other windows' clients may use it",
    roles: ['system_admin', 'window_admin'],
    params: apiIdParam,
    body: apiPatchSchema,
    run: async (call) => {
      await apiInScope(call, call.params.apiId);
      return apiChange(await updateApi(call.db, call.params.apiId, call.body));
    },
  }),
  define({
    id: 'deleteApi',
    method: 'delete',
    path: '/apis/{apiId}',
    summary: 'Delete an API: no new tokens for it; those issued are inactive at introspection (a JWT still verifies until it expires)',
    roles: ['system_admin', 'window_admin'],
    params: apiIdParam,
    run: async (call) => {
      await apiInScope(call, call.params.apiId);
      const gone = await deleteApi(call.db, call.params.apiId);
      return { body: undefined, change: { target: `api:${gone.id}`, windowId: gone.windowId, before: gone } };
    },
  }),

  define({
    id: 'listWindowEnterprises',
    method: 'get',
    path: '/windows/{windowId}/enterprises',
    summary: "Enterprises of the window's region, e.g. those waiting for verification (status=pending)",
    roles: ['system_admin', 'window_admin'],
    params: windowIdParam,
    query: z.strictObject({
      status: z.enum(ENTERPRISE_STATUSES).optional(),
      limit: z.coerce.number({ error: problemCode('number') }).int().min(1, problemCode('too_small')).max(500, problemCode('too_big')).default(100),
    }),
    run: async ({ who, db, params, query }) => {
      requireWindowScope(who, params.windowId);
      const window = await requireWindow(db, params.windowId);
      return { body: window.region ? await enterprisesInRegion(db, window.region, query) : [] };
    },
  }),
  define({
    id: 'setEnterpriseStatus',
    method: 'post',
    path: '/enterprises/{enterpriseId}/status',
    summary: 'Verify, suspend or reopen an enterprise (a window_admin: only in their windows’ regions)',
    roles: ['system_admin', 'window_admin'],
    params: enterpriseIdParam,
    body: z.strictObject({ status: z.enum(ENTERPRISE_STATUSES) }),
    run: async ({ who, db, params, body }) => {
      const before = await requireEnterprise(db, params.enterpriseId);
      let windowId: number | null = null;
      if (!holds(who, 'system_admin')) {
        const mine = (await listWindows(db)).filter((w) => administersWindow(who.roles, w.id) && w.region && before.region.startsWith(regionPrefix(w.region)));
        if (mine.length === 0) throw new NotFoundError('enterpriseId', 'enterprise_not_found', { id: params.enterpriseId });
        windowId = mine[0]!.id;
      }
      const after = await setEnterpriseStatus(db, before.id, body.status);
      return { body: after, change: { target: `enterprise:${after.id}`, enterpriseId: after.id, windowId, before, after } };
    },
  }),

  define({
    id: 'findAccount',
    method: 'get',
    path: '/accounts',
    summary: 'Find an account by id, username, phone number or email',
    roles: ['system_admin', 'security_admin'],
    query: z.strictObject({ q: text({ max: 254, error: 'required' }).min(1, problemCode('not_empty')) }),
    run: async ({ db, query }) => {
      const account = await findAccountByIdOrUsername(db, query.q);
      if (!account) throw new NotFoundError('q', 'account_not_found_by', { value: query.q });
      const { id, username, displayName, status } = account;
      return { body: { id, username, displayName, status } };
    },
  }),
  define({
    id: 'getAccount',
    method: 'get',
    path: '/accounts/{accountId}',
    summary: 'One account as its security administrator sees it: username, name, masked phone and email, status, sign-in lock, roles, second factor',
    roles: ['security_admin'],
    params: accountIdParam,
    run: async ({ db, params }) => {
      const account = await accountOf(db, params.accountId);
      const { id, username, displayName, status } = account;
      const locked = await lockedUntil(db, lockKeyFor(id, username), secondFactorLockKey(id));
      return {
        body: {
          id,
          username,
          displayName,
          phone: account.phone && maskPhone(account.phone),
          email: account.email && maskEmail(account.email),
          status,
          lockedUntil: locked ?? null,
          roles: await rolesOf(db, id),
          secondFactor: await hasTotp(db, id),
        },
      };
    },
  }),
  define({
    id: 'disableAccount',
    method: 'post',
    path: '/accounts/{accountId}/disable',
    summary: 'Disable an account: its sessions end, its tokens are revoked, its windows are told',
    roles: ['security_admin'],
    params: accountIdParam,
    transactional: false,
    run: async ({ who, db, services, params }) => {
      const account = await accountOf(db, params.accountId);
      if (account.id === who.accountId) throw new OwnAccountError('accountId', 'disable_self');
      await setAccountStatus(db, account.id, 'disabled');
      const ended = await endSessionsOf(services.providers.current, db, account.id, { everything: true });
      return {
        body: { id: account.id, status: 'disabled', ...ended },
        change: { target: `account:${account.id}`, before: { status: account.status }, after: { status: 'disabled' } },
      };
    },
  }),
  define({
    id: 'enableAccount',
    method: 'post',
    path: '/accounts/{accountId}/enable',
    summary: 'Enable a disabled account again',
    roles: ['security_admin'],
    params: accountIdParam,
    run: async ({ db, params }) => {
      const account = await accountOf(db, params.accountId);
      await setAccountStatus(db, account.id, 'active');
      return { body: { id: account.id, status: 'active' }, change: { target: `account:${account.id}`, before: { status: account.status }, after: { status: 'active' } } };
    },
  }),
  define({
    id: 'unlockAccount',
    method: 'post',
    path: '/accounts/{accountId}/unlock',
    summary: "Lift an account's sign-in locks, the password's and the second factor's (after too many failed attempts)",
    roles: ['security_admin'],
    params: accountIdParam,
    run: async ({ db, params }) => {
      const account = await accountOf(db, params.accountId);
      await clearFailures(db, lockKeyFor(account.id, account.username), secondFactorLockKey(account.id));
      return { body: { id: account.id, unlocked: true }, change: { target: `account:${account.id}` } };
    },
  }),
  define({
    id: 'endAccountSessions',
    method: 'delete',
    path: '/accounts/{accountId}/sessions',
    summary: "End every session of an account and revoke what it was given (back-channel logout to its windows)",
    roles: ['security_admin'],
    params: accountIdParam,
    transactional: false,
    run: async ({ db, services, params }) => {
      const account = await accountOf(db, params.accountId);
      const ended = await endSessionsOf(services.providers.current, db, account.id, { everything: true });
      return { body: ended, change: { target: `account:${account.id}`, after: ended } };
    },
  }),

  define({
    id: 'listAdministrators',
    method: 'get',
    path: '/administrators',
    summary: 'Everyone holding an administrator role',
    roles: ['system_admin', 'security_admin'],
    run: async ({ db }) => ({ body: await listAdministrators(db) }),
  }),
  define({
    id: 'grantRole',
    created: true,
    method: 'post',
    path: '/administrators/grants',
    summary: 'Grant a role: window_admin by a system_admin, the province roles by a security_admin',
    roles: ['system_admin', 'security_admin'],
    body: roleBody,
    run: async (call) => {
      const { account, grant } = await roleChange(call);
      await grantRole(call.db, grant, call.who.accountId);
      return {
        body: { accountId: account.id, role: grant.role, windowId: grant.windowId ?? null },
        change: { target: `account:${account.id}`, windowId: grant.windowId ?? null, after: { role: grant.role, windowId: grant.windowId ?? null } },
      };
    },
  }),
  define({
    id: 'revokeRole',
    method: 'post',
    path: '/administrators/revocations',
    summary: 'Revoke a role, under the same rules as granting it',
    roles: ['system_admin', 'security_admin'],
    body: roleBody,
    run: async (call) => {
      const { account, grant } = await roleChange(call);
      await revokeRole(call.db, grant);
      return {
        body: { accountId: account.id, role: grant.role, windowId: grant.windowId ?? null, revoked: true },
        change: { target: `account:${account.id}`, windowId: grant.windowId ?? null, before: { role: grant.role, windowId: grant.windowId ?? null } },
      };
    },
  }),

  define({
    id: 'listKeys',
    method: 'get',
    path: '/keys',
    summary: 'Signing and cookie keys (public facts only)',
    roles: ['security_admin'],
    run: async ({ db }) => ({ body: await listKeys(db) }),
  }),
  define({
    id: 'rotateKeys',
    created: true,
    method: 'post',
    path: '/keys/rotations',
    summary: 'New signing keys: published now, signing after delaySeconds (default KEY_ROTATION_DELAY)',
    roles: ['security_admin'],
    body: z.strictObject({ delaySeconds: z.number({ error: problemCode('seconds') }).int(problemCode('whole_seconds')).min(0, problemCode('zero_or_more')).optional() }).optional(),
    run: async ({ db, services, body }) => {
      const made = await rotateSigningKeys(db, services.masterKey, body?.delaySeconds ?? services.keyRotationDelaySeconds);
      return { body: made, change: { target: made.map((k) => `key:${k.kid}`).join(' '), after: made } };
    },
  }),
  define({
    id: 'retireKey',
    method: 'post',
    path: '/keys/{kid}/retire',
    summary: 'Stop publishing a signing key (tokens it signed stop verifying)',
    roles: ['security_admin'],
    params: kidParam,
    run: async ({ db, params }) => {
      await retireKey(db, params.kid);
      return { body: { kid: params.kid, retired: true }, change: { target: `key:${params.kid}` } };
    },
  }),

  define({
    id: 'allWindowFigures',
    method: 'get',
    path: '/figures',
    summary: "Every window's service figures for a year, side by side",
    roles: ['system_admin', 'audit_admin'],
    query: z.strictObject({ year: yearSchema }),
    // Every window, those without a record in the year with zeros.
    run: async ({ db, query }) => {
      const windows = await listWindows(db);
      const names = new Map(windows.map((w) => [w.id, w.name]));
      const figures = await windowFigures(db, query.year, undefined, windows.map((w) => w.id));
      return { body: { year: query.year, target: YEARLY_TARGET, windows: figures.map((f) => ({ ...f, name: names.get(f.windowId) ?? null })) } };
    },
  }),
  define({
    id: 'windowFigures',
    method: 'get',
    path: '/windows/{windowId}/figures',
    summary: "One window's service figures for a year, with its sign-ins per day",
    roles: ['system_admin', 'audit_admin', 'window_admin'],
    params: windowIdParam,
    query: z.strictObject({ year: yearSchema }),
    run: async ({ who, db, params, query }) => {
      if (!holds(who, 'audit_admin')) requireWindowScope(who, params.windowId);
      const window = await requireWindow(db, params.windowId);
      const [figures] = await windowFigures(db, query.year, window.id);
      return { body: { window, target: YEARLY_TARGET, figures, daily: await dailySignIns(db, query.year, window.id) } };
    },
  }),
  define({
    id: 'logoutDeliveries',
    method: 'get',
    path: '/windows/{windowId}/logout-deliveries',
    summary: "A window's back-channel logout deliveries: the delivery rate over the last days, the latest failed attempts, what is still pending",
    roles: ['system_admin', 'audit_admin', 'window_admin'],
    params: windowIdParam,
    query: z.strictObject({ days: z.coerce.number({ error: problemCode('days') }).int(problemCode('whole_number')).min(1, problemCode('too_small')).max(30, problemCode('too_big')).default(7) }),
    run: async ({ who, db, params, query }) => {
      if (!holds(who, 'audit_admin')) requireWindowScope(who, params.windowId);
      const window = await requireWindow(db, params.windowId);
      return { body: { window: { id: window.id, name: window.name }, ...(await deliveryFigures(db, window.id, query.days)) } };
    },
  }),
  define({
    id: 'listAuditEvents',
    method: 'get',
    path: '/audit/events',
    summary: 'The audit trail, newest first',
    roles: ['audit_admin'],
    query: auditFilterSchema,
    run: async ({ db, query }) => ({ body: await listEvents(db, query) }),
  }),
  define({
    id: 'exportAuditEvents',
    method: 'get',
    path: '/audit/export',
    summary: 'The audit records of a period (from <= at < to), oldest first, with their chain hashes: at most `limit`, and whether there are more',
    roles: ['audit_admin'],
    query: exportQuerySchema,
    run: async ({ db, query }) => ({ body: await exportedRecords(db, query, query.limit) }),
  }),
];

export const operation = (id: string): Operation => {
  const op = OPERATIONS.find((o) => o.id === id);
  if (!op) throw new Error(`no admin operation ${id}`);
  return op;
};

export const successStatus = (op: Operation) => (op.created ? 201 : op.method === 'delete' ? 204 : 200);
