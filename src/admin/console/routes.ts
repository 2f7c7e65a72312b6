import Router from '@koa/router';
import type { Context, Next } from 'koa';
import * as oidc from 'openid-client';
import { seal, unseal } from '../../crypto/master-key.ts';
import { ForbiddenError, InputError, NotFoundError, parseInput } from '../../errors.ts';
import { langOf } from '../../http/i18n.ts';
import { describeIssue } from '../../problems.ts';
import { PassThrough } from 'node:stream';
import { z } from 'zod';
import { EXPORT_FORMATS, exportEvents, exportFilterSchema } from '../../audit/export.ts';
import { recordEvent } from '../../audit/trail.ts';
import { csrfToken } from '../../http/csrf.ts';
import { formBody, formField as field, formList, rejectForgery } from '../../http/forms.ts';
import { render } from '../../http/render.ts';
import { SCOPES } from '../../oidc/claims.ts';
import { AUTH_METHODS, GRANT_TYPES } from '../../windows/clients.ts';
import { WINDOW_KINDS } from '../../windows/windows.ts';
import { ADMIN_ROLES } from '../../accounts/admin-roles.ts';
import { currentYear, type WindowFigures } from '../../audit/figures.ts';
import { barChart } from './charts.ts';
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

  // A change from a form: on success, back to the page; on bad input, the page again
  // with what was typed and what is wrong, nothing changed.
  const change = (act: (ctx: Context) => Promise<string | void>, page: Page) => async (ctx: Context) => {
    if (rejectForgery(ctx)) return;
    try {
      const next = await act(ctx);
      if (next !== undefined) ctx.redirect(`${next}${next.includes('?') ? '&' : '?'}saved=1`);
    } catch (err) {
      if (!(err instanceof InputError) || err instanceof NotFoundError || err instanceof ForbiddenError) throw err;
      ctx.status = 400;
      await page(ctx, { errors: err.issues, values: ctx.request.body });
    }
  };

  // Out of bounds for this administrator, or gone: a plain page, as the API would answer.
  router.use(async (ctx: Context, next: Next) => {
    try {
      await next();
    } catch (err) {
      if (err instanceof ForbiddenError) return render(ctx, 'error', { message: 'errorGeneric', code: 'forbidden', detail: describeIssue(err, langOf(ctx)) }, 403);
      if (err instanceof NotFoundError) return render(ctx, 'error', { message: 'errorNotFound', code: 'not_found', detail: describeIssue(err, langOf(ctx)) }, 404);
      // A page's own query (a year, a filter) that is not right.
      if (err instanceof InputError) return render(ctx, 'error', { message: 'errorGeneric', code: 'invalid_request', detail: describeIssue(err, langOf(ctx)) }, 400);
      throw err;
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
      return render(ctx, 'error', { message: 'errorGeneric', code }, 400);
    }
    ctx.cookies.set(SESSION_COOKIE, seal(services.masterKey, tokens.access_token, SEAL_CONTEXT), { ...cookieOptions(ctx), maxAge: (tokens.expires_in ?? 1800) * 1000 });
    ctx.redirect('/admin');
  });

  // Signing out of the console signs out of the provider (RP-initiated logout), which
  // ends the token with the session. A change like any other: a POST with the CSRF
  // token, so no link or image on another site can do it (GET /admin/logout is a 405).
  router.post('/logout', formBody, async (ctx) => {
    if (rejectForgery(ctx)) return;
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
    if ((ctx.state.who as Principal).roles.length === 0) return render(ctx, 'error', { message: 'adminNoRole', code: 'forbidden' }, 403);
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
  for (const act of ['disable', 'enable'] as const) {
    router.post(
      `/windows/:windowId/${act}`,
      formBody,
      change(async (ctx) => {
        await call(ctx, `${act}Window`, { params: { windowId: ctx.params.windowId! } });
        return `/admin/windows/${ctx.params.windowId}`;
      }, windowPage),
    );
  }

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
  router.post(
    '/clients/:clientId/secret',
    formBody,
    change(async (ctx) => {
      const hours = field(ctx, 'graceHours').trim();
      if (hours && !/^\d+(\.\d+)?$/.test(hours)) throw new InputError('graceHours', 'grace_hours');
      const body = hours ? { graceSeconds: Math.round(Number(hours) * 3600) } : {};
      const rotated = (await call(ctx, 'rotateClientSecret', { params: { clientId: ctx.params.clientId! }, body })).body as Data;
      showSecret(ctx, rotated);
    }, clientPage),
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
  router.post(
    '/clients/:clientId/delete',
    formBody,
    change(async (ctx) => {
      const client = (await call(ctx, 'getClient', { params: { clientId: ctx.params.clientId! } })).body as { windowId: number };
      await call(ctx, 'deleteClient', { params: { clientId: ctx.params.clientId! } });
      return `/admin/windows/${client.windowId}`;
    }, clientPage),
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
  router.post(
    '/administrators/revocations',
    formBody,
    change(async (ctx) => {
      await call(ctx, 'revokeRole', { body: roleForm(ctx) });
      return '/admin/administrators';
    }, administratorsPage),
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
  router.post(
    '/keys/:kid/retire',
    formBody,
    change(async (ctx) => {
      await call(ctx, 'retireKey', { params: { kid: ctx.params.kid! } });
      return '/admin/keys';
    }, keysPage),
  );

  // Service figures: every window side by side (province roles), and one window's year.
  const yearOf = (ctx: Context) => (typeof ctx.query.year === 'string' && ctx.query.year ? ctx.query.year : String(currentYear()));
  router.get('/figures', async (ctx) => {
    const year = yearOf(ctx);
    const result = (await call(ctx, 'allWindowFigures', { query: { year } })).body as { year: number; target: number; windows: Array<WindowFigures & { name: string | null }> };
    const chart = barChart(result.windows.map((w) => ({ label: w.name ?? `#${w.windowId}`, value: w.enterprises })));
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
    const chart = barChart(daysOf(result.figures.year).map((day) => ({ label: day, value: counts.get(day) ?? 0 })));
    show(ctx, 'admin-window-figures', { ...result, chart });
  });

  router.get('/windows/:windowId/logout-deliveries', async (ctx) => {
    const result = (await call(ctx, 'logoutDeliveries', { params: { windowId: ctx.params.windowId! }, query: {} })).body;
    show(ctx, 'admin-logout-deliveries', result as Data);
  });

  // A download of the trail for a period, streamed (any size, bounded memory). Not an
  // API operation, which answers JSON pages: the role is the same one's, checked here.
  router.get('/audit/export', async (ctx) => {
    if (!can(ctx, 'exportAuditEvents')) throw new ForbiddenError('role', 'needs_role', { roles: operation('exportAuditEvents').roles.join(', ') });
    const { format: formatValue, lang: _lang, ...rest } = ctx.query;
    const filter = parseInput(exportFilterSchema, Object.fromEntries(Object.entries(rest).filter(([, v]) => v !== '')));
    const format = parseInput(z.enum(EXPORT_FORMATS, { error: 'must be csv or jsonl' }), formatValue ?? 'csv');
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

  router.get('/audit', async (ctx) => {
    const query = Object.fromEntries(Object.entries(ctx.query).filter(([k, v]) => k !== 'lang' && k !== 'saved' && typeof v === 'string' && v !== ''));
    try {
      show(ctx, 'admin-audit', { events: (await call(ctx, 'listAuditEvents', { query })).body, filter: query });
    } catch (err) {
      // Bad filters are shown with the form; a role without the audit trail is refused (403).
      if (!(err instanceof InputError) || err instanceof ForbiddenError || err instanceof NotFoundError) throw err;
      show(ctx, 'admin-audit', { events: [], filter: query, errors: err.issues }, 400);
    }
  });

  return router;
}
