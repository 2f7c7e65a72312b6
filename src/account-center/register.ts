import Router from '@koa/router';
import type { Context } from 'koa';
import type { Db } from '../db/connect.ts';
import { createAccount, parseContact } from '../accounts/accounts.ts';
import { useCode } from '../accounts/codes.ts';
import { sendCode } from './send-code.ts';
import type { SecuritySettings } from '../config.ts';
import { InputError } from '../errors.ts';
import { langOf } from '../http/i18n.ts';
import { describeIssue } from '../problems.ts';
import { csrfToken } from '../http/csrf.ts';
import { formBody as form, formField as field, rejectForgery } from '../http/forms.ts';
import { rateLimit } from '../http/rate-limit.ts';
import { recordEvent } from '../audit/trail.ts';
import { flowPage, render } from '../http/render.ts';
import type { Sender } from '../messages/senders.ts';

// Self-registration, proven by a one-time code sent to a phone number or an email
// address. Step 1 sends the code; step 2 takes it with the new account's details.
// Asking for a contact that already has an account sends that account a notice
// instead of a code, and the page looks the same: it tells nobody who is registered.

export type CodeMessages = { codeKey: Buffer; sender: Sender };

// Only a login page's interaction id goes back into links.
const interactionOf = (ctx: Context) => {
  const value = field(ctx, 'interaction') || (typeof ctx.query.interaction === 'string' ? ctx.query.interaction : '');
  return /^[A-Za-z0-9_-]{10,64}$/.test(value) ? value : '';
};

export function registerRoutes(db: Db, security: SecuritySettings, messages: CodeMessages): Router {
  const router = new Router({ prefix: '/register' });
  // A page answering a post switches language on the form's first step.
  const page = (ctx: Context, data: Record<string, unknown>, status = 200) => {
    flowPage(ctx, interactionOf(ctx) ? `/register?interaction=${interactionOf(ctx)}` : '/register');
    render(ctx, 'register', { csrf: csrfToken(ctx), rule: `rule_${security.passwords.name}`, interaction: interactionOf(ctx), channels: [...messages.sender.channels], ...data }, status);
  };

  router.get('/', (ctx) => page(ctx, { step: 'contact' }));

  router.post('/code', rateLimit(db, 'code', security.codeRateLimit), form, async (ctx) => {
    if (rejectForgery(ctx)) return;
    const typed = field(ctx, 'contact').slice(0, 254);
    const contact = parseContact(typed);
    if (!contact) return page(ctx, { step: 'contact', contact: typed, error: 'badContact' }, 400);
    if (!messages.sender.channels.has(contact.channel)) return page(ctx, { step: 'contact', contact: typed, error: 'channelUnavailable' }, 400);
    const wait = await sendCode(ctx, db, messages, 'register', contact, (code, holder) =>
      holder
        ? { subject: '统一身份认证', body: '有人用此号码或邮箱申请注册，但它已有账号。如需找回密码，请在登录页选择“忘记密码”。' }
        : { subject: '统一身份认证注册验证码', body: `您的验证码是 ${code}，10 分钟内有效。请勿告诉他人。` },
    );
    if (wait) return page(ctx, { step: 'details', contact: contact.destination, error: 'resendTooSoon', seconds: wait }, 429);
    page(ctx, { step: 'details', contact: contact.destination, sent: true });
  });

  router.post('/', rateLimit(db, 'register', security.registerRateLimit), form, async (ctx) => {
    if (rejectForgery(ctx)) return;
    const contact = parseContact(field(ctx, 'contact'));
    if (!contact) return page(ctx, { step: 'contact', error: 'badContact' }, 400);
    // The code typed stays in the form when another field is refused (it is still unused).
    const values = { contact: contact.destination, username: field(ctx, 'username').slice(0, 64), name: field(ctx, 'name').slice(0, 100), code: field(ctx, 'code').slice(0, 6) };
    const password = field(ctx, 'password').slice(0, 1024);
    if (password !== field(ctx, 'confirm_password')) return page(ctx, { step: 'details', ...values, error: 'passwordsDiffer' }, 400);
    try {
      // The code is used in the same transaction that creates the account: a refused
      // detail leaves the code usable, a wrong code still counts as a try.
      const outcome = await db.transaction(async (trx) => {
        if (!(await useCode(trx, messages.codeKey, 'register', contact.destination, field(ctx, 'code').slice(0, 12)))) return 'bad-code';
        const account = await createAccount(
          trx,
          { username: values.username, displayName: values.name, password, ...(contact.channel === 'sms' ? { phone: contact.destination } : { email: contact.destination }) },
          security.passwords,
          contact.channel === 'sms' ? 'phone' : 'email',
        );
        await recordEvent(trx, { actor: { type: 'account', id: account.id }, ip: ctx.ip, event: 'account.created', target: `account:${account.id}`, outcome: 'success', reason: 'registration', after: { username: account.username, proven: contact.channel === 'sms' ? 'phone' : 'email' } });
        return 'created';
      });
      if (outcome === 'bad-code') return page(ctx, { step: 'details', ...values, code: '', error: 'badCode' }, 400);
    } catch (err) {
      if (err instanceof InputError) return page(ctx, { step: 'details', ...values, error: describeIssue(err, langOf(ctx)) }, 400);
      throw err;
    }
    render(ctx, 'done', { title: 'registeredTitle', message: 'registeredText', next: interactionOf(ctx) ? `/interaction/${interactionOf(ctx)}` : '/account' });
  });

  return router;
}
