import type { Context, Next } from 'koa';
import { DatabaseUnavailable } from '../db/connection-errors.ts';
import { createLogger } from './logging.ts';
import { render } from './render.ts';
import { routeOf } from './requests.ts';

// What the code logs through. `fields` are extra structured fields for the line.
export type Logger = { error(message: string, err?: unknown): void; info(message: string, fields?: Record<string, unknown>): void };

// JSON lines through pino (./logging.ts), on standard error: the command line's own
// output is on standard output. The server makes its own logger (LOG_LEVEL, stdout).
let shared: Logger | undefined;
const lazy = () => (shared ??= createLogger({ destination: 2 }));
export const consoleLogger: Logger = {
  error: (message, err) => lazy().error(message, err),
  info: (message, fields) => lazy().info(message, fields),
};

// How long a client is asked to wait when the service is starting or the database is
// away (Retry-After on every 503).
export const RETRY_AFTER_SECONDS = 2;

export async function retryAfterOnUnavailable(ctx: Context, next: Next): Promise<void> {
  try {
    await next();
  } finally {
    if (ctx.status === 503 && !ctx.response.get('Retry-After')) ctx.set('Retry-After', String(RETRY_AFTER_SECONDS));
  }
}

// The last safety net for our own routes: the user gets a plain page, the log gets
// the stack and the route template (paths carry ids). (The provider's routes render
// their errors through renderError.)
export function errorPages(logger: Logger) {
  return async (ctx: Context, next: Next) => {
    try {
      await next();
      if (ctx.status === 404 && ctx.body === undefined) render(ctx, 'error', { message: 'errorNotFound', code: 'not_found' }, 404);
    } catch (err) {
      if (err instanceof DatabaseUnavailable) {
        logger.error(`${ctx.method} ${routeOf(ctx)}: database unavailable`, err);
        // On the provider's routes (an audit record it waited for failed), JSON unless
        // HTML is preferred, as the provider answers; on ours, a page unless JSON is.
        const provider = (ctx as Context & { oidc?: unknown }).oidc !== undefined;
        if (provider ? ctx.accepts('json', 'html') === 'json' : ctx.accepts('html', 'json') === 'json') {
          ctx.status = 503;
          ctx.set('Cache-Control', 'no-store');
          ctx.body = { error: err.error, error_description: err.error_description };
        } else {
          render(ctx, 'error', { message: 'errorUnavailable', code: err.error }, 503);
        }
        return;
      }
      const e = err as { status?: number; expose?: boolean; error?: string };
      const status = e.expose ? (e.status ?? 400) : 500;
      if (status >= 500) logger.error(`${ctx.method} ${routeOf(ctx)} failed`, err);
      const code = status >= 500 ? 'server_error' : (e.error ?? 'bad_request');
      const message = status >= 500 ? 'errorInternal' : code === 'session_not_found' ? 'errorSessionExpired' : 'errorGeneric';
      render(ctx, 'error', { message, code }, status);
    }
  };
}

// Pages run no inline script. The one exception is oidc-provider's auto-submit page
// (response_mode=form_post, and the confirmation that ends another person's session):
// it adds the hash of its own script to script-src when the header is already there,
// so the policy is set before the response is made.
const PAGE_POLICY = "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'; object-src 'none'";

// A page that frames other sites (front-channel logout) allows exactly their origins.
export const pagePolicyFraming = (origins: readonly string[]): string => `${PAGE_POLICY}; frame-src ${origins.join(' ')}`;

export async function securityHeaders(ctx: Context, next: Next): Promise<void> {
  ctx.set('Content-Security-Policy', PAGE_POLICY);
  await next();
  ctx.set('X-Content-Type-Options', 'nosniff');
  ctx.set('Referrer-Policy', 'no-referrer');
  ctx.set('X-Frame-Options', 'DENY');
  // Only pages need the page policy; a response with its own (an SVG logo) keeps it.
  if (!ctx.response.is('html') && ctx.response.get('Content-Security-Policy') === PAGE_POLICY) ctx.remove('Content-Security-Policy');
  if (ctx.secure) ctx.set('Strict-Transport-Security', 'max-age=31536000');
}
