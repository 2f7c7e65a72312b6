import { z } from 'zod';
import type { Db } from '../db/connect.ts';
import { cachedRead, tablesChanged } from '../db/cache.ts';
import { ConflictError, isUniqueViolation, NotFoundError, parseInput } from '../errors.ts';
import { SCOPES } from '../oidc/claims.ts';
import { text } from '../validation/text.ts';
import { problemCode } from '../problems.ts';
import { registeredUri } from './clients.ts';
import { patched, requireWindow, type Change } from './windows.ts';

// The APIs of a window (resource servers). A client asks for a token for one with
// resource=<identifier> and gets an RFC 9068 JWT access token whose audience is the
// identifier, which the API verifies on its own with the provider's published keys.

export const MIN_TOKEN_TTL = 60;
export const MAX_TOKEN_TTL = 86_400;
export const DEFAULT_TOKEN_TTL = 3600;
const MAX_SCOPES = 50;

// An API's scope is its own (orders:read); the OpenID Connect scope names mean the
// person's claims and are the provider's, never an API's.
const apiScope = z
  .string({ error: problemCode('scope_name') })
  .regex(/^[a-z0-9_:.-]{1,64}$/, problemCode('scope_chars'))
  .superRefine((scope, ctx) => {
    if (SCOPES.includes(scope)) ctx.addIssue({ code: 'custom', message: problemCode('scope_reserved'), params: { scope } });
  });

const apiFields = {
  // Absolute, https unless loopback, no fragment: the rule of registered URIs.
  identifier: registeredUri,
  name: text({ max: 100 }).min(1, problemCode('not_empty')),
  scopes: z
    .array(apiScope, { error: problemCode('scopes_list') })
    .min(1, problemCode('scopes_min'))
    .max(MAX_SCOPES, problemCode('scopes_max'))
    .refine((s) => new Set(s).size === s.length, problemCode('scopes_twice')),
  accessTokenTtlSeconds: z
    .number({ error: problemCode('seconds') })
    .int(problemCode('whole_seconds'))
    .min(MIN_TOKEN_TTL, problemCode('seconds_min'))
    .max(MAX_TOKEN_TTL, problemCode('token_ttl_max')),
  otherWindows: z.boolean({ error: problemCode('true_or_false') }),
};

export const newApiSchema = z.strictObject({
  windowId: z.number({ error: problemCode('window_id') }).int().positive().max(2 ** 31 - 1),
  identifier: apiFields.identifier,
  name: apiFields.name,
  scopes: apiFields.scopes,
  accessTokenTtlSeconds: apiFields.accessTokenTtlSeconds.default(DEFAULT_TOKEN_TTL),
  otherWindows: apiFields.otherWindows.default(false),
});

export type NewApi = z.input<typeof newApiSchema>;

// The identifier and the window are what an API is: a different one is a new API.
export const apiPatchSchema = z.strictObject({
  name: apiFields.name.optional(),
  scopes: apiFields.scopes.optional(),
  accessTokenTtlSeconds: apiFields.accessTokenTtlSeconds.optional(),
  otherWindows: apiFields.otherWindows.optional(),
});

export type ApiPatch = z.input<typeof apiPatchSchema>;

export type Api = {
  id: number;
  windowId: number;
  identifier: string;
  name: string;
  scopes: string[];
  accessTokenTtlSeconds: number;
  otherWindows: boolean;
  createdAt: Date;
  updatedAt: Date;
};

type ApiRow = {
  id: number;
  window_id: number;
  identifier: string;
  name: string;
  scopes: string[];
  access_token_ttl_seconds: number;
  other_windows: boolean;
  created_at: Date;
  updated_at: Date;
};

const toApi = (r: ApiRow): Api => ({
  id: r.id,
  windowId: r.window_id,
  identifier: r.identifier,
  name: r.name,
  scopes: r.scopes,
  accessTokenTtlSeconds: r.access_token_ttl_seconds,
  otherWindows: r.other_windows,
  createdAt: r.created_at,
  updatedAt: r.updated_at,
});

const taken = (identifier: string) => new ConflictError('identifier', 'api_taken', { identifier });

export async function createApi(db: Db, input: NewApi): Promise<Api> {
  const a = parseInput(newApiSchema, input);
  await requireWindow(db, a.windowId);
  try {
    const [row] = await db<ApiRow>('window_apis')
      .insert({
        window_id: a.windowId,
        identifier: a.identifier,
        name: a.name,
        scopes: JSON.stringify(a.scopes) as never,
        access_token_ttl_seconds: a.accessTokenTtlSeconds,
        other_windows: a.otherWindows,
      })
      .returning('*');
    tablesChanged(db, 'window_apis');
    return toApi(row!);
  } catch (err) {
    if (isUniqueViolation(err)) throw taken(a.identifier);
    throw err;
  }
}

const validId = (id: number) => Number.isSafeInteger(id) && id > 0 && id <= 2 ** 31 - 1;

export async function getApi(db: Db, id: number, { lock = false } = {}): Promise<Api | undefined> {
  if (!validId(id)) return undefined;
  const query = db<ApiRow>('window_apis').where({ id }).first();
  const row: ApiRow | undefined = await (lock ? query.forUpdate() : query);
  return row && toApi(row);
}

async function requireApi(db: Db, id: number, options: { lock?: boolean } = {}): Promise<Api> {
  const api = await getApi(db, id, options);
  if (!api) throw new NotFoundError('apiId', 'api_not_found', { id });
  return api;
}

// One window's APIs, or every window's.
export async function listApis(db: Db, windowId?: number): Promise<Api[]> {
  const query = db<ApiRow>('window_apis').orderBy('id');
  if (windowId !== undefined) {
    await requireWindow(db, windowId);
    query.where({ window_id: windowId });
  }
  return (await query).map(toApi);
}

export async function updateApi(db: Db, id: number, patch: ApiPatch): Promise<Change<Api>> {
  const p = parseInput(apiPatchSchema, patch);
  return db.transaction(async (trx) => {
    const before = await requireApi(trx, id, { lock: true });
    const { windowId, identifier, name, scopes, accessTokenTtlSeconds, otherWindows } = before;
    const a = parseInput(newApiSchema, patched({ windowId, identifier, name, scopes, accessTokenTtlSeconds, otherWindows }, p));
    const [row] = await trx<ApiRow>('window_apis')
      .where({ id })
      .update({ name: a.name, scopes: JSON.stringify(a.scopes) as never, access_token_ttl_seconds: a.accessTokenTtlSeconds, other_windows: a.otherWindows, updated_at: trx.fn.now() as never })
      .returning('*');
    tablesChanged(trx, 'window_apis');
    return { before, after: toApi(row!) };
  });
}

// New tokens for it are refused from the next request on every node. Tokens already
// issued for it are JWTs the API may verify on its own until they expire (at most its
// token lifetime); their records go, so introspection answers them inactive.
export async function deleteApi(db: Db, id: number): Promise<Api> {
  return db.transaction(async (trx) => {
    const api = await requireApi(trx, id, { lock: true });
    await trx('oidc_artifacts').whereIn('model', ['AccessToken', 'ClientCredentials']).whereRaw("payload->>'aud' = ?", [api.identifier]).delete();
    await trx('window_apis').where({ id }).delete();
    tablesChanged(trx, 'window_apis');
    return api;
  });
}

export type LiveApi = Pick<Api, 'windowId' | 'identifier' | 'name' | 'scopes' | 'accessTokenTtlSeconds' | 'otherWindows'>;

// Every API of an enabled window, read by every token request that names a resource:
// one entry per node, so an identifier that is not registered costs no statement
// either, and dropped when an API or a window changes anywhere.
const liveApis = cachedRead({
  name: 'window_apis',
  tables: ['window_apis', 'windows'],
  max: 1,
  key: () => 'all',
  load: async (db: Db): Promise<LiveApi[]> => {
    const rows: ApiRow[] = await db('window_apis as a').join('windows as w', 'w.id', 'a.window_id').whereNull('w.disabled_at').select('a.*');
    return rows.map(({ window_id, identifier, name, scopes, access_token_ttl_seconds, other_windows }) => ({
      windowId: window_id,
      identifier,
      name,
      scopes,
      accessTokenTtlSeconds: access_token_ttl_seconds,
      otherWindows: other_windows,
    }));
  },
});

export async function findLiveApi(db: Db, identifier: string): Promise<LiveApi | undefined> {
  return (await liveApis(db)).find((a) => a.identifier === identifier);
}
