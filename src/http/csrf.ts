import crypto from 'node:crypto';
import type { Context } from 'koa';
import { constantTimeEqual } from '../crypto/secrets.ts';

// Signed double-submit: a random token in a signed, HttpOnly cookie and the same token
// in a hidden form field. A cross-site form cannot read the cookie to copy it.
const COOKIE = 'csrf';

export function csrfToken(ctx: Context): string {
  let token = ctx.cookies.get(COOKIE, { signed: true });
  if (!token) {
    token = crypto.randomBytes(24).toString('base64url');
    ctx.cookies.set(COOKIE, token, { httpOnly: true, sameSite: 'lax', signed: true, secure: ctx.secure, overwrite: true });
  }
  return token;
}

export function csrfValid(ctx: Context, submitted: unknown): boolean {
  const token = ctx.cookies.get(COOKIE, { signed: true });
  return typeof submitted === 'string' && token !== undefined && constantTimeEqual(token, submitted);
}
