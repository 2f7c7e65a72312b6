import type { Context } from 'koa';
import { koaBody } from 'koa-body';
import { csrfValid } from './csrf.ts';
import { render } from './render.ts';

// HTML forms: one body parser (urlencoded only, small), one way to read a field, and
// one CSRF gate for every page that takes a POST.

export const formBody = koaBody({ urlencoded: true, json: false, multipart: false, text: false, formLimit: '16kb' });

export type FormValues = Record<string, unknown>;

// A submitted field as sent (a password's spaces are part of it); anything else
// (missing, repeated) is ''.
export function formField(ctx: Context, name: string): string {
  const value = (ctx.request.body as FormValues | undefined)?.[name];
  return typeof value === 'string' ? value : '';
}

// A field that may repeat (checkboxes): every string value sent under the name.
export function formList(ctx: Context, name: string): string[] {
  const value = (ctx.request.body as FormValues | undefined)?.[name];
  return (Array.isArray(value) ? value : [value]).filter((v): v is string => typeof v === 'string');
}

// Answers a form without its CSRF token with a 403 page; true when it did.
export function rejectForgery(ctx: Context): boolean {
  if (csrfValid(ctx, formField(ctx, 'csrf'))) return false;
  render(ctx, 'error', { message: 'errorCsrf', code: 'csrf' }, 403);
  return true;
}
