import Router from '@koa/router';
import type { Context, Next } from 'koa';
import * as oidc from 'openid-client';
import { seal, unseal } from '../../crypto/master-key.ts';
import { ForbiddenError, InputError, NotFoundError, OwnAccountError, parseInput, RoleRequiredError } from '../../errors.ts';
import { PassThrough } from 'node:stream';
import { z } from 'zod';
import { EXPORT_FORMATS, exportEvents, exportFilterSchema } from '../../audit/export.ts';
import { recordEvent, type AuditRecord } from '../../audit/trail.ts';
import { csrfToken, csrfValid } from '../../http/csrf.ts';
import { formBody, formField as field, formList } from '../../http/forms.ts';
import { render } from '../../http/render.ts';
import { langOf } from '../../http/i18n.ts';
import { SCOPES } from '../../oidc/claims.ts';
import { AUTH_METHODS, GRANT_TYPES } from '../../windows/clients.ts';
import { WINDOW_KINDS } from '../../windows/windows.ts';
import { ADMIN_ROLES } from '../../accounts/admin-roles.ts';
import { currentYear, type WindowFigures } from '../../audit/figures.ts';
import { barChart, labelEvery } from './charts.ts';
import { auditRows, eventChoices } from './audit-page.ts';
import { ADMIN_CONSOLE_CLIENT_ID, adminConsoleSecret, adminConsoleUris } from '../console-client.ts';
import { invoke, type Input } from '../api/invoke.ts';
import { operation, type Services } from '../api/operations.ts';
import { ADMIN_SCOPE, authenticate, Unauthenticated, type Principal } from '../api/token.ts';

// The admin console (/admin): server-rendered pages over the admin API. It signs the
// administrator in as an ordinary OIDC client of this provider (openid-client, code flow
// with PKCE), keeps the access token it receives in a sealed cookie, and performs every
// read and change as an API operation with that token: the same role checks, the same
// validation, the same audit records.

const SESSION_COOKIE = 'admin_console';
const AUTH_COOKIE = 'admin_console_auth';
const SEAL_CONTEXT = 'admin-console-token';

type Data = Record<string, unknown>;
type Page = (ctx: Context, extra?: Data) => Promise<void>;
// What a confirmation page asks (message keys), with the values it names and the
// fields the confirmed POST carries on.
type Confirmation = { question: string; effect: string; button: string; params: Record<string, string>; fields?: Record<string, string>; irreversible?: true };
type Ask = (ctx: Context) => Promise<Confirmation>;

// Every day of a year up to today (China Standard Time), for a chart with no gaps.
function daysOf(year: number): string[] {
  const today = new Date(Date.now() + 8 * 3600_000).toISOString().slice(0, 10);
  const days: string[] = [];
  for (let d = new Date(Date.UTC(year, 0, 1)); d.getUTCFullYear() === year; d.setUTCDate(d.getUTCDate() + 1)) {
    const day = d.toISOString().slice(0, 10);
    if (day > today) break;
    days.push(day);
  }
  return days;
}

// What the console says when it will not do what was asked, in its own layout.
type Refusal = { status: number; code: string; heading: string; explanation: string; roles?: readonly string[]; errors?: unknown[]; signIn?: true; noWayBack?: true };

function refusalOf(err: unknown): Refusal | undefined {
  if (err instanceof RoleRequiredError) return { status: 403, code: 'forbidden', heading: 'adminErrorRoleTitle', explanation: 'adminErrorRole', roles: err.roles };
  if (err instanceof OwnAccountError) return { status: 403, code: 'forbidden', heading: 'adminErrorOwnAccountTitle', explanation: 'adminErrorOwnAccount' };
  if (err instanceof ForbiddenError) return { status: 403, code: 'forbidden', heading: 'adminErrorForbiddenTitle', explanation: 'adminErrorForbidden' };
  if (err instanceof NotFoundError) return { status: 404, code: 'not_found', heading: 'adminErrorNotFoundTitle', explanation: 'adminErrorNotFound' };
  // A page's own query (a year, a filter), or a form's value the page cannot be shown again with.
  if (err instanceof InputError) return { status: 400, code: 'invalid_request', heading: 'adminErrorInvalidTitle', explanation: 'adminErrorInvalid', errors: err.issues };
  return undefined;
}

// The pages a way back can lead to, each with the operation that shows it.
const PAGES: Array<[RegExp, string]> = [
  [/^\/admin\/windows\/\d+$/, 'getWindow'],
  [/^\/admin\/windows$/, 'listWindows'],
  [/^\/admin\/clients\/[^/]+$/, 'getClient'],
  [/^\/admin\/accounts\/[^/]+$/, 'getAccount'],
  [/^\/admin\/accounts$/, 'getAccount'],
  [/^\/admin\/administrators$/, 'listAdministrators'],
  [/^\/admin\/keys$/, 'listKeys'],
];
// Where each part of the console starts, for a page whose own object cannot be shown.
const SECTIONS: Record<string, string> = { windows: '/admin/windows', clients: '/admin/windows', apis: '/admin/windows', enterprises: '/admin/windows', accounts: '/admin/accounts', administrators: '/admin/administrators', keys: '/admin/keys' };

const lines = (value: string) => value.split(/\r?\n/).map((l) => l.trim()).filter(Boolean);
const optional = (value: string) => (value.trim() ? value.trim() : undefined);

export function adminConsoleRoutes(services: Services, issuer: string, selfUrl: string): Router {
  const router = new Router({ prefix: '/admin' });
  const uris = adminConsoleUris(issuer);
  // Secure whenever the request came over https (directly or, with TRUST_PROXY, via the proxy).
  const cookieOptions = (ctx: Context) => ({ path: '/admin', httpOnly: true, sameSite: 'lax' as const, signed: true, secure: ctx.secure });

  // The provider is this process: requests for the issuer go to where it listens, so
  // the console works behind any proxy without calling out and back in.
  let config: Promise<oidc.Configuration> | undefined;
  const configuration = () => {
    if (!config) {
      const toSelf: oidc.CustomFetch = (url, init) => fetch(url.replace(issuer, selfUrl), init as RequestInit);
      config = oidc.discovery(new URL(issuer), ADMIN_CONSOLE_CLIENT_ID, adminConsoleSecret(services.masterKey), undefined, {
        execute: [oidc.allowInsecureRequests],
        [oidc.customFetch]: toSelf,
      });
      config.catch(() => (config = undefined));
    }
    return config;
  };

  const tokenOf = (ctx: Context) => {
    const sealed = ctx.cookies.get(SESSION_COOKIE, { signed: true });
    if (!sealed) return undefined;
    try {
      return unseal(services.masterKey, sealed, SEAL_CONTEXT);
    } catch {
      return undefined;
    }
  };

  const call = (ctx: Context, id: string, input: Omit<Input, 'ip'> = {}) => invoke(services, operation(id), ctx.state.who as Principal, { ...input, ip: ctx.ip });
  const can = (ctx: Context, id: string) => operation(id).roles.some((role) => (ctx.state.who as Principal).roles.some((r) => r.role === role));
  const show = (ctx: Context, view: string, data: Data, status = 200) =>
    render(ctx, view, { ...data, who: ctx.state.who, csrf: csrfToken(ctx), can: (id: string) => can(ctx, id), notice: ctx.query.saved === '1' ? 'adminSaved' : undefined }, status);

  const mayOpen = (ctx: Context, path: string) => {
    const page = PAGES.find(([pattern]) => pattern.test(path));
    return page !== undefined && ctx.state.who !== undefined && can(ctx, page[1]);
  };
  // The Referer is never sent (Referrer-Policy: no-referrer), so the way back is read
  // from the path: the page of the form a POST came from (or, for a page, the one above
  // it) when this administrator may open it, else the start of its part of the console,
  // else the console's home. What was not found is not offered again.
  const wayBack = (ctx: Context, notFound: boolean) => {
    const parts = ctx.path.replace(/\/+$/, '').split('/');
    if (!notFound) {
      for (let n = parts.length - (ctx.method === 'POST' ? 0 : 1); n > 2; n--) {
        const path = parts.slice(0, n).join('/');
        if (mayOpen(ctx, path)) return path;
      }
    }
    const section = SECTIONS[parts[2] ?? ''];
    return section && section !== ctx.path && mayOpen(ctx, section) ? section : '/admin';
  };
  const refuse = (ctx: Context, refusal: Refusal) => {
    const { status, noWayBack, ...data } = refusal;
    const page = { ...data, back: noWayBack || data.signIn ? undefined : wayBack(ctx, refusal.code === 'not_found') };
    if (ctx.state.who) show(ctx, 'admin-error', page, status);
    else render(ctx, 'admin-error', page, status);
  };
  // Answers a form without its CSRF token; true when it did.
  const forged = (ctx: Context) => {
    if (csrfValid(ctx, field(ctx, 'csrf'))) return false;
    refuse(ctx, { status: 403, code: 'csrf', heading: 'adminErrorCsrfTitle', explanation: 'adminErrorCsrf' });
    return true;
  };

  // A change from a form: on success, back to the page; on bad input, the page again
  // with what was typed and what is wrong, nothing changed.
  const change = (act: (ctx: Context) => Promise<string | void>, page: Page) => async (ctx: Context) => {
    if (forged(ctx)) return;
    try {
      const next = await act(ctx);
      if (next !== undefined) ctx.redirect(`${next}${next.includes('?') ? '&' : '?'}saved=1`);
    } catch (err) {
      if (!(err instanceof InputError) || err instanceof NotFoundError || err instanceof ForbiddenError) throw err;
      ctx.status = 400;
      await page(ctx, { errors: err.issues, values: ctx.request.body });
    }
  };

  // A destructive change is confirmed on a page of its own: a GET of the action's path
  // asks (what, and what follows), and the POST acts only with confirm=yes, so a form
  // from an older page, or a one-click POST, gets the question instead of the change.
  const asked = (ctx: Context, name: string) => (ctx.method === 'POST' ? field(ctx, name) : typeof ctx.query[name] === 'string' ? ctx.query[name] : '');
  const confirmPage = async (ctx: Context, ask: Ask, unconfirmed = false) => {
    const confirmation = await ask(ctx);
    show(ctx, 'admin-confirm', { ...confirmation, action: ctx.path, back: wayBack(ctx, false), unconfirmed }, unconfirmed ? 400 : 200);
  };
  const destructive = (path: string, ask: Ask, act: (ctx: Context) => Promise<string | void>, page: Page) => {
    router.get(path, (ctx) => confirmPage(ctx, ask));
    router.post(
      path,
      formBody,
      change(async (ctx) => (field(ctx, 'confirm') === 'yes' ? act(ctx) : confirmPage(ctx, ask, true)), page),
    );
  };

  // Out of bounds for this administrator, gone, or asked wrongly: a page of the console
  // saying so, with its navigation and a way back, the status as the API would answer.
  router.use(async (ctx: Context, next: Next) => {
    try {
      await next();
    } catch (err) {
      const refusal = refusalOf(err);
      if (!refusal) throw err;
      refuse(ctx, refusal);
    }
  });

  router.get('/login', async (ctx) => {
    const verifier = oidc.randomPKCECodeVerifier();
    const state = oidc.randomState();
    const nonce = oidc.randomNonce();
    ctx.cookies.set(AUTH_COOKIE, JSON.stringify({ verifier, state, nonce }), { ...cookieOptions(ctx), maxAge: 600_000 });
    const url = oidc.buildAuthorizationUrl(await configuration(), {
      redirect_uri: uris.redirect,
      scope: `openid profile ${ADMIN_SCOPE}`,
      code_challenge: await oidc.calculatePKCECodeChallenge(verifier),
      code_challenge_method: 'S256',
      state,
      nonce,
    });
    ctx.redirect(`${url.pathname}${url.search}`);
  });

  router.get('/callback', async (ctx) => {
    const pending = JSON.parse(ctx.cookies.get(AUTH_COOKIE, { signed: true }) ?? 'null') as { verifier: string; state: string; nonce: string } | null;
    ctx.cookies.set(AUTH_COOKIE, null, cookieOptions(ctx));
    if (!pending) return ctx.redirect('/admin');
    let tokens: oidc.TokenEndpointResponse;
    try {
      tokens = await oidc.authorizationCodeGrant(await configuration(), new URL(`${uris.redirect}${ctx.search}`), {
        pkceCodeVerifier: pending.verifier,
        expectedState: pending.state,
        expectedNonce: pending.nonce,
      });
    } catch (err) {
      const code = err instanceof oidc.AuthorizationResponseError ? err.error : 'invalid_callback';
      return refuse(ctx, { status: 400, code, heading: 'adminErrorSignInTitle', explanation: 'adminErrorSignIn', signIn: true });
    }
    ctx.cookies.set(SESSION_COOKIE, seal(services.masterKey, tokens.access_token, SEAL_CONTEXT), { ...cookieOptions(ctx), maxAge: (tokens.expires_in ?? 1800) * 1000 });
    ctx.redirect('/admin');
  });

  // Signing out of the console signs out of the provider (RP-initiated logout), which
  // ends the token with the session. A change like any other: a POST with the CSRF
  // token, so no link or image on another site can do it (GET /admin/logout is a 405).
  router.post('/logout', formBody, async (ctx) => {
    if (forged(ctx)) return;
    ctx.cookies.set(SESSION_COOKIE, null, cookieOptions(ctx));
    ctx.status = 303;
    const url = oidc.buildEndSessionUrl(await configuration(), { client_id: ADMIN_CONSOLE_CLIENT_ID, post_logout_redirect_uri: uris.postLogout });
    ctx.redirect(`${url.pathname}${url.search}`);
  });
  router.get('/signed-out', (ctx) => render(ctx, 'admin-signed-out'));

  // Every other page: a live token from a second-factor sign-in, or sign in again (the
  // provider's session usually makes that a pair of redirects).
  router.use(async (ctx: Context, next: Next) => {
    const token = tokenOf(ctx);
    try {
      ctx.state.who = await authenticate(services.providers.current, services.db, issuer, token && `Bearer ${token}`);
    } catch (err) {
      if (!(err instanceof Unauthenticated)) throw err;
      ctx.cookies.set(SESSION_COOKIE, null, cookieOptions(ctx));
      return ctx.redirect('/admin/login');
    }
    if ((ctx.state.who as Principal).roles.length === 0) return refuse(ctx, { status: 403, code: 'forbidden', heading: 'adminErrorNoRoleTitle', explanation: 'adminNoRole', noWayBack: true });
    return next();
  });

  router.get('/', (ctx) => show(ctx, 'admin-home', {}));

  const windowsPage: Page = async (ctx, extra = {}) => {
    show(ctx, 'admin-windows', { windows: (await call(ctx, 'listWindows')).body, kinds: WINDOW_KINDS, ...extra }, ctx.status === 400 ? 400 : 200);
  };
  router.get('/windows', (ctx) => windowsPage(ctx));
  router.post(
    '/windows',
    formBody,
    change(async (ctx) => {
      const body = {
        kind: field(ctx, 'kind'),
        name: field(ctx, 'name'),
        region: optional(field(ctx, 'region')),
        cluster: optional(field(ctx, 'cluster')),
        directlyAdministered: field(ctx, 'directlyAdministered') === 'on',
      };
      const w = (await call(ctx, 'createWindow', { body })).body as { id: number };
      return `/admin/windows/${w.id}`;
    }, windowsPage),
  );

  const windowPage: Page = async (ctx, extra = {}) => {
    const params = { windowId: String(ctx.params.windowId) };
    const window = (await call(ctx, 'getWindow', { params })).body;
    const clients = (await call(ctx, 'listClients', { params })).body;
    const pending = (await call(ctx, 'listWindowEnterprises', { params, query: { status: 'pending', limit: '50' } })).body;
    const apis = (await call(ctx, 'listApis', { params })).body;
    show(ctx, 'admin-window', { window, clients, apis, pending, authMethods: AUTH_METHODS, grantTypes: GRANT_TYPES, scopes: SCOPES, kinds: WINDOW_KINDS, ...extra }, ctx.status === 400 ? 400 : 200);
  };
  router.get('/windows/:windowId', (ctx) => windowPage(ctx));
  router.post(
    '/windows/:windowId',
    formBody,
    change(async (ctx) => {
      const body = {
        name: field(ctx, 'name'),
        region: optional(field(ctx, 'region')),
        cluster: optional(field(ctx, 'cluster')),
        directlyAdministered: field(ctx, 'directlyAdministered') === 'on',
      };
      await call(ctx, 'updateWindow', { params: { windowId: ctx.params.windowId! }, body });
      return `/admin/windows/${ctx.params.windowId}`;
    }, windowPage),
  );
  destructive(
    '/windows/:windowId/disable',
    async (ctx) => {
      const window = (await call(ctx, 'getWindow', { params: { windowId: ctx.params.windowId! } })).body as { name: string };
      return { question: 'adminConfirmDisableWindow', effect: 'adminDisableWindowEffect', button: 'adminDisableWindow', params: { name: window.name } };
    },
    async (ctx) => {
      await call(ctx, 'disableWindow', { params: { windowId: ctx.params.windowId! } });
      return `/admin/windows/${ctx.params.windowId}`;
    },
    windowPage,
  );
  router.post(
    '/windows/:windowId/enable',
    formBody,
    change(async (ctx) => {
      await call(ctx, 'enableWindow', { params: { windowId: ctx.params.windowId! } });
      return `/admin/windows/${ctx.params.windowId}`;
    }, windowPage),
  );

  const clientForm = (ctx: Context) => ({
    name: field(ctx, 'name'),
    redirectUris: lines(field(ctx, 'redirectUris')),
    postLogoutRedirectUris: lines(field(ctx, 'postLogoutRedirectUris')),
    grantTypes: formList(ctx, 'grantTypes'),
    scopes: formList(ctx, 'scopes'),
    thirdParty: field(ctx, 'thirdParty') === 'on',
  });
  const jwksField = (ctx: Context) => {
    const text = field(ctx, 'jwks').trim();
    if (!text) return undefined;
    try {
      return JSON.parse(text) as unknown;
    } catch {
      throw new InputError('jwks', 'not_json');
    }
  };
  const showSecret = (ctx: Context, data: Data) => show(ctx, 'admin-secret', data);

  router.post(
    '/windows/:windowId/clients',
    formBody,
    change(async (ctx) => {
      const jwks = jwksField(ctx);
      const body = {
        ...clientForm(ctx),
        authMethod: field(ctx, 'authMethod'),
        ...(optional(field(ctx, 'backchannelLogoutUri')) && { backchannelLogoutUri: field(ctx, 'backchannelLogoutUri').trim() }),
        ...(optional(field(ctx, 'frontchannelLogoutUri')) && { frontchannelLogoutUri: field(ctx, 'frontchannelLogoutUri').trim() }),
        ...(optional(field(ctx, 'jwksUri')) && { jwksUri: field(ctx, 'jwksUri').trim() }),
        ...(jwks !== undefined && { jwks }),
      };
      const created = (await call(ctx, 'createClient', { params: { windowId: ctx.params.windowId! }, body })).body as { clientId: string; clientSecret?: string };
      if (!created.clientSecret) return `/admin/clients/${encodeURIComponent(created.clientId)}`;
      showSecret(ctx, { clientId: created.clientId, clientSecret: created.clientSecret, previousSecretValidUntil: null });
    }, windowPage),
  );

  const clientPage: Page = async (ctx, extra = {}) => {
    const client = (await call(ctx, 'getClient', { params: { clientId: ctx.params.clientId! } })).body;
    show(ctx, 'admin-client', { client, grantTypes: GRANT_TYPES, scopes: SCOPES, ...extra }, ctx.status === 400 ? 400 : 200);
  };
  const clientPath = (ctx: Context) => `/admin/clients/${encodeURIComponent(ctx.params.clientId!)}`;
  router.get('/clients/:clientId', (ctx) => clientPage(ctx));
  router.post(
    '/clients/:clientId',
    formBody,
    change(async (ctx) => {
      const jwks = jwksField(ctx);
      const body = {
        ...clientForm(ctx),
        backchannelLogoutUri: optional(field(ctx, 'backchannelLogoutUri')) ?? null,
        frontchannelLogoutUri: optional(field(ctx, 'frontchannelLogoutUri')) ?? null,
        ...(field(ctx, 'authMethod') === 'private_key_jwt' && { jwksUri: optional(field(ctx, 'jwksUri')) ?? null, jwks: jwks ?? null }),
      };
      await call(ctx, 'updateClient', { params: { clientId: ctx.params.clientId! }, body });
      return clientPath(ctx);
    }, clientPage),
  );
  const graceHours = (ctx: Context) => {
    const hours = asked(ctx, 'graceHours').trim();
    if (hours && !/^\d+(\.\d+)?$/.test(hours)) throw new InputError('graceHours', 'grace_hours');
    return hours;
  };
  const clientNamed = async (ctx: Context) => (await call(ctx, 'getClient', { params: { clientId: ctx.params.clientId! } })).body as { name: string; windowId: number };
  destructive(
    '/clients/:clientId/secret',
    async (ctx) => {
      const hours = graceHours(ctx);
      const { name } = await clientNamed(ctx);
      const now = hours !== '' && Number(hours) === 0;
      return { question: 'adminConfirmRotate', effect: now ? 'adminRotateNow' : 'adminRotateGrace', button: 'adminRotate', params: { name, hours: hours || '24' }, fields: { graceHours: hours } };
    },
    async (ctx) => {
      const hours = graceHours(ctx);
      const body = hours ? { graceSeconds: Math.round(Number(hours) * 3600) } : {};
      const rotated = (await call(ctx, 'rotateClientSecret', { params: { clientId: ctx.params.clientId! }, body })).body as Data;
      showSecret(ctx, rotated);
    },
    clientPage,
  );
  for (const act of ['disable', 'enable'] as const) {
    router.post(
      `/clients/:clientId/${act}`,
      formBody,
      change(async (ctx) => {
        await call(ctx, `${act}Client`, { params: { clientId: ctx.params.clientId! } });
        return clientPath(ctx);
      }, clientPage),
    );
  }
  destructive(
    '/clients/:clientId/delete',
    async (ctx) => ({ question: 'adminConfirmDeleteClient', effect: 'adminConfirmDelete', button: 'adminDeleteClient', params: { name: (await clientNamed(ctx)).name }, irreversible: true }),
    async (ctx) => {
      const client = await clientNamed(ctx);
      await call(ctx, 'deleteClient', { params: { clientId: ctx.params.clientId! } });
      return `/admin/windows/${client.windowId}`;
    },
    clientPage,
  );

  // A window's APIs: listed, added, changed and deleted on the window's page.
  const apiForm = (ctx: Context) => {
    const ttl = field(ctx, 'accessTokenTtlSeconds').trim();
    return {
      name: field(ctx, 'name'),
      scopes: field(ctx, 'scopes').split(/[\s,]+/).filter(Boolean),
      ...(ttl && { accessTokenTtlSeconds: /^\d{1,9}$/.test(ttl) ? Number(ttl) : ttl }),
      otherWindows: field(ctx, 'otherWindows') === 'on',
    };
  };
  const apiWindowPage: Page = (ctx, extra) => {
    ctx.params.windowId = field(ctx, 'windowId');
    return windowPage(ctx, extra);
  };
  router.post(
    '/windows/:windowId/apis',
    formBody,
    change(async (ctx) => {
      await call(ctx, 'createApi', { params: { windowId: ctx.params.windowId! }, body: { identifier: field(ctx, 'identifier'), ...apiForm(ctx) } });
      return `/admin/windows/${ctx.params.windowId}`;
    }, windowPage),
  );
  router.post(
    '/apis/:apiId',
    formBody,
    change(async (ctx) => {
      const updated = (await call(ctx, 'updateApi', { params: { apiId: ctx.params.apiId! }, body: apiForm(ctx) })).body as { windowId: number };
      return `/admin/windows/${updated.windowId}`;
    }, apiWindowPage),
  );
  router.post(
    '/apis/:apiId/delete',
    formBody,
    change(async (ctx) => {
      const gone = (await call(ctx, 'getApi', { params: { apiId: ctx.params.apiId! } })).body as { windowId: number };
      await call(ctx, 'deleteApi', { params: { apiId: ctx.params.apiId! } });
      return `/admin/windows/${gone.windowId}`;
    }, apiWindowPage),
  );

  router.post(
    '/enterprises/:enterpriseId/status',
    formBody,
    change(async (ctx) => {
      await call(ctx, 'setEnterpriseStatus', { params: { enterpriseId: ctx.params.enterpriseId! }, body: { status: field(ctx, 'status') } });
      return `/admin/windows/${Number(field(ctx, 'windowId')) || ''}`;
    }, (ctx, extra) => {
      ctx.params.windowId = field(ctx, 'windowId');
      return windowPage(ctx, extra);
    }),
  );

  const administratorsPage: Page = async (ctx, extra = {}) => {
    show(ctx, 'admin-administrators', { administrators: (await call(ctx, 'listAdministrators')).body, roles: ADMIN_ROLES, ...extra }, ctx.status === 400 ? 400 : 200);
  };
  const roleForm = (ctx: Context) => ({
    account: field(ctx, 'account'),
    role: field(ctx, 'role'),
    ...(optional(field(ctx, 'windowId')) && { windowId: Number(field(ctx, 'windowId')) }),
  });
  router.get('/administrators', (ctx) => administratorsPage(ctx));
  router.post(
    '/administrators/grants',
    formBody,
    change(async (ctx) => {
      await call(ctx, 'grantRole', { body: roleForm(ctx) });
      return '/admin/administrators';
    }, administratorsPage),
  );
  destructive(
    '/administrators/revocations',
    async (ctx) => {
      const [account, role, windowId] = [asked(ctx, 'account'), asked(ctx, 'role'), asked(ctx, 'windowId')];
      if (!(ADMIN_ROLES as readonly string[]).includes(role)) throw new InputError('role', 'one_of', { values: ADMIN_ROLES.join(', ') });
      const administrators = (await call(ctx, 'listAdministrators')).body as Array<{ accountId: string; username: string }>;
      const holder = administrators.find((a) => a.accountId === account || a.username === account);
      if (!holder) throw new NotFoundError('account', 'administrator_not_found', { value: account });
      return {
        question: 'adminConfirmRevoke',
        effect: 'adminRevokeEffect',
        button: 'adminRevokeRole',
        params: { username: holder.username, role },
        fields: { account, role, ...(windowId && { windowId }) },
      };
    },
    async (ctx) => {
      await call(ctx, 'revokeRole', { body: roleForm(ctx) });
      return '/admin/administrators';
    },
    administratorsPage,
  );

  const keysPage: Page = async (ctx, extra = {}) => {
    show(ctx, 'admin-keys', { keys: (await call(ctx, 'listKeys')).body, now: new Date(), ...extra }, ctx.status === 400 ? 400 : 200);
  };
  router.get('/keys', (ctx) => keysPage(ctx));
  router.post(
    '/keys/rotations',
    formBody,
    change(async (ctx) => {
      const delay = field(ctx, 'delaySeconds').trim();
      if (delay && !/^\d+$/.test(delay)) throw new InputError('delaySeconds', 'whole_seconds');
      await call(ctx, 'rotateKeys', { body: delay ? { delaySeconds: Number(delay) } : {} });
      return '/admin/keys';
    }, keysPage),
  );
  destructive(
    '/keys/:kid/retire',
    async (ctx) => {
      const keys = (await call(ctx, 'listKeys')).body as Array<{ kid: string; retiredAt: Date | null }>;
      const key = keys.find((k) => k.kid === ctx.params.kid && !k.retiredAt);
      if (!key) throw new NotFoundError('kid', 'key_not_live', { kid: ctx.params.kid });
      return { question: 'adminConfirmRetireKey', effect: 'adminRetireKeyEffect', button: 'adminRetireKey', params: { kid: key.kid }, irreversible: true };
    },
    async (ctx) => {
      await call(ctx, 'retireKey', { params: { kid: ctx.params.kid! } });
      return '/admin/keys';
    },
    keysPage,
  );

  // Accounts, for their security administrators: found by username, phone number or
  // email; disabled, enabled, unlocked, or signed out everywhere.
  router.get('/accounts', async (ctx) => {
    if (!can(ctx, 'getAccount')) throw new RoleRequiredError(operation('getAccount').roles);
    const q = typeof ctx.query.q === 'string' ? ctx.query.q : '';
    if (!q.trim()) return show(ctx, 'admin-accounts', { q });
    try {
      show(ctx, 'admin-accounts', { q, found: (await call(ctx, 'findAccount', { query: { q } })).body });
    } catch (err) {
      if (err instanceof NotFoundError) return show(ctx, 'admin-accounts', { q, missing: true });
      if (!(err instanceof InputError) || err instanceof ForbiddenError) throw err;
      show(ctx, 'admin-accounts', { q, errors: err.issues }, 400);
    }
  });
  const accountOf = async (ctx: Context) => (await call(ctx, 'getAccount', { params: { accountId: ctx.params.accountId! } })).body as { username: string };
  const accountPage: Page = async (ctx, extra = {}) => {
    show(ctx, 'admin-account', { account: await accountOf(ctx), ...extra }, ctx.status === 400 ? 400 : 200);
  };
  const accountPath = (ctx: Context) => `/admin/accounts/${ctx.params.accountId}`;
  router.get('/accounts/:accountId', (ctx) => accountPage(ctx));
  const accountChange = (id: string) => async (ctx: Context) => {
    await call(ctx, id, { params: { accountId: ctx.params.accountId! } });
    return accountPath(ctx);
  };
  const accountQuestion = (question: string, effect: string, button: string): Ask => async (ctx) => ({ question, effect, button, params: { username: (await accountOf(ctx)).username } });
  destructive('/accounts/:accountId/disable', accountQuestion('adminConfirmDisableAccount', 'adminDisableAccountEffect', 'adminDisableAccount'), accountChange('disableAccount'), accountPage);
  destructive('/accounts/:accountId/end-sessions', accountQuestion('adminConfirmEndSessions', 'adminEndSessionsEffect', 'adminEndSessions'), accountChange('endAccountSessions'), accountPage);
  router.post('/accounts/:accountId/enable', formBody, change(accountChange('enableAccount'), accountPage));
  router.post('/accounts/:accountId/unlock', formBody, change(accountChange('unlockAccount'), accountPage));

  // Service figures: every window side by side (province roles), and one window's year.
  const yearOf = (ctx: Context) => (typeof ctx.query.year === 'string' && ctx.query.year ? ctx.query.year : String(currentYear()));
  router.get('/figures', async (ctx) => {
    const year = yearOf(ctx);
    const result = (await call(ctx, 'allWindowFigures', { query: { year } })).body as { year: number; target: number; windows: Array<WindowFigures & { name: string | null }> };
    const names = result.windows.map((w) => w.name ?? `#${w.windowId}`);
    const every = labelEvery(names);
    const chart = barChart(names.map((label, i) => ({ label, value: result.windows[i]!.enterprises, ...(i % every === 0 && { tick: label }) })));
    show(ctx, 'admin-figures', { ...result, chart });
  });
  router.get('/windows/:windowId/figures', async (ctx) => {
    const year = yearOf(ctx);
    const result = (await call(ctx, 'windowFigures', { params: { windowId: ctx.params.windowId! }, query: { year } })).body as {
      window: { id: number; name: string };
      target: number;
      figures: WindowFigures;
      daily: Array<{ day: string; signIns: number }>;
    };
    const counts = new Map(result.daily.map((d) => [d.day, d.signIns]));
    const days = daysOf(result.figures.year);
    // The first of each month is labelled (MM-DD); a month or less, every week as well.
    const labelled = (day: string, i: number) => day.endsWith('-01') || (days.length <= 31 && i % 7 === 0);
    const chart = barChart(days.map((day, i) => ({ label: day, value: counts.get(day) ?? 0, ...(labelled(day, i) && { tick: day.slice(5) }) })));
    show(ctx, 'admin-window-figures', { ...result, chart });
  });

  router.get('/windows/:windowId/logout-deliveries', async (ctx) => {
    const result = (await call(ctx, 'logoutDeliveries', { params: { windowId: ctx.params.windowId! }, query: {} })).body;
    show(ctx, 'admin-logout-deliveries', result as Data);
  });

  // A download of the trail for a period, streamed (any size, bounded memory). Not an
  // API operation, which answers JSON pages: the role is the same one's, checked here.
  router.get('/audit/export', async (ctx) => {
    if (!can(ctx, 'exportAuditEvents')) throw new RoleRequiredError(operation('exportAuditEvents').roles);
    const { format: formatValue, lang: _lang, ...rest } = ctx.query;
    const filter = parseInput(exportFilterSchema, Object.fromEntries(Object.entries(rest).filter(([, v]) => v !== '')));
    const format = parseInput(z.enum(EXPORT_FORMATS), formatValue ?? 'csv');
    const who = ctx.state.who as Principal;
    const day = (d: Date) => d.toISOString().slice(0, 10);
    ctx.type = format === 'csv' ? 'text/csv; charset=utf-8' : 'application/x-ndjson; charset=utf-8';
    ctx.set('Content-Disposition', `attachment; filename="audit-${day(filter.from)}-${day(filter.to)}.${format}"`);
    ctx.set('Cache-Control', 'no-store');
    const out = new PassThrough();
    ctx.body = out;
    exportEvents(services.db, filter, out, { format, bom: format === 'csv' })
      .then((count) =>
        recordEvent(services.db, { actor: { type: 'account', id: who.accountId }, ip: ctx.ip, event: 'audit.export', outcome: 'success', after: { ...filter, format, count, via: 'console' } }),
      )
      .then(
        () => out.end(),
        (err: unknown) => out.destroy(err instanceof Error ? err : new Error(String(err))),
      );
  });

  // The trail as people read it: names for ids, labels for codes (audit-page.ts), looked
  // up once the operation has answered, so its role check comes first.
  router.get('/audit', async (ctx) => {
    const lang = langOf(ctx);
    const query = Object.fromEntries(Object.entries(ctx.query).filter(([k, v]) => k !== 'lang' && k !== 'saved' && typeof v === 'string' && v !== ''));
    const page = async (events: AuditRecord[], extra: Data = {}, status = 200) =>
      show(ctx, 'admin-audit', { ...(await auditRows(services.db, events, lang)), eventChoices: eventChoices(lang), filter: query, ...extra }, status);
    let events: AuditRecord[];
    try {
      events = (await call(ctx, 'listAuditEvents', { query })).body as AuditRecord[];
    } catch (err) {
      // Bad filters are shown with the form; a role without the audit trail is refused (403).
      if (!(err instanceof InputError) || err instanceof ForbiddenError || err instanceof NotFoundError) throw err;
      return page([], { errors: err.issues }, 400);
    }
    await page(events);
  });

  return router;
}
