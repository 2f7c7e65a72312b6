import Router from '@koa/router';
import type { Context } from 'koa';
import type { Db } from '../db/connect.ts';
import type { Providers } from '../oidc/provider.ts';
import { changePassword, findAccountByIdentifier, parseContact } from '../accounts/accounts.ts';
import { useCode } from '../accounts/codes.ts';
import { sendCode } from './send-code.ts';
import { clearFailures, lockKeyFor } from '../accounts/lockout.ts';
import type { SecuritySettings } from '../config.ts';
import { InputError } from '../errors.ts';
import { langOf } from '../http/i18n.ts';
import { describeIssue } from '../problems.ts';
import { csrfToken } from '../http/csrf.ts';
import { formBody as form, formField as field, rejectForgery } from '../http/forms.ts';
import { rateLimit } from '../http/rate-limit.ts';
import { recordEvent } from '../audit/trail.ts';
import { flowPage, render } from '../http/render.ts';
import { endSessionsOf } from '../oidc/sessions.ts';
import type { CodeMessages } from './register.ts';

// Password reset by a one-time code to the account's phone or email. A reset ends
// every session of the account (each window it touched is told by back-channel logout)
// and revokes its tokens: whoever knew the old password is out. Asking for a contact
// with no account looks exactly like asking for one with an account.

export function resetPasswordRoutes(providers: Providers, db: Db, security: SecuritySettings, messages: CodeMessages): Router {
  const router = new Router({ prefix: '/reset' });
  // A page answering a post switches language on the form's first step.
  const page = (ctx: Context, data: Record<string, unknown>, status = 200) => {
    flowPage(ctx, '/reset');
    render(ctx, 'reset', { csrf: csrfToken(ctx), rule: `rule_${security.passwords.name}`, ...data }, status);
  };

  router.get('/', (ctx) => page(ctx, { step: 'contact' }));

  router.post('/code', rateLimit(db, 'code', security.codeRateLimit), form, async (ctx) => {
    if (rejectForgery(ctx)) return;
    const typed = field(ctx, 'contact').slice(0, 254);
    const contact = parseContact(typed);
    if (!contact) return page(ctx, { step: 'contact', contact: typed, error: 'badContact' }, 400);
    const wait = await sendCode(ctx, db, messages, 'reset', contact, (code, holder) =>
      holder ? { subject: '统一身份认证重置密码验证码', body: `您的验证码是 ${code}，10 分钟内有效。如非本人操作，请忽略。` } : undefined,
    );
    if (wait) return page(ctx, { step: 'password', contact: contact.destination, error: 'resendTooSoon', seconds: wait }, 429);
    page(ctx, { step: 'password', contact: contact.destination, sent: true });
  });

  router.post('/', rateLimit(db, 'reset', security.registerRateLimit), form, async (ctx) => {
    if (rejectForgery(ctx)) return;
    const contact = parseContact(field(ctx, 'contact'));
    if (!contact) return page(ctx, { step: 'contact', error: 'badContact' }, 400);
    const password = field(ctx, 'password').slice(0, 1024);
    // The code typed stays in the form when another field is refused (it is still unused).
    const code = field(ctx, 'code').slice(0, 6);
    if (password !== field(ctx, 'confirm_password')) return page(ctx, { step: 'password', contact: contact.destination, code, error: 'passwordsDiffer' }, 400);
    const account = await findAccountByIdentifier(db, contact.destination);
    try {
      const outcome = await db.transaction(async (trx) => {
        if (!(await useCode(trx, messages.codeKey, 'reset', contact.destination, field(ctx, 'code').slice(0, 12))) || !account) return 'bad-code';
        await changePassword(trx, account.id, password, security.passwords);
        await recordEvent(trx, { actor: { type: 'account', id: account.id }, ip: ctx.ip, event: 'password.reset', target: `account:${account.id}`, outcome: 'success', reason: `code sent by ${contact.channel}` });
        return 'changed';
      });
      if (outcome === 'bad-code') return page(ctx, { step: 'password', contact: contact.destination, error: 'badCode' }, 400);
    } catch (err) {
      if (err instanceof InputError) return page(ctx, { step: 'password', contact: contact.destination, code, error: describeIssue(err, langOf(ctx)) }, 400);
      throw err;
    }
    // Only the password's lock: a reset proves the phone or mailbox, not the second factor.
    await clearFailures(db, lockKeyFor(account!.id, contact.destination));
    await endSessionsOf(providers.current, db, account!.id, { everything: true });
    render(ctx, 'done', { title: 'resetTitle', message: 'resetText', next: '/account' });
  });

  return router;
}
