import { z } from 'zod';
import type { Db } from '../db/connect.ts';
import { tablesChanged } from '../db/cache.ts';
import { ConflictError, isUniqueViolation, NotFoundError, parseInput } from '../errors.ts';
import { problemCode } from '../problems.ts';
import { checkUscc, normaliseUscc } from './uscc.ts';
import { text } from '../validation/text.ts';
import { isUuid } from '../validation/uuid.ts';

// The registry of service objects (服务对象): enterprises, social organisations,
// entrepreneur teams and individual businesses.

export const ENTERPRISE_TYPES = ['enterprise', 'social_org', 'team', 'individual_business'] as const;
export const ENTERPRISE_STATUSES = ['pending', 'verified', 'suspended'] as const;

export type Enterprise = {
  id: string;
  uscc: string | null;
  name: string;
  type: (typeof ENTERPRISE_TYPES)[number];
  region: string;
  industry: string | null;
  status: (typeof ENTERPRISE_STATUSES)[number];
};

const COLUMNS = ['id', 'uscc', 'name', 'type', 'region', 'industry', 'status'] as const;

export const usccSchema = text({ max: 40 }).transform((value, ctx) => {
  const result = checkUscc(value);
  if (result.valid) return result.code;
  ctx.addIssue({ code: 'custom', message: problemCode('uscc_invalid'), params: { uscc: result.code, reasons: result.errors } });
  return z.NEVER;
});

export const newEnterpriseSchema = z
  .strictObject({
    uscc: usccSchema.optional(),
    name: text({ max: 200 }).min(2, problemCode('too_short')),
    type: z.enum(ENTERPRISE_TYPES),
    region: z.string().trim().regex(/^\d{6}$/, problemCode('region')),
    industry: text({ max: 100 }).min(1, problemCode('not_empty')).optional(),
    status: z.enum(ENTERPRISE_STATUSES).default('pending'),
  })
  .refine((e) => e.uscc !== undefined || e.type === 'team', { path: ['uscc'], message: problemCode('uscc_required') });

export type NewEnterprise = z.input<typeof newEnterpriseSchema>;

export async function createEnterprise(db: Db, input: NewEnterprise): Promise<Enterprise> {
  const e = parseInput(newEnterpriseSchema, input);
  try {
    const [row] = await db('enterprises')
      .insert({ uscc: e.uscc ?? null, name: e.name, type: e.type, region: e.region, industry: e.industry ?? null, status: e.status })
      .returning(COLUMNS);
    tablesChanged(db, 'enterprises');
    return row as Enterprise;
  } catch (err) {
    if (isUniqueViolation(err)) {
      throw e.uscc ? new ConflictError('uscc', 'uscc_taken', { uscc: e.uscc }) : new ConflictError('name', 'team_taken');
    }
    throw err;
  }
}


// By id or by USCC (as typed: trimmed and upper-cased).
export async function findEnterprise(db: Db, idOrUscc: string): Promise<Enterprise | undefined> {
  const value = idOrUscc.trim();
  const query = db('enterprises').first(COLUMNS);
  const row = isUuid(value) ? await query.where({ id: value }) : await query.where({ uscc: normaliseUscc(value) });
  return row as Enterprise | undefined;
}

export async function requireEnterprise(db: Db, idOrUscc: string): Promise<Enterprise> {
  const enterprise = await findEnterprise(db, idOrUscc);
  if (!enterprise) throw new NotFoundError('enterprise', 'enterprise_not_found_by', { value: idOrUscc });
  return enterprise;
}

const escapeLike = (value: string) => value.replace(/[\\%_]/g, (m) => `\\${m}`);

// By exact USCC, then names starting with the query, then names containing it.
// Ordering by the pattern operator (~<~) lets the prefix index give rows in order, so
// LIMIT stops early however common the prefix; contains-search uses the trigram index
// (a 1-2 character fragment has no trigram and may scan).
export async function searchEnterprises(db: Db, query: string, limit = 20): Promise<Enterprise[]> {
  const q = query.trim();
  if (!q) return [];
  const exact = checkUscc(q);
  if (exact.valid) return (await db('enterprises').where({ uscc: exact.code }).select(COLUMNS)) as Enterprise[];
  const pattern = escapeLike(q);
  const prefix = (await db('enterprises').where('name', 'like', `${pattern}%`).orderByRaw('name USING ~<~').limit(limit).select(COLUMNS)) as Enterprise[];
  if (prefix.length >= limit) return prefix;
  const contains = (await db('enterprises')
    .where('name', 'like', `%${pattern}%`)
    .whereNot('name', 'like', `${pattern}%`)
    .orderByRaw('name USING ~<~')
    .limit(limit - prefix.length)
    .select(COLUMNS)) as Enterprise[];
  return [...prefix, ...contains];
}

// The part of a 6-digit administrative division code that the division's own sub-areas
// share: 410000 (the province) -> 41, 410100 (Zhengzhou) -> 4101, 419001 (Jiyuan) -> 419001.
export const regionPrefix = (code: string) => code.replace(/(00)+$/, '');

// Enterprises registered in a division or any of its sub-areas, oldest first.
export async function enterprisesInRegion(db: Db, region: string, options: { status?: Enterprise['status']; limit: number }): Promise<Enterprise[]> {
  const q = db('enterprises').where('region', 'like', `${regionPrefix(region)}%`).orderBy('created_at').orderBy('id').limit(options.limit).select(COLUMNS);
  if (options.status) q.where({ status: options.status });
  return (await q) as Enterprise[];
}

export async function setEnterpriseStatus(db: Db, id: string, status: Enterprise['status']): Promise<Enterprise> {
  const parsed = parseInput(z.strictObject({ status: z.enum(ENTERPRISE_STATUSES) }), { status });
  const [row] = await db('enterprises').where({ id }).update({ status: parsed.status, updated_at: db.fn.now() }).returning(COLUMNS);
  tablesChanged(db, 'enterprises');
  if (!row) throw new NotFoundError('enterprise', 'enterprise_not_found', { id });
  return row as Enterprise;
}
