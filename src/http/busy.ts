import type { Context, Next } from 'koa';
import { PasswordHashingBusy } from '../accounts/passwords.ts';
import { render } from './render.ts';

// A node whose password-hashing queue is full (accounts/passwords.ts) says so with 503
// and Retry-After. The request was refused before it wrote anything, so trying again
// is safe.
export async function busyAnswers(ctx: Context, next: Next): Promise<void> {
  try {
    await next();
  } catch (err) {
    if (!(err instanceof PasswordHashingBusy)) throw err;
    ctx.set('Retry-After', String(err.retryAfterSeconds));
    ctx.set('Cache-Control', 'no-store');
    render(ctx, 'error', { message: 'errorBusy', code: err.error }, 503);
  }
}
