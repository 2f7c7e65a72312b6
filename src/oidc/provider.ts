import type { Context } from 'koa';
import Provider, { errors, interactionPolicy, type Configuration, type KoaContextWithOIDC } from 'oidc-provider';
import type { SecuritySettings } from '../config.ts';
import type { Db } from '../db/connect.ts';
import { findAccount } from '../accounts/accounts.ts';
import { administersWindow, isAdministrator, rolesOf } from '../accounts/admin-roles.ts';
import { actingEnterprise, needsActingChoice } from '../enterprises/acting.ts';
import type { Logger } from '../http/errors.ts';
import { render } from '../http/render.ts';
import { createAdapter } from './adapter.ts';
import { accountClaims, ACR, CLAIMS_BY_SCOPE, enterpriseClaim, SCOPES } from './claims.ts';
import { limitClientAuthentication, type ClientAuthLimits } from './client-auth-limits.ts';
import type { KeySet } from './keys.ts';
import { outgoingFetch } from './outgoing-fetch.ts';
import { providerRouteMatcher, queueBackchannelLogouts } from './internals.ts';
import { enqueueLogout, noticeFor } from './logout-deliveries.ts';
import { FRONTCHANNEL_METADATA, frontchannelLogoutPage } from './frontchannel-logout.ts';
import { markResuming } from './request-artifacts.ts';
import { nameGrantErrors } from './grant-errors.ts';
import { recordSessionUse, sessionUseDue } from './session-details.ts';
import { recordEvent, type AuditEvent } from '../audit/trail.ts';
import { awaitRequestRecords, recordWithRequest } from '../audit/request-records.ts';
import { countToken } from '../audit/token-counts.ts';
import { isInternalClient, windowOf } from '../windows/clients.ts';
import { findLiveApi } from '../windows/apis.ts';
import { jwtTokenClaims, recordJwtAccessToken, structuredTokenLookups } from './jwt-access-tokens.ts';
import { LANGS } from '../http/i18n.ts';

// The provider in service. Nodes replace it when the key set changes (rotation), so
// whatever uses it reads `current` per request.
export type Providers = { current: Provider };

// An API of this server that takes this provider's access tokens (resource indicators):
// only the listed clients get tokens for it, opaque so they can be revoked.
export type ProtectedApi = { audience: string; scope: string; clientIds: string[]; ttlSeconds: number };

export type ProviderOptions = { issuer: string; db: Db; keys: KeySet; logger: Logger; session: SecuritySettings['session']; clientAuth: ClientAuthLimits; apis?: ProtectedApi[];
  // NODE_ENV=development: error pages also show what only an integrator needs.
  development: boolean;
};

const isFirstParty = (client: { [key: string]: unknown } | undefined) => client !== undefined && client.third_party !== true;

// First-party windows never see a consent screen: their grant is made (or widened to
// what they ask) here, before the library decides whether to prompt.
async function loadExistingGrant(ctx: KoaContextWithOIDC) {
  const { client, session, provider } = ctx.oidc;
  const grantId = ctx.oidc.result?.consent?.grantId ?? session!.grantIdFor(client!.clientId);
  const existing = grantId ? await provider.Grant.find(grantId) : undefined;
  if (!isFirstParty(client as never)) return existing;
  const grant = existing ?? new provider.Grant({ clientId: client!.clientId, accountId: session!.accountId! });
  const granted = () => `${grant.getOIDCScope()}|${grant.getOIDCClaims().join(' ')}`;
  const before = existing ? granted() : undefined;
  const scopes = [...ctx.oidc.requestParamOIDCScopes].join(' ');
  if (scopes) grant.addOIDCScope(scopes);
  for (const [indicator, server] of Object.entries(ctx.oidc.resourceServers ?? {})) {
    const wanted = [...ctx.oidc.requestParamScopes].filter((scope) => server.scopes.has(scope));
    if (wanted.length) grant.addResourceScope(indicator, wanted.join(' '));
  }
  const claims = ctx.oidc.requestParamClaims;
  if (claims?.size) grant.addOIDCClaims([...claims]);
  // An unchanged grant is not written again: this runs on every sign-in at a window.
  if (granted() !== before) await grant.save();
  return grant;
}

// login, then whom the person acts for (select_account: asked of a window that wants
// the enterprise scope when the person belongs to several enterprises and has not
// chosen in this session, or when a window asks with prompt=select_account), then consent.
function interactionSteps(db: Db) {
  const { base, Prompt, Check } = interactionPolicy;
  const steps = base();
  const notChosen = new Check('acting_enterprise_not_chosen', 'the person has not chosen whom to act for', async (ctx) => {
    const session = ctx.oidc.session;
    if (!session?.accountId || !ctx.oidc.requestParamScopes.has('enterprise')) return Check.NO_NEED_TO_PROMPT;
    return (await needsActingChoice(db, session.uid, session.accountId)) ? Check.REQUEST_PROMPT : Check.NO_NEED_TO_PROMPT;
  });
  steps.add(new Prompt({ name: 'select_account', requestable: true }, notChosen), 1);
  // A window that asks for the second-factor class gets it, even from a session that
  // signed in with a password alone (step-up).
  // Administrators always sign in with one (MLPS: two factors for administrators).
  steps.get('login')!.checks.push(
    new Check('mfa_requested', 'the window asks for a second factor', (ctx) => {
      const asked = String(ctx.oidc.params?.acr_values ?? '').split(' ').includes(ACR.mfa);
      return asked && ctx.oidc.session?.accountId && ctx.oidc.session.acr !== ACR.mfa ? Check.REQUEST_PROMPT : Check.NO_NEED_TO_PROMPT;
    }),
    new Check('administrator_mfa', 'administrators sign in with a second factor', async (ctx) => {
      const session = ctx.oidc.session;
      if (!session?.accountId || session.acr === ACR.mfa) return Check.NO_NEED_TO_PROMPT;
      return (await isAdministrator(db, session.accountId)) ? Check.REQUEST_PROMPT : Check.NO_NEED_TO_PROMPT;
    }),
  );
  return steps;
}

const errorMessages: Record<string, string> = {
  session_not_found: 'errorSessionExpired',
  server_error: 'errorInternal',
  temporarily_unavailable: 'errorUnavailable',
};

type SentUri = { name: 'redirect_uri' | 'post_logout_redirect_uri'; value: string; registered?: readonly string[] };

// A redirect_uri or post_logout_redirect_uri that matched nothing registered, as it was
// sent (the page escapes it): what an integrator needs to see a trailing slash or an
// http for https. The registered ones are the window's business: shown in development,
// and otherwise only to a person signed in here who administers the client's window (the
// console shows them the same).
async function unregisteredUri(ctx: KoaContextWithOIDC, out: { error?: unknown; error_description?: unknown }, db: Db, development: boolean): Promise<SentUri | undefined> {
  const name = out.error === 'invalid_redirect_uri' ? 'redirect_uri' : String(out.error_description ?? '').startsWith('post_logout_redirect_uri') ? 'post_logout_redirect_uri' : undefined;
  const value = name ? ctx.oidc?.params?.[name] : undefined;
  if (!name || typeof value !== 'string') return undefined;
  const sent: SentUri = { name, value: value.slice(0, 2000) };
  const client = ctx.oidc.client;
  if (!client) return sent;
  const accountId = ctx.oidc.session?.accountId;
  const shown = development || (accountId !== undefined && administersWindow(await rolesOf(db, accountId), windowOf(client as never)));
  return shown ? { ...sent, registered: (name === 'redirect_uri' ? client.redirectUris : client.postLogoutRedirectUris) ?? [] } : sent;
}

type IdTokenHint = { payload: { sub?: unknown; sid?: unknown } };

// RP-initiated logout needs no click when the window that asks proves it is this
// person's window in this session: the library has verified the id_token_hint's
// signature and that it was issued to the asking client; its sid must also be the one
// this session gave that client, for the signed-in account. Otherwise an ID token from
// an earlier session, or another person's, would let any page sign the person out
// (logout CSRF), so the confirmation stays.
function hintFromThisSession(ctx: KoaContextWithOIDC): boolean {
  const hint = ctx.oidc.entities.IdTokenHint as IdTokenHint | undefined;
  const { session, client } = ctx.oidc;
  if (!hint || !client || !session?.accountId || !session.authorizations?.[client.clientId]) return false;
  return hint.payload.sub === session.accountId && hint.payload.sid === session.sidFor(client.clientId);
}

export function createProvider(o: ProviderOptions): Provider {
  const apis = o.apis ?? [];
  const issuerOrigin = new URL(o.issuer).origin;
  const apiFor = (indicator: string | undefined, clientId: string) => apis.find((a) => a.audience === indicator && a.clientIds.includes(clientId));
  const configuration: Configuration = {
    adapter: createAdapter(o.db),
    async findAccount(ctx, sub, token) {
      const account = await findAccount(o.db, sub);
      if (!account || account.status !== 'active') return undefined;
      return {
        accountId: account.id,
        async claims(_use, scope) {
          const claims = accountClaims(account);
          if (!scope.split(' ').includes('enterprise')) return claims;
          // Codes and tokens carry the session they came from; the authorization
          // endpoint has the session itself.
          const sessionUid = (token as { sessionUid?: string } | undefined)?.sessionUid ?? ctx.oidc.session?.uid;
          const acting = sessionUid ? await actingEnterprise(o.db, sessionUid, account.id) : null;
          return acting ? { ...claims, enterprise: enterpriseClaim(acting) } : claims;
        },
      };
    },
    claims: CLAIMS_BY_SCOPE,
    acrValues: [ACR.password, ACR.mfa],
    // The languages of the pages; a window's ui_locales picks one (http/i18n.ts).
    discovery: { claim_types_supported: ['normal'], ui_locales_supported: [...LANGS], frontchannel_logout_supported: true, frontchannel_logout_session_supported: true },
    scopes: SCOPES,
    responseTypes: ['code'],
    clientAuthMethods: ['client_secret_basic', 'client_secret_post', 'private_key_jwt', 'none'],
    enabledJWA: {
      idTokenSigningAlgValues: ['RS256', 'ES256'],
      userinfoSigningAlgValues: ['RS256', 'ES256'],
      introspectionSigningAlgValues: ['RS256', 'ES256'],
      authorizationSigningAlgValues: ['RS256', 'ES256'],
      requestObjectSigningAlgValues: ['RS256', 'ES256'],
      clientAuthSigningAlgValues: ['RS256', 'ES256', 'PS256'],
    },
    extraClientMetadata: { properties: ['window_id', 'third_party', 'client_secret_previous', ...FRONTCHANNEL_METADATA] },
    jwks: o.keys.jwks as Configuration['jwks'],
    cookies: {
      keys: o.keys.cookieKeys,
      long: { httpOnly: true, sameSite: 'lax', signed: true },
      short: { httpOnly: true, sameSite: 'lax', signed: true },
    },
    features: {
      devInteractions: { enabled: false },
      clientCredentials: { enabled: true },
      introspection: {
        enabled: true,
        // A window's back end may check tokens issued to any client of its own window,
        // and those for an API of its window, whoever they were issued to.
        async allowedPolicy(ctx, client, token) {
          if (client.clientAuthMethod === 'none') return token.clientId === client.clientId;
          if (token.clientId === client.clientId) return true;
          const aud = (token as { aud?: unknown }).aud;
          const api = typeof aud === 'string' ? await findLiveApi(o.db, aud) : undefined;
          if (api && api.windowId === client['window_id']) return true;
          const owner = token.clientId ? await ctx.oidc.provider.Client.find(token.clientId) : undefined;
          return owner !== undefined && owner['window_id'] === client['window_id'];
        },
      },
      // A client revokes only its own tokens (introspection may look wider, revoking may
      // not); another's is answered as RFC 7009 says for an unknown one: 200, nothing done.
      revocation: { enabled: true, allowedPolicy: async (_ctx, client, token) => token.clientId === client.clientId },
      resourceIndicators: {
        enabled: true,
        defaultResource: (_ctx, client) => apis.find((a) => a.clientIds.includes(client!.clientId))?.audience,
        useGrantedResource: () => true,
        async getResourceServerInfo(_ctx, indicator, client) {
          const api = apiFor(indicator, client.clientId);
          if (api) return { audience: api.audience, scope: api.scope, accessTokenFormat: 'opaque', accessTokenTTL: api.ttlSeconds };
          // A window's API (windows/apis.ts), for the clients of its window or, if it
          // allows them, of any window: RFC 9068 JWT access tokens (typ at+jwt).
          // Identifiers on the provider's own origin are the provider's (the admin API,
          // its endpoints), never a window's.
          const registered = URL.parse(indicator)?.origin === issuerOrigin ? undefined : await findLiveApi(o.db, indicator);
          const clientWindow = windowOf(client as never);
          if (!registered || clientWindow === null || (registered.windowId !== clientWindow && !registered.otherWindows)) throw new errors.InvalidTarget();
          return {
            audience: registered.identifier,
            scope: registered.scopes.join(' '),
            accessTokenFormat: 'jwt',
            accessTokenTTL: registered.accessTokenTtlSeconds,
            jwt: { sign: { alg: 'RS256' } },
          };
        },
      },
      backchannelLogout: { enabled: true },
      rpInitiatedLogout: {
        enabled: true,
        async logoutSource(ctx, form) {
          render(ctx as unknown as Context, 'logout', { form, auto: hintFromThisSession(ctx) });
        },
        async postLogoutSuccessSource(ctx) {
          render(ctx as unknown as Context, 'logged-out');
        },
      },
    },
    extraTokenClaims: (_ctx, token) => jwtTokenClaims(o.db, token as never),
    formats: { customizers: { jwt: (_ctx, token, jwt) => recordJwtAccessToken(token as never, jwt.payload as never) } },
    pkce: { required: (_ctx, client) => client.clientAuthMethod === 'none' },
    // A first-party window gets a refresh token on every code flow, so its own session can
    // outlive an access token without sending the person back. Without offline_access it
    // is bound to the person's sign-in session (the library's expiresWithSession): it
    // stops with a sign-out anywhere, the session's timeout, or the account's end.
    // offline_access (which needs prompt=consent, OIDC Core 11) gives one that outlives
    // the session; a third-party client gets a refresh token only that way.
    issueRefreshToken: async (_ctx, client, code) => client.grantTypeAllowed('refresh_token') && (isFirstParty(client as never) || code.scopes.has('offline_access')),
    rotateRefreshToken: true,
    allowOmittingSingleRegisteredRedirectUri: false,
    // Scope claims go into the ID token too: many window sites read only the ID token.
    conformIdTokenClaims: false,
    loadExistingGrant,
    interactions: { url: (_ctx, interaction) => `/interaction/${interaction.uid}`, policy: interactionSteps(o.db) },
    clientBasedCORS: (_ctx, origin, client) => client.redirectUris?.some((uri) => new URL(uri).origin === origin) ?? false,
    fetch: outgoingFetch(o.db) as Configuration['fetch'],
    ttl: {
      // An API's tokens live as long as it says (getResourceServerInfo).
      AccessToken: (_ctx, token) => token.resourceServer?.accessTokenTTL ?? 3600,
      AuthorizationCode: 60,
      ClientCredentials: (_ctx, token) => token.resourceServer?.accessTokenTTL ?? 3600,
      IdToken: 3600,
      Interaction: 1800,
      RefreshToken: 14 * 24 * 3600,
      // Idle timeout, sliding with every request that uses the session, but never past
      // the absolute lifetime counted from the sign-in.
      Session: (_ctx, session) => {
        const { idleSeconds, maxAgeSeconds } = o.session;
        const signedInFor = session.loginTs ? Math.floor(Date.now() / 1000) - session.loginTs : 0;
        return Math.max(1, Math.min(idleSeconds, maxAgeSeconds - signedInFor));
      },
      Grant: 14 * 24 * 3600,
    },
    async renderError(ctx, out) {
      const message = errorMessages[String(out.error)] ?? 'errorGeneric';
      const detail = out.error === 'server_error' ? undefined : out.error_description;
      const sent = await unregisteredUri(ctx, out, o.db, o.development);
      render(ctx as unknown as Context, 'error', { message, code: out.error, detail, sent }, ctx.status >= 400 ? ctx.status : 400);
    },
  };

  const provider = new Provider(o.issuer, configuration);
  // Every ID token names its session (sid), as Keycloak's do, not only those of clients
  // that take back-channel logout: a window matches a logout to it, and RP-initiated
  // logout checks it (hintFromThisSession).
  Object.defineProperty(provider.Client.prototype, 'includeSid', { value: () => true });
  // The records its events make (below) are written before the provider answers.
  provider.use(awaitRequestRecords);
  const routeOf = providerRouteMatcher(provider);
  provider.use((ctx, next) => {
    if (routeOf(ctx.method, ctx.path) === 'resume') markResuming();
    return next();
  });
  provider.on('server_error', (_ctx, err) => o.logger.error('provider server_error', err));
  const onRecordFailure = (err: unknown) => o.logger.error('writing an audit record failed', err);
  limitClientAuthentication(provider, o.db, o.clientAuth, onRecordFailure);
  // After the limit on client authentication, which refuses an address before its request is read.
  provider.use(structuredTokenLookups(o.issuer, o.keys.jwks.keys, (ctx) => ['introspection', 'revocation'].includes(routeOf(ctx.method, ctx.path) ?? '')));
  // Every introspected token has an audience: a token with no resource is usable only by
  // its own window (introspection is limited to the window's clients, and userinfo), so
  // its audience is the client it was issued to, as for an ID token; no API's
  // identifier (an absolute URI) is ever a client id.
  provider.use(async (ctx, next) => {
    await next();
    const body = ctx.body as { active?: boolean; aud?: unknown; client_id?: string } | undefined;
    if (body?.active === true && body.aud === undefined && routeOf(ctx.method, ctx.path) === 'introspection') body.aud = body.client_id;
  });
  nameGrantErrors(provider);

  // A person served at a window: every authorization, with a password or by single
  // sign-on. The windows' service figures are counted from these.
  provider.on('authorization.success', (ctx) => {
    const { session, client } = ctx.oidc;
    if (!session?.accountId || !client) return;
    const accountId = session.accountId;
    const use = { sessionUid: session.uid, accountId, ip: ctx.ip, userAgent: ctx.get('user-agent') || undefined };
    if (isInternalClient(client.clientId)) {
      recordSessionUse(o.db, use).catch((err) => o.logger.error('recording session details failed', err));
      return;
    }
    const served = async () => {
      // Whom the person acts for: the session's choice, while they are still a member. A
      // session begun in this request (no session cookie came) can have a choice only
      // from its select_account check (interactionSteps), made only for the enterprise scope.
      const noChoiceYet = (session as { new?: boolean }).new === true && !ctx.oidc.requestParamScopes.has('enterprise');
      const enterpriseId = noChoiceYet ? undefined : (await actingEnterprise(o.db, session.uid, accountId))?.enterprise.id;
      const due = sessionUseDue(o.db, use);
      const record: AuditEvent = {
        actor: { type: 'account', id: accountId },
        ip: ctx.ip,
        ...(enterpriseId && { enterpriseId }),
        windowId: windowOf(client as never),
        event: 'authorization',
        target: `client:${client.clientId}`,
        outcome: 'success',
        after: { acr: session.acr ?? null },
      };
      await recordEvent(o.db, record, due ? [due.write] : []).catch((err: unknown) => {
        due?.failed();
        throw err;
      });
    };
    recordWithRequest(ctx as unknown as Context, served(), onRecordFailure);
  });
  provider.on('end_session.success', (ctx) => {
    const accountId = ctx.oidc.session?.accountId;
    if (!accountId) return;
    const client = ctx.oidc.client;
    const record = recordEvent(o.db, {
      actor: { type: 'account', id: accountId },
      ip: ctx.ip,
      windowId: windowOf(client as never),
      event: 'sign_out',
      target: `account:${accountId}`,
      outcome: 'success',
      ...(client && { after: { clientId: client.clientId } }),
    });
    recordWithRequest(ctx as unknown as Context, record, onRecordFailure);
  });
  // Back-channel logout is queued (logout-deliveries.ts), and the sign-out answers only
  // once every notification is: one that could not be queued fails the request.
  queueBackchannelLogouts(provider, (client, accountId, sid) => enqueueLogout(o.db, noticeFor(client, accountId, sid)));
  provider.on('backchannel.error', (ctx, err, client) => {
    o.logger.error(`queueing the back-channel logout of ${client.clientId} failed`, err);
    recordWithRequest(ctx as unknown as Context, Promise.reject(err), onRecordFailure);
  });
  provider.use(frontchannelLogoutPage(provider, routeOf));
  provider.on('grant.success', (ctx) => {
    const client = ctx.oidc.client;
    if (!client) return;
    const kind = String(ctx.oidc.params?.grant_type ?? 'unknown');
    recordWithRequest(ctx as unknown as Context, countToken(o.db, { clientId: client.clientId, windowId: windowOf(client as never), action: 'issued', kind }), onRecordFailure);
  });
  // Revoked at the revocation endpoint (or destroyed otherwise): no request to wait for.
  // (The library emits these, but its type definitions do not list them.)
  const events = provider as unknown as { on(event: string, listener: (token: { clientId?: string }) => void): void };
  for (const model of ['access_token', 'refresh_token', 'client_credentials'] as const) {
    events.on(`${model}.destroyed`, (token) => {
      if (!token.clientId) return;
      const clientId = token.clientId;
      const counted = provider.Client.find(clientId).then((client) => countToken(o.db, { clientId, windowId: windowOf(client as never), action: 'revoked', kind: model }));
      recordWithRequest(undefined, counted, onRecordFailure);
    });
  }
  return provider;
}
