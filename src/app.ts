import Koa from 'koa';
import Router from '@koa/router';
import mount from 'koa-mount';
import type Provider from 'oidc-provider';
import type { SecuritySettings } from './config.ts';
import type { Db } from './db/connect.ts';
import { errorPages, retryAfterOnUnavailable, securityHeaders, type Logger } from './http/errors.ts';
import { assetRoutes } from './http/assets.ts';
import { busyAnswers } from './http/busy.ts';
import { healthRoutes } from './http/health.ts';
import { rememberLang } from './http/i18n.ts';
import { countIssuedTokens, createMetrics, metricsRoute, type Metrics } from './http/metrics.ts';
import { requestHandling } from './http/requests.ts';
import { render } from './http/render.ts';
import { DEFAULT_PRESENTATION, type Presentation } from './http/presentation.ts';
import { interactionRoutes } from './interaction/routes.ts';
import { accountCenterRoutes } from './account-center/routes.ts';
import { registerRoutes, type CodeMessages } from './account-center/register.ts';
import { resetPasswordRoutes } from './account-center/reset-password.ts';
import { outboxPage } from './messages/outbox-page.ts';
import type { KeySet } from './oidc/keys.ts';
import { createProvider, type Providers } from './oidc/provider.ts';
import { pendingDeliveries } from './oidc/logout-deliveries.ts';
import { giveBackCodes } from './oidc/adapter.ts';
import { artifactsOfRequest } from './oidc/request-artifacts.ts';
import { adminApiRoutes } from './admin/api/routes.ts';
import { ADMIN_SCOPE, ADMIN_TOKEN_TTL_SECONDS, adminApiAudience } from './admin/api/token.ts';
import { ADMIN_CONSOLE_CLIENT_ID } from './admin/console-client.ts';
import { adminConsoleRoutes } from './admin/console/routes.ts';

export type AppOptions = {
  issuer: string;
  db: Db;
  keys: KeySet;
  trustProxy: boolean;
  security: SecuritySettings;
  // Seals second-factor secrets and the admin console's tokens.
  masterKey: Buffer;
  // Where this process itself listens, for the admin console's calls to the provider.
  selfUrl: string;
  keyRotationDelaySeconds: number;
  messages: CodeMessages;
  // The development outbox page (/dev/outbox); never in production.
  outboxPage: boolean;
  logger: Logger;
  // Production: /metrics exists only with a token.
  production: boolean;
  development: boolean;
  // Bearer token required by /metrics (METRICS_TOKEN).
  metricsToken: string | undefined;
  // Extra routes mounted before the provider (the demo window sites).
  extraRoutes?: Router[];
  homeLinks?: Array<{ name: string; href: string }>;
  // Unset: Beijing time and the seed's naming.
  presentation?: Presentation;
};

// useKeys: serve with a new key set from the next request on (rotation).
export type App = { app: Koa; providers: Providers; metrics: Metrics; useKeys(keys: KeySet): void };

// The whole path of a request, in order.
export function createApp(o: AppOptions): App {
  const metrics = createMetrics({ db: o.db, pendingLogoutDeliveries: () => pendingDeliveries(o.db) });
  let keysInUse = o.keys;
  const build = (keys: KeySet) => {
    const provider = createProvider({
      issuer: o.issuer,
      db: o.db,
      keys,
      logger: o.logger,
      session: o.security.session,
      clientAuth: o.security.clientAuth,
      development: o.development,
      apis: [{ audience: adminApiAudience(o.issuer), scope: ADMIN_SCOPE, clientIds: [ADMIN_CONSOLE_CLIENT_ID], ttlSeconds: ADMIN_TOKEN_TTL_SECONDS }],
    });
    provider.proxy = o.trustProxy;
    countIssuedTokens(provider, metrics);
    return provider;
  };
  const providers: Providers = { current: build(o.keys) };
  const adminServices = { db: o.db, providers, masterKey: o.masterKey, keyRotationDelaySeconds: o.keyRotationDelaySeconds };
  // The parent app owns proxy trust and cookie keys; the mounted provider uses its context.
  const app = new Koa({ proxy: o.trustProxy, keys: o.keys.cookieKeys });
  const presentation = o.presentation ?? DEFAULT_PRESENTATION;
  Object.assign(app.context, { presentation });

  const home = new Router();
  home.get('/', (ctx) => render(ctx, 'home', { demoSites: o.homeLinks ?? [] }));

  // First: the request id, the request's log line and metrics; then what load balancers
  // and Prometheus ask, which nothing after may block.
  const operations = new Router();
  healthRoutes(operations, { db: o.db, signingKeysLoaded: () => keysInUse.jwks.keys.length > 0, logger: o.logger });
  metricsRoute(operations, metrics, { token: o.metricsToken, production: o.production });
  app.use(requestHandling({ logger: o.logger, trustProxy: o.trustProxy, metrics }));
  app.use(retryAfterOnUnavailable);
  app.use(operations.routes());

  // The provider's artifacts this request reads, remembered for the request.
  app.use(artifactsOfRequest((codeIds) => giveBackCodes(o.db, codeIds)));
  app.use(securityHeaders);
  app.use(errorPages(o.logger));
  app.use(busyAnswers);
  app.use(rememberLang);
  const routers = [
    home,
    assetRoutes(presentation.branding.logo),
    interactionRoutes(providers, o.db, o.security, o.masterKey),
    accountCenterRoutes(providers, o.db, o.issuer, o.security, o.masterKey, o.messages),
    registerRoutes(o.db, o.security, o.messages),
    resetPasswordRoutes(providers, o.db, o.security, o.messages),
    adminApiRoutes(adminServices, o.issuer, o.logger),
    adminConsoleRoutes(adminServices, o.issuer, o.selfUrl),
    ...(o.outboxPage ? [outboxPage(o.db)] : []),
    ...(o.extraRoutes ?? []),
  ];
  for (const router of routers) {
    app.use(router.routes()).use(router.allowedMethods());
  }
  // The provider in service answers; each one is mounted once.
  const mounted = new WeakMap<Provider, Koa.Middleware>();
  app.use((ctx, next) => {
    const provider = providers.current;
    let middleware = mounted.get(provider);
    if (!middleware) mounted.set(provider, (middleware = mount(provider)));
    return middleware(ctx, next);
  });
  app.on('error', (err) => o.logger.error('unhandled', err));
  const useKeys = (keys: KeySet) => {
    providers.current = build(keys);
    keysInUse = keys;
  };
  return { app, providers, metrics, useKeys };
}
