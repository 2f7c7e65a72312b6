import crypto from 'node:crypto';
import Router from '@koa/router';
import type { Context } from 'koa';
import type { Db } from '../db/connect.ts';
import type { Providers } from '../oidc/provider.ts';
import { changePassword, findAccount, findAccountByIdentifier, findAccounts, identifierSchema, maskPhone, parseContact, setContact, setDisplayName, signInWithPassword } from '../accounts/accounts.ts';
import { useCode } from '../accounts/codes.ts';
import { sendCode } from './send-code.ts';
import type { CodeMessages } from './register.ts';
import { confirmEnrolment, hasTotp, removeTotp, startEnrolment } from '../accounts/totp.ts';
import type { SecuritySettings } from '../config.ts';
import { chooseActingEnterprise, currentChoice } from '../enterprises/acting.ts';
import { createEnterprise, ENTERPRISE_TYPES, findEnterprise } from '../enterprises/enterprises.ts';
import { addMember, managesOperators, membersOf, membershipsOf, removeMember, roleIn } from '../enterprises/memberships.ts';
import { ConflictError, InputError, issuesOf } from '../errors.ts';
import { langOf } from '../http/i18n.ts';
import { describeIssue } from '../problems.ts';
import { opaqueId } from '../validation/text.ts';
import { constantTimeEqual } from '../crypto/secrets.ts';
import { csrfToken } from '../http/csrf.ts';
import { formBody as form, formField as field, rejectForgery } from '../http/forms.ts';
import { rateLimit } from '../http/rate-limit.ts';
import { flowPage, render } from '../http/render.ts';
import { presentationOf } from '../http/presentation.ts';
import { signedInSession } from '../oidc/internals.ts';
import { endSessionsOf } from '../oidc/sessions.ts';
import { grantsOf, sessionsOf } from '../oidc/session-details.ts';
import { revokeGrantArtifacts } from '../oidc/adapter.ts';
import { findClientMetadata } from '../windows/clients.ts';
import { ACCOUNT_CENTER_CLIENT_ID } from './client.ts';
import { recordEvent, type AuditEvent } from '../audit/trail.ts';
import { isUuid } from '../validation/uuid.ts';

// The account center (/account): who you are, whom you act for in this sign-in, your
// enterprises, registering a new one, and (for its legal representative and admins)
// adding and removing an enterprise's operators. The person is whoever is signed in at the
// provider in this browser.

const STATE_COOKIE = 'account_center_state';

type Data = Record<string, unknown>;

// A change made on the account page is confirmed on the page it returns to
// (/account?notice=…). Only these codes are known; anything else in the query shows nothing.
const NOTICES = {
  name: 'noticeNameSaved',
  contact: 'noticeContactChanged',
  password: 'passwordChanged',
  'mfa-on': 'noticeMfaOn',
  'mfa-off': 'noticeMfaOff',
  session: 'noticeSessionEnded',
  grant: 'noticeGrantRevoked',
  acting: 'noticeActingSwitched',
  enterprise: 'noticeEnterpriseRegistered',
} as const;
type Notice = keyof typeof NOTICES;
const noticeOf = (value: unknown) => (typeof value === 'string' && Object.hasOwn(NOTICES, value) ? NOTICES[value as Notice] : undefined);

// A site's scopes as words, without openid (every site has it); a scope of an API keeps its name.
const SCOPE_WORDS = new Set(['profile', 'email', 'phone', 'enterprise', 'offline_access']);
const scopeWords = (scope: string) =>
  scope
    .split(' ')
    .filter((s) => s && s !== 'openid')
    .map((s) => (SCOPE_WORDS.has(s) ? { key: `scopeWord_${s}` } : { code: s }));

export function accountCenterRoutes(providers: Providers, db: Db, issuer: string, security: SecuritySettings, masterKey: Buffer, messages: CodeMessages): Router {
  const router = new Router({ prefix: '/account' });
  const cookieOptions = { path: '/account', httpOnly: true, sameSite: 'lax' as const, signed: true, maxAge: 600_000 };

  const who = async (ctx: Context) => {
    const session = await signedInSession(providers.current, ctx);
    const account = session && (await findAccount(db, session.accountId));
    return session && account && account.status === 'active' ? { session, account } : undefined;
  };

  // Signing in here is an ordinary authorization request of the account center's client;
  // the provider's session it leaves behind is what these pages read.
  router.get('/login', (ctx) => {
    const state = crypto.randomBytes(24).toString('base64url');
    const challenge = crypto.createHash('sha256').update(crypto.randomBytes(32).toString('base64url')).digest('base64url');
    ctx.cookies.set(STATE_COOKIE, state, cookieOptions);
    const params = new URLSearchParams({
      client_id: ACCOUNT_CENTER_CLIENT_ID,
      response_type: 'code',
      scope: 'openid',
      redirect_uri: `${issuer}/account/callback`,
      state,
      code_challenge: challenge,
      code_challenge_method: 'S256',
    });
    ctx.redirect(`/auth?${params}`);
  });

  router.get('/callback', (ctx) => {
    const expected = ctx.cookies.get(STATE_COOKIE, { signed: true });
    ctx.cookies.set(STATE_COOKIE, null, cookieOptions);
    const state = typeof ctx.query.state === 'string' ? ctx.query.state : '';
    if (!expected || !constantTimeEqual(expected, state) || ctx.query.error) {
      return render(ctx, 'error', { message: 'errorGeneric', code: typeof ctx.query.error === 'string' ? ctx.query.error : 'invalid_state' }, 400);
    }
    ctx.redirect('/account');
  });

  const clientName = async (clientId: string) => (await findClientMetadata(db, clientId))?.client_name ?? clientId;

  // Everything below belongs to whoever is signed in; anyone else is sent to sign in.
  router.use(async (ctx, next) => {
    const me = await who(ctx);
    if (!me) return ctx.redirect('/account/login');
    ctx.state.me = me;
    // A page answering a post switches language on the account page.
    flowPage(ctx, '/account');
    await next();
  });
  type Me = NonNullable<Awaited<ReturnType<typeof who>>>;
  const meOf = (ctx: Context) => ctx.state.me as Me;
  const backWith = (ctx: Context, notice: Notice) => {
    ctx.status = 303;
    ctx.redirect(`/account?notice=${notice}`);
  };
  // What a person does to their own account goes on record with the change (pass the
  // change's transaction).
  const record = (trx: Db, ctx: Context, event: string, rest: Omit<AuditEvent, 'actor' | 'event' | 'outcome'> = {}) => {
    const me = meOf(ctx);
    return recordEvent(trx, { actor: { type: 'account', id: me.account.id }, ip: ctx.ip, event, outcome: 'success', target: `account:${me.account.id}`, ...rest });
  };
  // The current password, typed again for a sensitive change; failures count toward the lockout.
  const passwordConfirmed = async (ctx: Context, me: Me) => {
    const check = await signInWithPassword(db, me.account.username, field(ctx, 'password').slice(0, 1024), { lockout: security.lockout, passwords: security.passwords });
    return check.outcome === 'signed-in' && check.account.id === me.account.id;
  };

  const showAccount = async (ctx: Context, extra: Data = {}, status = 200) => {
    const me = meOf(ctx);
    const memberships = await membershipsOf(db, me.account.id);
    const choice = await currentChoice(db, me.session.uid);
    // With no choice made, windows get no enterprise (the person acts as themselves),
    // except an only membership, which a window's sign-in chooses for them.
    const chosen = choice !== undefined ? (choice ?? '') : memberships.length === 1 ? memberships[0]!.enterprise.id : '';
    const sessions = await Promise.all(
      (await sessionsOf(db, me.account.id)).map(async (s) => ({
        ...s,
        current: s.sessionUid === me.session.uid,
        windows: await Promise.all(s.clientIds.filter((id) => id !== ACCOUNT_CENTER_CLIENT_ID).map(clientName)),
      })),
    );
    const grants = await Promise.all(
      (await grantsOf(db, me.account.id)).filter((g) => g.clientId !== ACCOUNT_CENTER_CLIENT_ID).map(async (g) => ({ ...g, name: await clientName(g.clientId), scopes: scopeWords(g.scope) })),
    );
    render(ctx, 'account', {
      csrf: csrfToken(ctx),
      account: { ...me.account, phone: me.account.phone && maskPhone(me.account.phone) },
      memberships,
      chosen,
      sessions,
      grants,
      mfa: await hasTotp(db, me.account.id),
      notice: noticeOf(ctx.query.notice),
      ...extra,
    }, status);
  };

  router.post('/profile', form, async (ctx) => {
    if (rejectForgery(ctx)) return;
    const me = meOf(ctx);
    try {
      const name = field(ctx, 'name').slice(0, 200);
      await db.transaction(async (trx) => {
        await setDisplayName(trx, me.account.id, name);
        await record(trx, ctx, 'account.changed', { before: { displayName: me.account.displayName }, after: { displayName: name.trim() } });
      });
    } catch (err) {
      if (err instanceof InputError) return showAccount(ctx, { error: describeIssue(err, langOf(ctx)) }, 400);
      throw err;
    }
    backWith(ctx, 'name');
  });

  // A new password signs out every other session of the account (its windows are told).
  router.post('/password', form, async (ctx) => {
    if (rejectForgery(ctx)) return;
    const me = meOf(ctx);
    const next = field(ctx, 'new_password').slice(0, 1024);
    if (!(await passwordConfirmed(ctx, me))) return showAccount(ctx, { error: 'badPassword' }, 401);
    if (next !== field(ctx, 'confirm_password')) return showAccount(ctx, { error: 'passwordsDiffer' }, 400);
    try {
      await db.transaction(async (trx) => {
        await changePassword(trx, me.account.id, next, security.passwords);
        await record(trx, ctx, 'password.changed');
      });
    } catch (err) {
      if (err instanceof InputError) return showAccount(ctx, { error: describeIssue(err, langOf(ctx)) }, 400);
      throw err;
    }
    await endSessionsOf(providers.current, db, me.account.id, { everything: false, except: me.session.uid });
    backWith(ctx, 'password');
  });

  // A new phone number or email address (or the current one, to prove it), confirmed
  // with a code sent to it. One that another account uses gets no code, and the page
  // looks the same.
  const showContactCode = (ctx: Context, contact: string, error?: string, status = 200, seconds?: number) =>
    render(ctx, 'contact-verify', { csrf: csrfToken(ctx), contact, error, seconds }, status);

  router.post('/contact/code', rateLimit(db, 'code', security.codeRateLimit), form, async (ctx) => {
    if (rejectForgery(ctx)) return;
    const me = meOf(ctx);
    const contact = parseContact(field(ctx, 'contact').slice(0, 254));
    if (!contact) return showAccount(ctx, { error: 'badContact' }, 400);
    if (!messages.sender.channels.has(contact.channel)) return showAccount(ctx, { error: 'channelUnavailable' }, 400);
    const wait = await sendCode(ctx, db, messages, 'contact', contact, (code, holder) =>
      holder && holder.id !== me.account.id ? undefined : { subject: '统一身份认证验证码', body: `您正在更换账号的${contact.channel === 'sms' ? '手机号' : '电子邮箱'}，验证码是 ${code}，10 分钟内有效。` },
    );
    if (wait) return showContactCode(ctx, contact.destination, 'resendTooSoon', 429, wait);
    showContactCode(ctx, contact.destination);
  });

  router.post('/contact', rateLimit(db, 'register', security.registerRateLimit), form, async (ctx) => {
    if (rejectForgery(ctx)) return;
    const me = meOf(ctx);
    const contact = parseContact(field(ctx, 'contact'));
    if (!contact) return showAccount(ctx, { error: 'badContact' }, 400);
    try {
      const outcome = await db.transaction(async (trx) => {
        if (!(await useCode(trx, messages.codeKey, 'contact', contact.destination, field(ctx, 'code').slice(0, 12)))) return 'bad-code';
        await setContact(trx, me.account.id, contact);
        const shown = (c: { channel: string; destination: string | null }) => ({ [c.channel === 'sms' ? 'phone' : 'email']: c.destination && (c.channel === 'sms' ? maskPhone(c.destination) : c.destination) });
        const before = contact.channel === 'sms' ? me.account.phone : me.account.email;
        await record(trx, ctx, 'account.changed', { before: shown({ channel: contact.channel, destination: before }), after: shown(contact) });
        return 'changed';
      });
      if (outcome === 'bad-code') return showContactCode(ctx, contact.destination, 'badCode', 400);
    } catch (err) {
      if (err instanceof InputError) return showContactCode(ctx, contact.destination, describeIssue(err, langOf(ctx)), 400);
      throw err;
    }
    backWith(ctx, 'contact');
  });

  // Two-step verification: enrol an authenticator (shown as a QR code), or remove it;
  // both need the current password, so a borrowed session cannot change the factor.
  const showEnrolment = async (ctx: Context, sealed?: string, error?: string, status = 200) => {
    const me = meOf(ctx);
    flowPage(ctx, '/account/mfa');
    render(ctx, 'mfa-enrol', { csrf: csrfToken(ctx), ...(await startEnrolment(masterKey, me.account, sealed, presentationOf(ctx).branding.platformName['zh-CN'])), error }, status);
  };

  // One authenticator at a time: a new one replaces the old only after it is removed.
  router.get('/mfa', async (ctx) => ((await hasTotp(db, meOf(ctx).account.id)) ? showAccount(ctx, { error: 'mfaAlreadyOn' }, 409) : showEnrolment(ctx)));

  router.post('/mfa', form, async (ctx) => {
    if (rejectForgery(ctx)) return;
    const me = meOf(ctx);
    if (!(await passwordConfirmed(ctx, me))) return showEnrolment(ctx, field(ctx, 'sealed'), 'badPassword', 401);
    try {
      const codes = await db.transaction(async (trx) => {
        const made = await confirmEnrolment(trx, masterKey, me.account.id, field(ctx, 'sealed'), field(ctx, 'code').slice(0, 12));
        await record(trx, ctx, 'mfa.enrolled');
        return made;
      });
      render(ctx, 'recovery-codes', { codes });
    } catch (err) {
      if (err instanceof ConflictError) return showAccount(ctx, { error: 'mfaAlreadyOn' }, 409);
      if (err instanceof InputError) return showEnrolment(ctx, field(ctx, 'sealed'), 'badOtp', 400);
      throw err;
    }
  });

  // Removing the second factor needs the current password.
  router.post('/mfa/remove', form, async (ctx) => {
    if (rejectForgery(ctx)) return;
    const me = meOf(ctx);
    if (!(await passwordConfirmed(ctx, me))) return showAccount(ctx, { error: 'badPassword' }, 401);
    await db.transaction(async (trx) => {
      await removeTotp(trx, me.account.id);
      await record(trx, ctx, 'mfa.removed');
    });
    backWith(ctx, 'mfa-off');
  });

  // Signing a session out tells every window it touched (back-channel logout).
  router.post('/sessions/:uid/end', form, async (ctx) => {
    if (rejectForgery(ctx)) return;
    const me = meOf(ctx);
    const uid = opaqueId('session').safeParse(ctx.params.uid);
    if (!uid.success) return ctx.throw(404);
    const ended = await endSessionsOf(providers.current, db, me.account.id, { everything: false, only: uid.data });
    await record(db, ctx, 'sign_out', { reason: 'one session, from the account center', after: ended });
    backWith(ctx, 'session');
  });

  router.post('/sessions/end-all', form, async (ctx) => {
    if (rejectForgery(ctx)) return;
    const me = meOf(ctx);
    const ended = await endSessionsOf(providers.current, db, me.account.id, { everything: false });
    await record(db, ctx, 'sign_out', { reason: 'every session, from the account center', after: ended });
    ctx.status = 303;
    ctx.redirect('/');
  });

  // Revoking what a site was granted: its tokens stop working, refresh tokens included.
  router.post('/grants/:id/revoke', form, async (ctx) => {
    if (rejectForgery(ctx)) return;
    const me = meOf(ctx);
    const grant = (await grantsOf(db, me.account.id)).find((g) => g.grantId === ctx.params.id);
    if (!grant) return ctx.throw(404);
    await db.transaction(async (trx) => {
      await revokeGrantArtifacts(trx, grant.grantId);
      const windowId = (await findClientMetadata(trx, grant.clientId))?.window_id ?? null;
      await record(trx, ctx, 'token.revoked', { target: `client:${grant.clientId}`, windowId, reason: 'the person revoked the site’s access', after: { grantId: grant.grantId } });
    });
    backWith(ctx, 'grant');
  });

  router.get('/', (ctx) => showAccount(ctx));

  // Whom this sign-in session acts for; every window gets it at its next sign-in or userinfo call.
  router.post('/acting', form, async (ctx) => {
    if (rejectForgery(ctx)) return;
    const me = meOf(ctx);
    try {
      await chooseActingEnterprise(db, { sessionUid: me.session.uid, accountId: me.account.id, enterpriseId: field(ctx, 'enterprise') || null });
    } catch (err) {
      if (err instanceof InputError) return showAccount(ctx, { error: 'notAMember' }, 400);
      throw err;
    }
    backWith(ctx, 'acting');
  });

  const showNewEnterprise = async (ctx: Context, values: Data = {}, error?: string, status = 200) => {
    flowPage(ctx, '/account/enterprises/new');
    render(ctx, 'enterprise-new', { csrf: csrfToken(ctx), types: ENTERPRISE_TYPES, values, error }, status);
  };

  router.get('/enterprises/new', (ctx) => showNewEnterprise(ctx));

  // A person registers an enterprise and becomes its legal representative; it stays
  // pending until an administrator verifies it.
  router.post('/enterprises', form, async (ctx) => {
    if (rejectForgery(ctx)) return;
    const me = meOf(ctx);
    const values = { uscc: field(ctx, 'uscc'), name: field(ctx, 'name'), type: field(ctx, 'type'), region: field(ctx, 'region'), industry: field(ctx, 'industry') };
    try {
      await db.transaction(async (trx) => {
        const enterprise = await createEnterprise(trx, {
          ...(values.uscc && { uscc: values.uscc }),
          name: values.name,
          type: values.type as (typeof ENTERPRISE_TYPES)[number],
          region: values.region,
          ...(values.industry && { industry: values.industry }),
        });
        await addMember(trx, { enterpriseId: enterprise.id, accountId: me.account.id, role: 'legal_rep' });
        await record(trx, ctx, 'enterprise.created', { enterpriseId: enterprise.id, target: `enterprise:${enterprise.id}`, after: enterprise });
        await record(trx, ctx, 'membership.added', { enterpriseId: enterprise.id, target: `enterprise:${enterprise.id}`, after: { accountId: me.account.id, role: 'legal_rep' } });
      });
    } catch (err) {
      if (err instanceof InputError) return showNewEnterprise(ctx, values, describeIssue(err, langOf(ctx)), 400);
      throw err;
    }
    backWith(ctx, 'enterprise');
  });

  // The enterprise's members, for those who manage its operators; to anyone else the
  // page does not exist.
  const managed = async (ctx: Context) => {
    const me = meOf(ctx);
    const id = String(ctx.params.id);
    const enterprise = isUuid(id) ? await findEnterprise(db, id) : undefined;
    if (!enterprise || !managesOperators(await roleIn(db, enterprise.id, me.account.id))) return ctx.throw(404);
    flowPage(ctx, `/account/enterprises/${enterprise.id}`);
    return { me, enterprise };
  };
  const showMembers = async (ctx: Context, extra: Data = {}, status = 200) => {
    const found = await managed(ctx);
    if (!found) return;
    const members = await membersOf(db, found.enterprise.id);
    const accounts = new Map((await findAccounts(db, members.map((m) => m.accountId))).map((a) => [a.id, a]));
    render(ctx, 'enterprise-members', {
      csrf: csrfToken(ctx),
      enterprise: found.enterprise,
      members: members.map((m) => ({ ...m, name: accounts.get(m.accountId)?.displayName, username: accounts.get(m.accountId)?.username })),
      ...extra,
    }, status);
  };

  router.get('/enterprises/:id', (ctx) => showMembers(ctx));

  router.post('/enterprises/:id/operators', form, async (ctx) => {
    if (rejectForgery(ctx)) return;
    const found = await managed(ctx);
    if (!found) return;
    const identifier = identifierSchema.safeParse(field(ctx, 'identifier'));
    if (!identifier.success) return showMembers(ctx, { error: describeIssue({ ...issuesOf(identifier.error)[0]!, field: 'account' }, langOf(ctx)), identifier: field(ctx, 'identifier') }, 400);
    const person = await findAccountByIdentifier(db, identifier.data);
    if (!person || person.status !== 'active') return showMembers(ctx, { error: 'noSuchAccount', identifier: field(ctx, 'identifier') }, 400);
    try {
      await db.transaction(async (trx) => {
        await addMember(trx, { enterpriseId: found.enterprise.id, accountId: person.id, role: 'operator' });
        await record(trx, ctx, 'membership.added', { enterpriseId: found.enterprise.id, target: `enterprise:${found.enterprise.id}`, after: { accountId: person.id, role: 'operator' } });
      });
    } catch (err) {
      if (err instanceof InputError) return showMembers(ctx, { error: 'alreadyMember', identifier: field(ctx, 'identifier') }, 400);
      throw err;
    }
    ctx.status = 303;
    ctx.redirect(`/account/enterprises/${found.enterprise.id}`);
  });

  // Only operators are removed here; the legal representative and admins are changed by administrators.
  router.post('/enterprises/:id/operators/:accountId/remove', form, async (ctx) => {
    if (rejectForgery(ctx)) return;
    const found = await managed(ctx);
    if (!found) return;
    const target = String(ctx.params.accountId);
    if (!isUuid(target) || (await roleIn(db, found.enterprise.id, target)) !== 'operator') return showMembers(ctx, { error: 'notAnOperator' }, 400);
    await db.transaction(async (trx) => {
      await removeMember(trx, found.enterprise.id, target);
      await record(trx, ctx, 'membership.removed', { enterpriseId: found.enterprise.id, target: `enterprise:${found.enterprise.id}`, before: { accountId: target, role: 'operator' } });
    });
    ctx.status = 303;
    ctx.redirect(`/account/enterprises/${found.enterprise.id}`);
  });

  return router;
}
