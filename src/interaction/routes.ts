import Router from '@koa/router';
import type { Context } from 'koa';
import type { Db } from '../db/connect.ts';
import type { InteractionResults } from 'oidc-provider';
import type { Providers } from '../oidc/provider.ts';
import { changePassword, identifierSchema, signInWithPassword, type PasswordChange, type SignInResult } from '../accounts/accounts.ts';
import { beginAttempt, clearFailures, secondFactorLockKey } from '../accounts/lockout.ts';
import { confirmEnrolment, hasTotp, startEnrolment, verifySecondFactor } from '../accounts/totp.ts';
import { findAccount } from '../accounts/accounts.ts';
import { isAdministrator } from '../accounts/admin-roles.ts';
import { ACR, SCOPES } from '../oidc/claims.ts';
import type { SecuritySettings } from '../config.ts';
import { rateLimit } from '../http/rate-limit.ts';
import { chooseActingEnterprise, currentChoice } from '../enterprises/acting.ts';
import { membershipsOf } from '../enterprises/memberships.ts';
import { ConflictError, InputError, issuesOf } from '../errors.ts';
import { langOf } from '../http/i18n.ts';
import { describeIssue } from '../problems.ts';
import { csrfToken } from '../http/csrf.ts';
import { formBody as form, formField as field, rejectForgery, type FormValues } from '../http/forms.ts';
import { flowPage, render } from '../http/render.ts';
import { presentationOf } from '../http/presentation.ts';
import { findClientMetadata } from '../windows/clients.ts';
import { findWindow, type Window } from '../windows/windows.ts';
import type { MessageKey } from '../http/i18n.ts';
import { findLiveApi } from '../windows/apis.ts';
import { recordEvent, writeAlongside, type Alongside } from '../audit/trail.ts';
import { personActor } from '../audit/actors.ts';
import { countSignIn } from '../http/metrics.ts';

// The provider's user interface: login, the choice of whom to act for, consent
// (third-party clients only) and abort.
// The provider decides when an interaction is needed; these pages only answer it.


async function whoAsks(db: Db, clientId: unknown) {
  const client = typeof clientId === 'string' ? await findClientMetadata(db, clientId) : undefined;
  const window = client ? await findWindow(db, client.window_id) : undefined;
  return { clientName: client?.client_name, windowName: window?.name, asking: window && client && asking(window, client.client_name), thirdParty: client?.third_party ?? false };
}

// Where a sign-in comes from, as the sign-in pages say it. A window is named once, under
// the platform's name; a client named after its window (郑州市综合窗口平台（演示站点）)
// names it. The provincial platform's own clients (the account centre, the console) are
// no window: the page says what is being signed in to.
function asking(window: Window, clientName: string): { intro: MessageKey; name: string; underBrand: boolean } {
  if (window.kind === 'province') return { intro: 'signInTo', name: clientName, underBrand: false };
  const name = clientName.includes(window.name) ? clientName : `${window.name} · ${clientName}`;
  return { intro: window.kind === 'service' ? 'fromServiceOrganisation' : 'fromWindow', name, underBrand: true };
}

const windowOfClient = async (db: Db, clientId: unknown) => (typeof clientId === 'string' ? ((await findClientMetadata(db, clientId))?.window_id ?? null) : null);

type Data = Record<string, unknown>;

const minutesUntil = (until: Date) => Math.max(1, Math.ceil((until.getTime() - Date.now()) / 60_000));

export function interactionRoutes(providers: Providers, db: Db, security: SecuritySettings, masterKey: Buffer): Router {
  const router = new Router({ prefix: '/interaction/:uid' });

  // The window's ui_locales of this sign-in choose the pages' language (http/i18n.ts);
  // a page answering a post switches language on the interaction's own page, which shows
  // the step the sign-in is at.
  const details = async (ctx: Context) => {
    const interaction = await providers.current.interactionDetails(ctx.req, ctx.res);
    ctx.state.uiLocales = interaction.params.ui_locales;
    flowPage(ctx, `/interaction/${interaction.uid}`);
    return interaction;
  };
  const finish = async (ctx: Context, result: InteractionResults) => {
    const redirectTo = await providers.current.interactionResult(ctx.req, ctx.res, result, { mergeWithLastSubmission: false });
    ctx.status = 303;
    ctx.redirect(redirectTo);
  };

  // Every sign-in attempt goes on record before the person hears the outcome; if the
  // record cannot be written, the sign-in does not happen.
  // `clear`: the success's reset of the failure count (signInWithPassword), written with the record.
  const recordSignIn = async (ctx: Context, params: Data, r: { outcome: 'success' | 'failure'; accountId: string | undefined; reason?: string; acr?: string }, clear: Alongside[] = []) => {
    const windowId = await windowOfClient(db, params.client_id);
    const base = { actor: personActor(r.accountId), ip: ctx.ip, windowId, ...(r.accountId && { target: `account:${r.accountId}` }) };
    await recordEvent(db, { ...base, event: 'sign_in', outcome: r.outcome, ...(r.reason && { reason: r.reason }), after: { clientId: params.client_id, ...(r.acr && { acr: r.acr }) } }, clear);
    countSignIn(r.outcome === 'success' ? 'success' : r.reason === 'locked' || r.reason === 'mfa_failed' ? r.reason : 'failure');
  };
  const recordLock = async (ctx: Context, params: Data, accountId: string | undefined, until: Date) => {
    const windowId = await windowOfClient(db, params.client_id);
    await recordEvent(db, { actor: personActor(accountId), ip: ctx.ip, windowId, event: 'account.locked', outcome: 'success', ...(accountId && { target: `account:${accountId}` }), after: { until } });
  };
  // A refused password, told to the person as the login page says it.
  const refusedPassword = async (ctx: Context, params: Data, result: Exclude<SignInResult, { outcome: 'signed-in' }>) => {
    if (result.outcome === 'locked' && result.reason) await recordLock(ctx, params, result.accountId, result.until);
    await recordSignIn(ctx, params, { outcome: 'failure', accountId: result.accountId, reason: result.reason ?? 'locked' });
  };

  const showLogin = async (ctx: Context, uid: string, params: Data, extra: Data = {}, status = 200) => {
    render(ctx, 'login', { uid, csrf: csrfToken(ctx), ...(await whoAsks(db, params.client_id)), ...extra }, status);
  };

  // Records what the person allows; a first-party window gets it without asking.
  const grantConsent = async (ctx: Context, interaction: Awaited<ReturnType<typeof details>>) => {
    const { prompt, params, session, grantId } = interaction;
    if (prompt.name !== 'consent' || !session) return ctx.throw(400, 'this interaction does not expect a consent');
    const grant = grantId
      ? await providers.current.Grant.find(grantId)
      : new providers.current.Grant({ accountId: session.accountId, clientId: String(params.client_id) });
    if (!grant) return ctx.throw(400, 'the grant of this interaction no longer exists');
    const missing = prompt.details as { missingOIDCScope?: string[]; missingOIDCClaims?: string[]; missingResourceScopes?: Record<string, string[]> };
    if (missing.missingOIDCScope) grant.addOIDCScope(missing.missingOIDCScope.join(' '));
    if (missing.missingOIDCClaims) grant.addOIDCClaims(missing.missingOIDCClaims);
    for (const [indicator, scopes] of Object.entries(missing.missingResourceScopes ?? {})) grant.addResourceScope(indicator, scopes.join(' '));
    await finish(ctx, { consent: { grantId: await grant.save() } });
  };

  const showChooser = async (ctx: Context, interaction: Awaited<ReturnType<typeof details>>, extra: Data = {}, status = 200) => {
    const { uid, params, session } = interaction;
    if (!session) return ctx.throw(400, 'this interaction has no signed-in person');
    const memberships = await membershipsOf(db, session.accountId);
    // Preselect the session's choice ('' = themselves), or the only membership.
    const choice = await currentChoice(db, session.uid);
    const chosen = choice === undefined ? (memberships.length === 1 ? memberships[0]!.enterprise.id : undefined) : (choice ?? '');
    render(ctx, 'select-enterprise', { uid, csrf: csrfToken(ctx), memberships, chosen, ...(await whoAsks(db, params.client_id)), ...extra }, status);
  };

  router.get('/', async (ctx) => {
    const interaction = await details(ctx);
    const { uid, prompt, params } = interaction;
    const stepUp = prompt.reasons.includes('mfa_requested') || prompt.reasons.includes('administrator_mfa');
    if (prompt.name === 'login' && stepUp && interaction.session) {
      // Signed in with a password only, where a second factor is needed.
      const { accountId } = interaction.session;
      if (await hasTotp(db, accountId)) return showMfa(ctx, uid, accountId);
      // An administrator without one sets it up now; anyone else is told to.
      if (prompt.reasons.includes('administrator_mfa')) return showAdminEnrolment(ctx, uid, accountId);
      return render(ctx, 'error', { message: 'mfaNotEnrolled', code: 'mfa_required' }, 403);
    }
    if (prompt.name === 'login') {
      // A step after the password, shown again (in the other language, say).
      if (enrolledAccount(interaction)) return render(ctx, 'recovery-codes', { uid, csrf: csrfToken(ctx) });
      const waiting = pendingAccount(ctx, uid, 'mfa');
      if (waiting) return showMfa(ctx, uid, waiting);
      const enrolling = pendingAccount(ctx, uid, 'enrol');
      if (enrolling && (await mayEnrolHere(enrolling))) return showAdminEnrolment(ctx, uid, enrolling);
      return showLogin(ctx, uid, params, { identifier: typeof params.login_hint === 'string' ? params.login_hint : '' });
    }
    if (prompt.name === 'select_account') return showChooser(ctx, interaction);
    if (prompt.name === 'consent') {
      const asker = await whoAsks(db, params.client_id);
      if (!asker.thirdParty) return grantConsent(ctx, interaction);
      const scopes = String(params.scope ?? '').split(' ').filter((s) => s && s !== 'openid' && SCOPES.includes(s));
      // What it asks of the windows' APIs, each named as registered.
      const wanted = (prompt.details as { missingResourceScopes?: Record<string, string[]> }).missingResourceScopes ?? {};
      const apis = await Promise.all(Object.entries(wanted).map(async ([identifier, apiScopes]) => ({ identifier, name: (await findLiveApi(db, identifier))?.name ?? identifier, scopes: apiScopes })));
      return render(ctx, 'consent', { uid, csrf: csrfToken(ctx), ...asker, scopes, apis });
    }
    ctx.throw(400, `unsupported prompt ${prompt.name}`);
  });

  router.post('/login', rateLimit(db, 'sign-in', security.signInRateLimit), form, async (ctx) => {
    if (rejectForgery(ctx)) return;
    const { uid, prompt, params } = await details(ctx);
    if (prompt.name !== 'login') return ctx.throw(400, 'this interaction does not expect a sign-in');
    const identifier = field(ctx, 'identifier').slice(0, 254);
    const password = field(ctx, 'password').slice(0, 1024);
    if (!identifier || !password) return showLogin(ctx, uid, params, { identifier, error: 'missingFields' }, 400);
    const typed = identifierSchema.safeParse(identifier);
    if (!typed.success) return showLogin(ctx, uid, params, { identifier, error: describeIssue({ ...issuesOf(typed.error)[0]!, field: 'account' }, langOf(ctx)) }, 400);
    const result = await signInWithPassword(db, identifier, password, { lockout: security.lockout, passwords: security.passwords }, { clearWithRecord: true });
    if (result.outcome !== 'signed-in') await refusedPassword(ctx, params, result);
    if (result.outcome === 'locked') return showLogin(ctx, uid, params, { identifier, error: 'locked', minutes: minutesUntil(result.until) }, 401);
    if (result.outcome === 'failed') return showLogin(ctx, uid, params, { identifier, error: 'badCredentials' }, 401);
    if (result.passwordChange) {
      await writeAlongside(db, result.clear);
      return showPasswordChange(ctx, uid, identifier, { askCode: await hasTotp(db, result.account.id), reason: result.passwordChange });
    }
    await afterPassword(ctx, uid, params, result.account.id, result.clear);
  });

  // An expired password (the mlps profile), or a one-time password someone else handed
  // over (the administrators' bootstrap), is changed before the sign-in completes. The
  // form asks for the current password again, so no state is kept between the two posts.
  // An account with a second factor gives its code in the same form, and the password
  // changes only behind the second factor's gate: the expired password alone replaces
  // nothing. `askCode` only shows the field; whether a code is needed is decided from the
  // account once the password is right.
  type ChangeForm = { askCode: boolean; reason: PasswordChange; error?: string; minutes?: number };
  const showPasswordChange = (ctx: Context, uid: string, identifier: string, form: ChangeForm, status = 200) =>
    render(ctx, 'change-password', { uid, csrf: csrfToken(ctx), identifier, rule: `rule_${security.passwords.name}`, ...form }, status);
  // After a wrong password the form keeps the code field it was sent with: whether an
  // account has a second factor is told only to whoever knows its password.
  const postedCodeField = (ctx: Context) => Object.hasOwn((ctx.request.body as FormValues | undefined) ?? {}, 'code');
  // Likewise why the form was shown: told only to whoever knows the password.
  const postedReason = (ctx: Context): PasswordChange => (field(ctx, 'reason') === 'one_time' ? 'one_time' : 'expired');

  router.post('/password', rateLimit(db, 'sign-in', security.signInRateLimit), form, async (ctx) => {
    if (rejectForgery(ctx)) return;
    const { uid, prompt, params } = await details(ctx);
    if (prompt.name !== 'login') return ctx.throw(400, 'this interaction does not expect a sign-in');
    const identifier = field(ctx, 'identifier').slice(0, 254);
    const next = field(ctx, 'new_password').slice(0, 1024);
    const typed = identifierSchema.safeParse(identifier);
    if (!typed.success) return showPasswordChange(ctx, uid, identifier, { askCode: postedCodeField(ctx), reason: postedReason(ctx), error: describeIssue({ ...issuesOf(typed.error)[0]!, field: 'account' }, langOf(ctx)) }, 400);
    const result = await signInWithPassword(db, identifier, field(ctx, 'password').slice(0, 1024), { lockout: security.lockout, passwords: security.passwords });
    if (result.outcome !== 'signed-in') await refusedPassword(ctx, params, result);
    if (result.outcome === 'locked') return showLogin(ctx, uid, params, { identifier, error: 'locked', minutes: minutesUntil(result.until) }, 401);
    if (result.outcome === 'failed') return showPasswordChange(ctx, uid, identifier, { askCode: postedCodeField(ctx), reason: postedReason(ctx), error: 'badCredentials' }, 401);
    // This step exists only for an expired or one-time password; anyone else changes
    // theirs in the account center, signed in with every factor they have.
    const reason = result.passwordChange;
    if (!reason) return ctx.throw(400, 'this sign-in does not ask for a new password');
    const accountId = result.account.id;
    const askCode = await hasTotp(db, accountId);
    const again = (error: string, status: number, minutes?: number) => showPasswordChange(ctx, uid, identifier, { askCode, reason, error, minutes }, status);
    if (next !== field(ctx, 'confirm_password')) return again('passwordsDiffer', 400);
    const code = field(ctx, 'code').slice(0, 40);
    if (askCode && !code.trim()) return again('missingCode', 400);
    const change = async (trx: Db) => {
      await changePassword(trx, accountId, next, security.passwords);
      await recordEvent(trx, { actor: personActor(accountId), ip: ctx.ip, event: 'password.changed', target: `account:${accountId}`, outcome: 'success', reason });
    };
    let gate: Gate | undefined;
    try {
      if (askCode) gate = await throughSecondFactor(ctx, params, accountId, code, change);
      else await db.transaction(change);
    } catch (err) {
      if (err instanceof InputError) return again(describeIssue(err, langOf(ctx)), 400);
      throw err;
    }
    if (!gate) return afterPassword(ctx, uid, params, accountId);
    if (!gate.passed) return gate.lockedUntil ? again('mfaLocked', 401, minutesUntil(gate.lockedUntil)) : again('badOtp', 401);
    await signedInWithSecondFactor(ctx, uid, params, accountId, gate.factor);
  });

  // The second factor. Between the password and the next step, the browser holds a signed,
  // short-lived cookie naming this interaction, the account and which step it is at
  // (the code, or an administrator's first enrolment): no server state, so any node
  // can take the next post. A step accepts only its own cookie.
  const PENDING = 'mfa_pending';
  type Step = 'mfa' | 'enrol';
  const pendingOptions = (uid: string) => ({ signed: true, httpOnly: true, sameSite: 'lax' as const, path: `/interaction/${uid}`, maxAge: 300_000 });
  const setPending = (ctx: Context, uid: string, accountId: string, step: Step) =>
    ctx.cookies.set(PENDING, `${uid}.${accountId}.${step}.${Date.now() + 300_000}`, pendingOptions(uid));
  const pendingAccount = (ctx: Context, uid: string, step: Step): string | undefined => {
    const [forUid, accountId, atStep, until] = (ctx.cookies.get(PENDING, { signed: true }) ?? '').split('.');
    return forUid === uid && accountId && atStep === step && Number(until) > Date.now() ? accountId : undefined;
  };
  const showMfa = (ctx: Context, uid: string, accountId: string, message: { error?: string; minutes?: number } = {}, status = 200) => {
    setPending(ctx, uid, accountId, 'mfa');
    render(ctx, 'mfa', { uid, csrf: csrfToken(ctx), ...message }, status);
  };

  // The second factor's gate, for the code step and for the change of an expired password:
  // the attempt is counted on the factor's own key before the code is checked
  // (lockout.ts), a locked factor is refused without looking at the code, and only a right
  // code clears the count. `then` runs in the transaction that uses the code up, so when
  // it refuses (InputError) the code stays unused for the next try.
  type Gate = { passed: true; factor: 'otp' | 'recovery' } | { passed: false; lockedUntil: Date | undefined };
  const throughSecondFactor = async (ctx: Context, params: Data, accountId: string, code: string, then: (trx: Db) => Promise<void>): Promise<Gate> => {
    const key = secondFactorLockKey(accountId);
    const attempt = await beginAttempt(db, key, security.lockout);
    if (!attempt.admitted) {
      await recordSignIn(ctx, params, { outcome: 'failure', accountId, reason: 'locked' });
      return { passed: false, lockedUntil: attempt.lockedUntil };
    }
    let right = false;
    try {
      const factor = await db.transaction(async (trx) => {
        const used = await verifySecondFactor(trx, masterKey, accountId, code);
        right = used !== undefined;
        if (used) await then(trx);
        return used;
      });
      if (factor) return { passed: true, factor };
    } finally {
      if (right) await clearFailures(db, key);
    }
    if (attempt.locksAt) await recordLock(ctx, params, accountId, attempt.locksAt);
    await recordSignIn(ctx, params, { outcome: 'failure', accountId, reason: 'mfa_failed' });
    return { passed: false, lockedUntil: attempt.locksAt };
  };
  const signedInWithSecondFactor = async (ctx: Context, uid: string, params: Data, accountId: string, factor: 'otp' | 'recovery') => {
    ctx.cookies.set(PENDING, null, pendingOptions(uid));
    await recordSignIn(ctx, params, { outcome: 'success', accountId, acr: ACR.mfa });
    await finish(ctx, { login: { accountId, amr: factor === 'otp' ? ['pwd', 'otp', 'mfa'] : ['pwd', 'mfa'], acr: ACR.mfa, remember: true } });
  };
  // `clear`: the password's reset of the failure count, when not yet written: with the
  // record of the sign-in, or on its own before a next step.
  const afterPassword = async (ctx: Context, uid: string, params: Data, accountId: string, clear: Alongside[] = []) => {
    const nextStep = (await hasTotp(db, accountId)) ? showMfa : (await isAdministrator(db, accountId)) ? showAdminEnrolment : undefined;
    if (nextStep) {
      await writeAlongside(db, clear);
      return nextStep(ctx, uid, accountId);
    }
    await recordSignIn(ctx, params, { outcome: 'success', accountId, acr: ACR.password }, clear);
    await finish(ctx, { login: { accountId, amr: ['pwd'], acr: ACR.password, remember: true } });
  };

  // Enrolment inside the sign-in, only for an administrator who has no second factor
  // yet: anyone else adds or changes theirs in the account center, signed in with it.
  // The password was just checked (or is asked again on step-up), and the pending cookie
  // says for whom. The code that confirms the enrolment proves the authenticator is in
  // hand, so it is this sign-in's second factor: the interaction itself (server side, never
  // a form field) keeps that it was given, for whom and until when, while the person
  // saves the recovery codes. The code stays used, so it cannot be given again.
  const ENROLLED = 'secondFactorEnrolled';
  type Enrolled = { accountId: string; until: number };
  type Interaction = Awaited<ReturnType<typeof details>>;
  const enrolledAccount = (interaction: Interaction): string | undefined => {
    const kept = (interaction.result as Record<string, Enrolled | undefined> | undefined)?.[ENROLLED];
    return kept && typeof kept.accountId === 'string' && kept.until > Date.now() ? kept.accountId : undefined;
  };
  const mayEnrolHere = async (accountId: string) => (await isAdministrator(db, accountId)) && !(await hasTotp(db, accountId));
  const showAdminEnrolment = async (ctx: Context, uid: string, accountId: string, sealed?: string, error?: string, status = 200) => {
    const account = await findAccount(db, accountId);
    if (!account) return ctx.throw(400, 'the account is gone');
    setPending(ctx, uid, accountId, 'enrol');
    render(ctx, 'mfa-enrol', { csrf: csrfToken(ctx), action: `/interaction/${uid}/mfa-enrol`, adminNotice: true, ...(await startEnrolment(masterKey, account, sealed, presentationOf(ctx).branding.platformName['zh-CN'])), error }, status);
  };

  router.post('/mfa-enrol', rateLimit(db, 'sign-in', security.signInRateLimit), form, async (ctx) => {
    if (rejectForgery(ctx)) return;
    const interaction = await details(ctx);
    const { uid, prompt, params } = interaction;
    if (prompt.name !== 'login') return ctx.throw(400, 'this interaction does not expect a sign-in');
    const accountId = pendingAccount(ctx, uid, 'enrol');
    const account = accountId ? await findAccount(db, accountId) : undefined;
    if (!account) return showLogin(ctx, uid, params, { error: 'mfaExpired' }, 400);
    if (!(await mayEnrolHere(account.id))) return ctx.throw(403, 'this sign-in does not set up a second factor');
    const check = await signInWithPassword(db, account.username, field(ctx, 'password').slice(0, 1024), { lockout: security.lockout, passwords: security.passwords });
    if (check.outcome !== 'signed-in' || check.account.id !== account.id) return showAdminEnrolment(ctx, uid, account.id, field(ctx, 'sealed'), 'badPassword', 401);
    try {
      const codes = await db.transaction(async (trx) => {
        const made = await confirmEnrolment(trx, masterKey, account.id, field(ctx, 'sealed'), field(ctx, 'code').slice(0, 12));
        await recordEvent(trx, { actor: personActor(account.id), ip: ctx.ip, event: 'mfa.enrolled', target: `account:${account.id}`, outcome: 'success', reason: 'administrator, during sign-in' });
        return made;
      });
      interaction.result = { [ENROLLED]: { accountId: account.id, until: Date.now() + 300_000 } satisfies Enrolled };
      await interaction.persist();
      ctx.cookies.set(PENDING, null, pendingOptions(uid));
      render(ctx, 'recovery-codes', { codes, uid, csrf: csrfToken(ctx) });
    } catch (err) {
      // Another sign-in of the same administrator enrolled first.
      if (err instanceof ConflictError) return ctx.throw(403, 'this sign-in does not set up a second factor');
      if (err instanceof InputError) return showAdminEnrolment(ctx, uid, account.id, field(ctx, 'sealed'), 'badOtp', 400);
      throw err;
    }
  });

  // The button under the recovery codes: the sign-in completes with the enrolment's code.
  router.post('/enrolled', form, async (ctx) => {
    if (rejectForgery(ctx)) return;
    const interaction = await details(ctx);
    const { uid, prompt, params } = interaction;
    if (prompt.name !== 'login') return ctx.throw(400, 'this interaction does not expect a sign-in');
    const accountId = enrolledAccount(interaction);
    if (!accountId || !(await hasTotp(db, accountId))) return showLogin(ctx, uid, params, { error: 'mfaExpired' }, 400);
    await signedInWithSecondFactor(ctx, uid, params, accountId, 'otp');
  });

  router.post('/mfa', rateLimit(db, 'sign-in', security.signInRateLimit), form, async (ctx) => {
    if (rejectForgery(ctx)) return;
    const { uid, prompt, params } = await details(ctx);
    if (prompt.name !== 'login') return ctx.throw(400, 'this interaction does not expect a sign-in');
    const accountId = pendingAccount(ctx, uid, 'mfa');
    if (!accountId) return showLogin(ctx, uid, params, { error: 'mfaExpired' }, 400);
    const gate = await throughSecondFactor(ctx, params, accountId, field(ctx, 'code').slice(0, 40), async () => {});
    if (!gate.passed) return showMfa(ctx, uid, accountId, gate.lockedUntil ? { error: 'mfaLocked', minutes: minutesUntil(gate.lockedUntil) } : { error: 'badOtp' }, 401);
    await signedInWithSecondFactor(ctx, uid, params, accountId, gate.factor);
  });

  // Whom the person acts for in this session: an enterprise they belong to, or "" for themselves.
  router.post('/select', form, async (ctx) => {
    if (rejectForgery(ctx)) return;
    const interaction = await details(ctx);
    const { prompt, session } = interaction;
    if (prompt.name !== 'select_account' || !session) return ctx.throw(400, 'this interaction does not expect a choice of enterprise');
    const enterpriseId = field(ctx, 'enterprise') || null;
    try {
      await chooseActingEnterprise(db, { sessionUid: session.uid, accountId: session.accountId, enterpriseId });
    } catch (err) {
      if (err instanceof InputError) return showChooser(ctx, interaction, { error: 'notAMember' }, 400);
      throw err;
    }
    await finish(ctx, { select_account: {} });
  });

  router.post('/confirm', form, async (ctx) => {
    if (rejectForgery(ctx)) return;
    await grantConsent(ctx, await details(ctx));
  });

  router.post('/abort', form, async (ctx) => {
    if (rejectForgery(ctx)) return;
    await details(ctx);
    await finish(ctx, { error: 'access_denied', error_description: 'the person cancelled the sign-in' });
  });

  return router;
}
