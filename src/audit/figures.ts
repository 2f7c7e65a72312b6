import { z } from 'zod';
import type { Db } from '../db/connect.ts';
import { ACR } from '../oidc/claims.ts';
import { problemCode } from '../problems.ts';

// Each window's service figures, counted from the audit trail: a person served is an
// authorization at one of the window's clients (with a password or by single sign-on),
// an enterprise served is one a person acted for there. The seed's yearly target is
// 1,000 SMEs served per window.

export const YEARLY_TARGET = 1000;

export const yearSchema = z.coerce
  .number({ error: problemCode('year') })
  .int(problemCode('year'))
  .min(2014, problemCode('year_min'))
  .max(2100, problemCode('year_max'));

export type WindowFigures = {
  windowId: number;
  year: number;
  signIns: number;
  persons: number;
  enterprises: number;
  targetProgress: number; // enterprises / YEARLY_TARGET
  mfaShare: number | null; // of sign-ins, null when there were none
  failures: number;
  lockouts: number;
};

export type DailySignIns = Array<{ day: string; signIns: number }>;

// Years and days are the province's: China Standard Time, UTC+8 all year (no daylight saving).
const CST_MS = 8 * 3600_000;
// The year it is now in the province.
export const currentYear = (): number => new Date(Date.now() + CST_MS).getUTCFullYear();
const yearRange = (year: number) => [new Date(Date.UTC(year, 0, 1) - CST_MS), new Date(Date.UTC(year + 1, 0, 1) - CST_MS)] as const;

// One row per window with any activity in the year (all windows, or the one asked for),
// and one with zeros for each window in `shown` that had none.
export async function windowFigures(db: Db, year: number, windowId?: number, shown: readonly number[] = []): Promise<WindowFigures[]> {
  const [from, to] = yearRange(year);
  const inYear = (event: string) => {
    const q = db('audit_events').where({ event }).where('at', '>=', from).where('at', '<', to).whereNotNull('window_id');
    if (windowId !== undefined) q.where({ window_id: windowId });
    return q.groupBy('window_id');
  };
  const [served, failures, lockouts] = await Promise.all([
    inYear('authorization').select(
      'window_id',
      db.raw('count(*)::int AS sign_ins'),
      db.raw('count(DISTINCT actor_id)::int AS persons'),
      db.raw('count(DISTINCT enterprise_id)::int AS enterprises'),
      db.raw("count(*) FILTER (WHERE after->>'acr' = ?)::int AS mfa", [ACR.mfa]),
    ),
    inYear('sign_in').where({ outcome: 'failure' }).select('window_id', db.raw('count(*)::int AS n')),
    inYear('account.locked').select('window_id', db.raw('count(*)::int AS n')),
  ]);
  const ids = new Set<number>([...served, ...failures, ...lockouts].map((r) => r.window_id));
  if (windowId !== undefined) ids.add(windowId);
  for (const id of shown) ids.add(id);
  const byWindow = <T extends { window_id: number }>(rows: T[]) => new Map(rows.map((r) => [r.window_id, r]));
  const s = byWindow(served);
  const f = byWindow(failures);
  const l = byWindow(lockouts);
  return [...ids]
    .sort((a, b) => a - b)
    .map((id) => {
      const row = s.get(id);
      const signIns = row?.sign_ins ?? 0;
      const enterprises = row?.enterprises ?? 0;
      return {
        windowId: id,
        year,
        signIns,
        persons: row?.persons ?? 0,
        enterprises,
        targetProgress: enterprises / YEARLY_TARGET,
        mfaShare: signIns ? (row?.mfa ?? 0) / signIns : null,
        failures: f.get(id)?.n ?? 0,
        lockouts: l.get(id)?.n ?? 0,
      };
    });
}

// Sign-ins at one window per day of the year, days without any left out.
export async function dailySignIns(db: Db, year: number, windowId: number): Promise<DailySignIns> {
  const [from, to] = yearRange(year);
  const rows: Array<{ day: string; n: number }> = await db('audit_events')
    .where({ event: 'authorization', window_id: windowId })
    .where('at', '>=', from)
    .where('at', '<', to)
    .groupByRaw('1')
    .orderByRaw('1')
    .select(db.raw("to_char((at AT TIME ZONE 'UTC') + interval '8 hours', 'YYYY-MM-DD') AS day"), db.raw('count(*)::int AS n'));
  return rows.map((r) => ({ day: r.day, signIns: r.n }));
}
