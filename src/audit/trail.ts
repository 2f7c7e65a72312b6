import { z } from 'zod';
import type { Db } from '../db/connect.ts';

// The one way anything is put on record. Callers that change something pass the
// transaction of the change, so the change and its record land together or not at all.

export type Actor = { type: 'account'; id: string } | { type: 'client'; id: string } | { type: 'system'; id?: string };

export type AuditEvent = {
  actor: Actor;
  ip?: string;
  enterpriseId?: string;
  windowId?: number | null;
  event: string;
  target?: string;
  outcome: 'success' | 'failure';
  reason?: string;
  before?: unknown;
  after?: unknown;
};

export type AuditRecord = Omit<AuditEvent, 'actor'> & { id: number; at: Date; actor: Actor };

const json = (value: unknown) => (value === undefined ? null : JSON.stringify(value));

export async function recordEvent(db: Db, e: AuditEvent): Promise<void> {
  await db('audit_events').insert({
    actor_type: e.actor.type,
    actor_id: e.actor.id ?? null,
    actor_ip: e.ip ?? null,
    enterprise_id: e.enterpriseId ?? null,
    window_id: e.windowId ?? null,
    event: e.event,
    target: e.target ?? null,
    outcome: e.outcome,
    reason: e.reason ?? null,
    before: json(e.before),
    after: json(e.after),
  });
}

export const auditFilterSchema = z.strictObject({
  event: z.string().trim().min(1).max(100).optional(),
  actor: z.string().trim().min(1).max(100).optional(),
  windowId: z.coerce.number({ error: 'must be a window id (a number)' }).int().positive().optional(),
  outcome: z.enum(['success', 'failure'], { error: 'must be success or failure' }).optional(),
  limit: z.coerce.number({ error: 'must be a number' }).int().min(1, 'must be at least 1').max(500, 'must be at most 500').default(100),
});

// Newest first.
export async function listEvents(db: Db, filter: z.output<typeof auditFilterSchema>): Promise<AuditRecord[]> {
  const q = db('audit_events').orderBy('id', 'desc').limit(filter.limit);
  if (filter.event) q.where('event', filter.event);
  if (filter.actor) q.where('actor_id', filter.actor);
  if (filter.windowId) q.where('window_id', filter.windowId);
  if (filter.outcome) q.where('outcome', filter.outcome);
  const rows = await q;
  return rows.map((r) => ({
    id: Number(r.id),
    at: r.at,
    actor: (r.actor_id === null ? { type: r.actor_type } : { type: r.actor_type, id: r.actor_id }) as Actor,
    ...(r.actor_ip !== null && { ip: r.actor_ip }),
    ...(r.enterprise_id !== null && { enterpriseId: r.enterprise_id }),
    windowId: r.window_id,
    event: r.event,
    ...(r.target !== null && { target: r.target }),
    outcome: r.outcome,
    ...(r.reason !== null && { reason: r.reason }),
    ...(r.before !== null && { before: r.before }),
    ...(r.after !== null && { after: r.after }),
  }));
}
