import type { Db } from '../../db/connect.ts';
import { findAccounts } from '../../accounts/accounts.ts';
import type { AuditRecord } from '../../audit/trail.ts';
import { translator, type Lang } from '../../http/i18n.ts';
import { describeIssue, isProblemCode, type Params, type Problem } from '../../problems.ts';
import { findClients } from '../../windows/clients.ts';
import { listWindows } from '../../windows/windows.ts';
import { OPERATIONS } from '../api/operations.ts';
import { adminMessages } from './messages.ts';

// The audit trail as people read it (/admin/audit): names for the ids on record and
// labels for the codes. The records themselves, and their export, keep the codes.

// Every event the trail records besides `admin.<operation>` (README, "Audit trail").
export const RECORDED_EVENTS = [
  'sign_in',
  'account.locked',
  'authorization',
  'sign_out',
  'session.expired',
  'backchannel_logout',
  'client_auth',
  'client_auth.limited',
  'token.issued',
  'token.revoked',
  'account.created',
  'account.changed',
  'password.changed',
  'password.reset',
  'mfa.enrolled',
  'mfa.removed',
  'enterprise.created',
  'enterprise.imported',
  'membership.added',
  'membership.removed',
  'audit.export',
  'audit.purge',
] as const;

// The fixed reasons the code records, by the message that reads them.
const REASONS = new Map<string, string>([
  ['unknown_account', 'auditReason_unknown_account'],
  ['wrong_password', 'auditReason_wrong_password'],
  ['account_disabled', 'auditReason_account_disabled'],
  ['locked', 'auditReason_locked'],
  ['mfa_failed', 'auditReason_mfa_failed'],
  ['expired', 'auditReason_expired'],
  ['one_time', 'auditReason_one_time'],
  ['bootstrap', 'auditReason_bootstrap'],
  ['registration', 'auditReason_registration'],
  ['code sent by sms', 'auditReason_code_sms'],
  ['code sent by email', 'auditReason_code_email'],
  ['one session, from the account center', 'auditReason_one_session'],
  ['every session, from the account center', 'auditReason_every_session'],
  ['the person revoked the site’s access', 'auditReason_site_access_revoked'],
  ['administrator, during sign-in', 'auditReason_mfa_by_administrator'],
  ['invalid_client', 'auditReason_invalid_client'],
  ['limited', 'auditReason_limited'],
  ['per address', 'auditReason_per_address'],
  ['per client', 'auditReason_per_client'],
  ['forbidden: role', 'auditReason_forbidden_role'],
]);

const known = (lang: Lang, key: string) => Object.hasOwn(adminMessages[lang], key);

// A label for every event on record; one this page does not know yet shows its code.
export function eventLabel(lang: Lang, event: string): string {
  const t = translator(lang);
  const op = event.startsWith('admin.') ? `auditOp_${event.slice('admin.'.length)}` : undefined;
  if (op && known(lang, op)) return t('auditAdminEvent', { action: t(op) });
  return known(lang, `auditEvent_${event}`) ? t(`auditEvent_${event}`) : event;
}

// The problem a refusal kept (src/admin/api/invoke.ts), when it is one of the catalogue's.
function keptProblem(after: unknown): (Problem & { field: string }) | undefined {
  const problem = (after as { problem?: { field?: unknown; code?: unknown; params?: unknown } } | null)?.problem;
  if (!problem || typeof problem.field !== 'string' || !isProblemCode(problem.code)) return undefined;
  const params = typeof problem.params === 'object' && problem.params !== null ? (problem.params as Params) : {};
  return { field: problem.field, code: problem.code, params };
}

// Fixed reasons read as words; an administrator's refusal names what was refused (in the
// reader's language when the record kept its problem, else as recorded); anything else
// (a delivery's error) is shown as recorded.
export function reasonLabel(lang: Lang, reason: string, after?: unknown): string {
  const t = translator(lang);
  const fixed = REASONS.get(reason);
  if (fixed) return t(fixed);
  const refusal = /^(refused|forbidden): (.+)$/s.exec(reason);
  const problem = keptProblem(after);
  if (refusal) return t(refusal[1] === 'refused' ? 'auditRefused' : 'auditForbidden', { detail: problem ? describeIssue(problem, lang) : refusal[2]! });
  return reason;
}

// The event types of the filter, as { value, label }, in the order of the README's table.
export function eventChoices(lang: Lang): Array<{ value: string; label: string }> {
  return [...RECORDED_EVENTS, ...OPERATIONS.map((op) => `admin.${op.id}`)].map((value) => ({ value, label: eventLabel(lang, value) }));
}

// Something on record as a person reads it: a name, what tells it apart, and its id.
export type Named = { name: string; detail?: string; id?: string };
export type AuditRow = {
  id: number;
  at: Date;
  actor: Named;
  actorId?: string;
  ip?: string;
  event: { label: string; code: string };
  target?: Named;
  window?: Named;
  outcome: { label: string; code: string };
  reason?: string;
};

const ACCOUNT_TARGET = /^account:(.+)$/;
const CLIENT_TARGET = /^client:(.+)$/;

// One query per kind of name for the whole page (accounts, clients, windows), through
// the modules that own them.
export async function auditRows(db: Db, events: AuditRecord[], lang: Lang): Promise<{ rows: AuditRow[]; windows: Array<{ id: number; name: string }> }> {
  const t = translator(lang);
  const accountIds = new Set<string>();
  const clientIds = new Set<string>();
  for (const e of events) {
    if (e.actor.type === 'account') accountIds.add(e.actor.id);
    if (e.actor.type === 'client') clientIds.add(e.actor.id);
    const account = e.target && ACCOUNT_TARGET.exec(e.target);
    if (account) accountIds.add(account[1]!);
    const client = e.target && CLIENT_TARGET.exec(e.target);
    if (client) clientIds.add(client[1]!);
  }
  const [accounts, clients, windowList] = await Promise.all([findAccounts(db, [...accountIds]), findClients(db, [...clientIds]), listWindows(db)]);
  const accountById = new Map(accounts.map((a) => [a.id, a]));
  const clientById = new Map(clients.map((c) => [c.clientId, c]));
  const windowById = new Map(windowList.map((w) => [w.id, w]));

  const windowNamed = (id: number): Named => ({ name: windowById.get(id)?.name ?? t('auditGoneWindow'), id: `#${id}` });
  const accountNamed = (id: string): Named => {
    const a = accountById.get(id);
    return a ? { name: a.username, detail: a.displayName, id } : { name: t('auditGoneAccount'), id };
  };
  const clientNamed = (id: string): Named => {
    const c = clientById.get(id);
    return c ? { name: c.name, detail: windowNamed(c.windowId).name, id } : { name: t('auditGoneClient'), id };
  };
  const actorNamed = (actor: AuditRecord['actor']): Named => {
    if (actor.type === 'account') return accountNamed(actor.id);
    if (actor.type === 'client') return clientNamed(actor.id);
    if (actor.id === 'anonymous') return { name: t('auditAnonymous') };
    if (actor.id?.startsWith('cli:')) return { name: t('auditCli', { user: actor.id.slice('cli:'.length) }), id: actor.id };
    return { name: t('auditSystem'), ...(actor.id && { id: actor.id }) };
  };
  const targetNamed = (target: string): Named => {
    const account = ACCOUNT_TARGET.exec(target);
    if (account) return accountNamed(account[1]!);
    const client = CLIENT_TARGET.exec(target);
    if (client) return clientNamed(client[1]!);
    return { name: target };
  };

  const rows = events.map((e) => ({
    id: e.id,
    at: e.at,
    actor: actorNamed(e.actor),
    ...(e.actor.id !== undefined && { actorId: e.actor.id }),
    ...(e.ip !== undefined && { ip: e.ip }),
    event: { label: eventLabel(lang, e.event), code: e.event },
    ...(e.target !== undefined && { target: targetNamed(e.target) }),
    ...(e.windowId != null && { window: windowNamed(e.windowId) }),
    outcome: { label: t(`auditOutcome_${e.outcome}`), code: e.outcome },
    ...(e.reason !== undefined && { reason: reasonLabel(lang, e.reason, e.after) }),
  }));
  return { rows, windows: windowList.map((w) => ({ id: w.id, name: w.name })) };
}
