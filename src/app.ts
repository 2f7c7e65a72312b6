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
import type { KeySet } from './oidc/keys.ts';
import { createProvider } from './oidc/provider.ts';

export type AppOptions = {
  issuer: string;
  db: Db;
  keys: KeySet;
  trustProxy: boolean;
  security: SecuritySettings;
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
  for (const router of [home, interactionRoutes(provider, o.db, o.security), accountCenterRoutes(provider, o.db, o.issuer), ...(o.extraRoutes ?? [])]) {
    app.use(router.routes()).use(router.allowedMethods());
  }
  app.use(mount(provider));
  app.on('error', (err) => o.logger.error('unhandled', err));
  return { app, provider };
}
