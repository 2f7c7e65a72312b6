import Koa from 'koa';
import Router from '@koa/router';
import mount from 'koa-mount';
import type Provider from 'oidc-provider';
import type { SecuritySettings } from './config.ts';
import type { Db } from './db/connect.ts';
import { errorPages, securityHeaders, type Logger } from './http/errors.ts';
import { rememberLang } from './http/i18n.ts';
import { render } from './http/render.ts';
import { interactionRoutes } from './interaction/routes.ts';
import { accountCenterRoutes } from './account-center/routes.ts';
import { registerRoutes, type CodeMessages } from './account-center/register.ts';
import { resetPasswordRoutes } from './account-center/reset-password.ts';
import { outboxPage } from './messages/outbox-page.ts';
import type { KeySet } from './oidc/keys.ts';
import { createProvider } from './oidc/provider.ts';

export type AppOptions = {
  issuer: string;
  db: Db;
  keys: KeySet;
  trustProxy: boolean;
  security: SecuritySettings;
  // Seals second-factor secrets.
  masterKey: Buffer;
  messages: CodeMessages;
  // The development outbox page (/dev/outbox); never in production.
  outboxPage: boolean;
  logger: Logger;
  // Extra routes mounted before the provider (the demo window sites).
  extraRoutes?: Router[];
  homeLinks?: Array<{ name: string; href: string }>;
};

export type App = { app: Koa; provider: Provider };

// The whole path of a request, in order.
export function createApp(o: AppOptions): App {
  const provider = createProvider({ issuer: o.issuer, db: o.db, keys: o.keys, logger: o.logger, session: o.security.session });
  // The parent app owns proxy trust and cookie keys; the mounted provider uses its context.
  const app = new Koa({ proxy: o.trustProxy, keys: o.keys.cookieKeys });
  provider.proxy = o.trustProxy;

  const home = new Router();
  home.get('/', (ctx) => render(ctx, 'home', { demoSites: o.homeLinks ?? [] }));

  app.use(securityHeaders);
  app.use(errorPages(o.logger));
  app.use(rememberLang);
  const routers = [
    home,
    interactionRoutes(provider, o.db, o.security, o.masterKey),
    accountCenterRoutes(provider, o.db, o.issuer, o.security, o.masterKey, o.messages),
    registerRoutes(o.db, o.security, o.messages),
    resetPasswordRoutes(provider, o.db, o.security, o.messages),
    ...(o.outboxPage ? [outboxPage(o.db)] : []),
    ...(o.extraRoutes ?? []),
  ];
  for (const router of routers) {
    app.use(router.routes()).use(router.allowedMethods());
  }
  app.use(mount(provider));
  app.on('error', (err) => o.logger.error('unhandled', err));
  return { app, provider };
}
