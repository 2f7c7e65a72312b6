import type { Context, Next } from 'koa';
import { render } from './render.ts';

export type Logger = { error(message: string, err?: unknown): void; info(message: string): void };

export const consoleLogger: Logger = {
  error: (message, err) => console.error(`${new Date().toISOString()} ERROR ${message}`, err instanceof Error ? err.stack : (err ?? '')),
  info: (message) => console.log(`${new Date().toISOString()} INFO ${message}`),
};

// The last safety net for our own routes: the user gets a plain page, the log gets
// the stack. (The provider's routes render their errors through renderError.)
export function errorPages(logger: Logger) {
  return async (ctx: Context, next: Next) => {
    try {
      await next();
      if (ctx.status === 404 && ctx.body === undefined) render(ctx, 'error', { message: 'errorNotFound', code: 'not_found' }, 404);
    } catch (err) {
      const e = err as { status?: number; expose?: boolean; error?: string };
      const status = e.expose ? (e.status ?? 400) : 500;
      if (status >= 500) logger.error(`${ctx.method} ${ctx.path} failed`, err);
      const code = status >= 500 ? 'server_error' : (e.error ?? 'bad_request');
      const message = status >= 500 ? 'errorInternal' : code === 'session_not_found' ? 'errorSessionExpired' : 'errorGeneric';
      render(ctx, 'error', { message, code }, status);
    }
  };
}

export async function securityHeaders(ctx: Context, next: Next): Promise<void> {
  await next();
  ctx.set('X-Content-Type-Options', 'nosniff');
  ctx.set('Referrer-Policy', 'no-referrer');
  ctx.set('X-Frame-Options', 'DENY');
  if (ctx.response.is('html') && !ctx.response.get('Content-Security-Policy')) {
    ctx.set('Content-Security-Policy', "default-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'; object-src 'none'");
  }
  if (ctx.secure) ctx.set('Strict-Transport-Security', 'max-age=31536000');
}
