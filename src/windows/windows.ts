import { z } from 'zod';
import type { Db } from '../db/connect.ts';
import { ConflictError, isUniqueViolation, NotFoundError, parseInput } from '../errors.ts';

export const WINDOW_KINDS = ['province', 'comprehensive', 'industry', 'service'] as const;
export type WindowKind = (typeof WINDOW_KINDS)[number];

// Every window is shown under the one provincial brand (DOMAIN.md, naming rule).
export const BRAND = '河南省中小企业公共服务平台网络';

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

export const newWindowSchema = z
  .strictObject({
    kind: z.enum(WINDOW_KINDS, { error: `must be one of ${WINDOW_KINDS.join(', ')}` }),
    name: z.string().trim().min(2, 'must be at least 2 characters').max(100, 'must be at most 100 characters'),
    region: z.string().trim().regex(/^\d{6}$/, 'must be a 6-digit administrative division code such as 410100').optional(),
    cluster: z.string().trim().min(1, 'must not be empty').max(100, 'must be at most 100 characters').optional(),
    directlyAdministered: z.boolean().optional(),
  })
  .refine((w) => w.kind !== 'industry' || w.cluster, { path: ['cluster'], message: 'is required for an industry window (the industry cluster it serves)' })
  .refine((w) => w.kind === 'industry' || !w.cluster, { path: ['cluster'], message: 'is only for industry windows' })
  .refine((w) => w.kind === 'service' || w.region, { path: ['region'], message: 'is required for province, comprehensive and industry windows' });

export type NewWindow = z.input<typeof newWindowSchema>;

export async function createWindow(db: Db, input: NewWindow): Promise<Window> {
  const w = parseInput(newWindowSchema, input);
  try {
    const [row] = await db<WindowRow>('windows')
      .insert({ kind: w.kind, name: w.name, region: w.region ?? null, cluster: w.cluster ?? null, directly_administered: w.directlyAdministered ?? false })
      .returning('*');
    return toWindow(row!);
  } catch (err) {
    if (isUniqueViolation(err)) throw new ConflictError('name', 'a window with this name exists already');
    throw err;
  }
}

export async function listWindows(db: Db): Promise<Window[]> {
  return (await db<WindowRow>('windows').orderBy('id')).map(toWindow);
}

export async function findWindow(db: Db, id: number): Promise<Window | undefined> {
  if (!Number.isSafeInteger(id) || id <= 0 || id > 2 ** 31 - 1) return undefined;
  const row = await db<WindowRow>('windows').where({ id }).first();
  return row && toWindow(row);
}

export async function requireWindow(db: Db, id: number): Promise<Window> {
  const window = await findWindow(db, id);
  if (!window) throw new NotFoundError('window', `no window with id ${id}`);
  return window;
}

export const countWindows = async (db: Db): Promise<number> => Number((await db('windows').count({ n: '*' }))[0]!.n);
