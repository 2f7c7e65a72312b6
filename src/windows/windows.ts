import { z } from 'zod';
import type { Db } from '../db/connect.ts';
import { cachedRead, tablesChanged } from '../db/cache.ts';
import { ConflictError, isUniqueViolation, NotFoundError, parseInput } from '../errors.ts';
import { text } from '../validation/text.ts';
import { problemCode } from '../problems.ts';

export const WINDOW_KINDS = ['province', 'comprehensive', 'industry', 'service'] as const;
export type WindowKind = (typeof WINDOW_KINDS)[number];

export type Window = {
  id: number;
  kind: WindowKind;
  name: string;
  region: string | null;
  cluster: string | null;
  directlyAdministered: boolean;
  disabled: boolean;
};

type WindowRow = {
  id: number;
  kind: WindowKind;
  name: string;
  region: string | null;
  cluster: string | null;
  directly_administered: boolean;
  disabled_at: Date | null;
};

const toWindow = (r: WindowRow): Window => ({
  id: r.id,
  kind: r.kind,
  name: r.name,
  region: r.region,
  cluster: r.cluster,
  directlyAdministered: r.directly_administered,
  disabled: r.disabled_at !== null,
});

const windowFields = {
  name: text({ max: 100 }).min(2, problemCode('too_short')),
  region: z.string().trim().regex(/^\d{6}$/, problemCode('region')),
  cluster: text({ max: 100 }).min(1, problemCode('not_empty')),
  directlyAdministered: z.boolean(),
};

export const newWindowSchema = z
  .strictObject({
    kind: z.enum(WINDOW_KINDS),
    name: windowFields.name,
    region: windowFields.region.optional(),
    cluster: windowFields.cluster.optional(),
    directlyAdministered: windowFields.directlyAdministered.optional(),
  })
  .refine((w) => w.kind !== 'industry' || w.cluster, { path: ['cluster'], message: problemCode('cluster_required') })
  .refine((w) => w.kind === 'industry' || !w.cluster, { path: ['cluster'], message: problemCode('cluster_only_industry') })
  .refine((w) => w.kind === 'service' || w.region, { path: ['region'], message: problemCode('region_required') });

export type NewWindow = z.input<typeof newWindowSchema>;

// A window's kind never changes: a different kind is a different window.
// null removes a region or cluster.
export const windowPatchSchema = z.strictObject({
  name: windowFields.name.optional(),
  region: windowFields.region.nullable().optional(),
  cluster: windowFields.cluster.nullable().optional(),
  directlyAdministered: windowFields.directlyAdministered.optional(),
});

export type WindowPatch = z.input<typeof windowPatchSchema>;

export type Change<T> = { before: T; after: T };

// The input that re-validates a record with a patch applied, so an edit meets the same
// rules as creation: what the patch names replaces the current value, null removes it,
// and undefined keeps it (as if absent, as in JSON).
export function patched(current: object, patch: object): Record<string, unknown> {
  const merged: Record<string, unknown> = { ...current };
  for (const [key, value] of Object.entries(patch)) if (value !== undefined) merged[key] = value;
  for (const [key, value] of Object.entries(merged)) if (value === null) delete merged[key];
  return merged;
}

export async function createWindow(db: Db, input: NewWindow): Promise<Window> {
  const w = parseInput(newWindowSchema, input);
  try {
    const [row] = await db<WindowRow>('windows')
      .insert({ kind: w.kind, name: w.name, region: w.region ?? null, cluster: w.cluster ?? null, directly_administered: w.directlyAdministered ?? false })
      .returning('*');
    tablesChanged(db, 'windows');
    return toWindow(row!);
  } catch (err) {
    if (isUniqueViolation(err)) throw new ConflictError('name', 'window_name_taken');
    throw err;
  }
}

export async function listWindows(db: Db): Promise<Window[]> {
  return (await db<WindowRow>('windows').orderBy('id')).map(toWindow);
}

// Read on every sign-in page (the window asking): cached per node (src/db/cache.ts).
const cachedWindow = cachedRead({
  name: 'window',
  tables: ['windows'],
  max: 1000,
  key: (id: number) => String(id),
  load: async (db: Db, id: number) => {
    const row = await db<WindowRow>('windows').where({ id }).first();
    return row && toWindow(row);
  },
});

// lock: inside a transaction, hold the row until it ends, for a read-then-write.
export async function findWindow(db: Db, id: number, { lock = false } = {}): Promise<Window | undefined> {
  if (!Number.isSafeInteger(id) || id <= 0 || id > 2 ** 31 - 1) return undefined;
  if (!lock) return cachedWindow(db, id);
  const row = await db<WindowRow>('windows').where({ id }).forUpdate().first();
  return row && toWindow(row);
}

export async function requireWindow(db: Db, id: number, options: { lock?: boolean } = {}): Promise<Window> {
  const window = await findWindow(db, id, options);
  if (!window) throw new NotFoundError('window', 'window_not_found', { id });
  return window;
}

export async function updateWindow(db: Db, id: number, patch: WindowPatch): Promise<Change<Window>> {
  const p = parseInput(windowPatchSchema, patch);
  return db.transaction(async (trx) => {
    const before = await requireWindow(trx, id, { lock: true });
    const { id: _id, disabled: _disabled, ...current } = before;
    const w = parseInput(newWindowSchema, patched(current, p));
    try {
      const [row] = await trx<WindowRow>('windows')
        .where({ id })
        .update({ name: w.name, region: w.region ?? null, cluster: w.cluster ?? null, directly_administered: w.directlyAdministered ?? false })
        .returning('*');
      tablesChanged(trx, 'windows');
      return { before, after: toWindow(row!) };
    } catch (err) {
      if (isUniqueViolation(err)) throw new ConflictError('name', 'window_name_taken');
      throw err;
    }
  });
}

// The window's clients stop working at once, on every node: the provider looks clients
// up with their window on every request (findClientMetadata).
export async function setWindowDisabled(db: Db, id: number, disabled: boolean): Promise<Change<Window>> {
  return db.transaction(async (trx) => {
    const before = await requireWindow(trx, id, { lock: true });
    const [row] = await trx<WindowRow>('windows')
      .where({ id })
      .update({ disabled_at: disabled ? trx.raw('coalesce(disabled_at, now())') : null })
      .returning('*');
    tablesChanged(trx, 'windows');
    return { before, after: toWindow(row!) };
  });
}

export const countWindows = async (db: Db): Promise<number> => Number((await db('windows').count({ n: '*' }))[0]!.n);
