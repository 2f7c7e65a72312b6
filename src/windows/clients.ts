import crypto from 'node:crypto';
import { z } from 'zod';
import type { Db } from '../db/connect.ts';
import { cachedRead, tablesChanged } from '../db/cache.ts';
import { InputError, NotFoundError, parseInput } from '../errors.ts';
import { randomSecret, sha256 } from '../crypto/secrets.ts';
import { SCOPES } from '../oidc/claims.ts';
import { patched, requireWindow, type Change } from './windows.ts';
import { jsonTextProblem, text } from '../validation/text.ts';
import { problemCode, type ProblemCode } from '../problems.ts';

export const AUTH_METHODS = ['client_secret_basic', 'client_secret_post', 'private_key_jwt', 'none'] as const;
export const GRANT_TYPES = ['authorization_code', 'refresh_token', 'client_credentials'] as const;
export type AuthMethod = (typeof AUTH_METHODS)[number];
export type GrantType = (typeof GRANT_TYPES)[number];
const SECRET_METHODS = new Set<string>(['client_secret_basic', 'client_secret_post']);

// Clients the server registers itself (the account center, sme-passport-account-center):
// their settings follow the server's own configuration, so no administrator edits them.
export const isInternalClient = (clientId: string): boolean => clientId.startsWith('sme-passport-');

// The window a client belongs to, from the client metadata the provider holds (none for
// a client the provider could not find).
export const windowOf = (client: { [key: string]: unknown } | undefined): number | null => (typeof client?.window_id === 'number' ? client.window_id : null);

const isLoopback = (hostname: string) => hostname === 'localhost' || hostname === '[::1]' || /^127(\.\d{1,3}){3}$/.test(hostname);

// Registered URIs are compared exactly, so they must be exact: absolute, no fragment,
// https unless the host is this machine.
export const registeredUri = text({ max: 2000 }).superRefine((value, ctx) => {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    ctx.addIssue({ code: 'custom', message: problemCode('uri_not_absolute'), params: { uri: value } });
    return;
  }
  if (url.hash || value.includes('#')) ctx.addIssue({ code: 'custom', message: problemCode('uri_fragment'), params: { uri: value } });
  else if (url.protocol !== 'https:' && !(url.protocol === 'http:' && isLoopback(url.hostname))) {
    ctx.addIssue({ code: 'custom', message: problemCode('uri_not_https'), params: { uri: value } });
  } else if (url.username || url.password) ctx.addIssue({ code: 'custom', message: problemCode('uri_credentials'), params: { uri: value } });
});

// A key with private parts in the registry means the client's private key has leaked:
// refuse it rather than store it. (The provider would refuse it too, but only when the
// client is first used.)
const PRIVATE_JWK_MEMBERS = ['d', 'p', 'q', 'dp', 'dq', 'qi', 'oth', 'k', 'priv'];

const publicJwk = z.looseObject({ kty: z.enum(['RSA', 'EC'], { error: problemCode('jwk_kty') }) }).superRefine((jwk, ctx) => {
  // Stored as it is (jsonb), so every member name and value is text like any other.
  const problem = jsonTextProblem(jwk);
  if (problem) {
    ctx.addIssue({ code: 'custom', message: problem.code, params: problem.params });
    return;
  }
  const leaked = PRIVATE_JWK_MEMBERS.filter((member) => member in jwk);
  if (leaked.length > 0) {
    ctx.addIssue({ code: 'custom', message: problemCode('jwk_private'), params: { members: leaked.join(', ') } });
    return;
  }
  try {
    crypto.createPublicKey({ key: jwk as crypto.JsonWebKey, format: 'jwk' });
  } catch {
    ctx.addIssue({ code: 'custom', message: problemCode('jwk_invalid'), params: { kty: jwk.kty } });
  }
});

const jwkSet = z.strictObject({ keys: z.array(publicJwk, { error: problemCode('jwks_list') }).min(1, problemCode('jwks_min')) }, { error: problemCode('jwks_set') });

export type JwkSet = z.output<typeof jwkSet>;

const clientFields = {
  name: text({ max: 100 }).min(1, problemCode('not_empty')),
  redirectUris: z.array(registeredUri).max(20, problemCode('uris_max')),
  postLogoutRedirectUris: z.array(registeredUri).max(20, problemCode('uris_max')),
  backchannelLogoutUri: registeredUri,
  frontchannelLogoutUri: registeredUri,
  jwksUri: registeredUri,
  jwks: jwkSet,
  grantTypes: z.array(z.enum(GRANT_TYPES, { error: problemCode('each_one_of') })).min(1, problemCode('grant_types_min')),
  // What the client may ask for; the provider refuses anything else (invalid_scope).
  scopes: z.array(z.enum(SCOPES, { error: problemCode('each_one_of') })).refine((s) => s.includes('openid'), problemCode('scopes_openid')),
  thirdParty: z.boolean(),
};

type ClientSettings = {
  redirectUris: string[];
  grantTypes: GrantType[];
  authMethod: AuthMethod;
  jwksUri?: string | undefined;
  jwks?: JwkSet | undefined;
};

// The rules between fields, for a new client and for an edited one alike. What the
// client is (its auth method) comes first: a public client asking for client_credentials
// is told that, not what its redirect URIs would need.
function clientRules(c: ClientSettings, ctx: z.RefinementCtx) {
  const grants = new Set(c.grantTypes);
  const issue = (path: string, code: ProblemCode) => ctx.addIssue({ code: 'custom', path: [path], message: code });
  if (grants.has('client_credentials') && c.authMethod === 'none') issue('grantTypes', 'public_client_credentials');
  if (grants.has('authorization_code') && c.redirectUris.length === 0) issue('redirectUris', 'redirect_uri_needed');
  if (!grants.has('authorization_code') && c.redirectUris.length > 0) issue('redirectUris', 'redirect_uris_need_code');
  if (grants.has('refresh_token') && !grants.has('authorization_code')) issue('grantTypes', 'refresh_needs_code');
  if (c.authMethod === 'private_key_jwt') {
    if (!c.jwksUri && !c.jwks) issue('jwks', 'jwks_needed');
    if (c.jwksUri && c.jwks) issue('jwks', 'jwks_either');
  } else {
    if (c.jwksUri) issue('jwksUri', 'only_private_key_jwt');
    if (c.jwks) issue('jwks', 'only_private_key_jwt');
  }
}

export const newClientSchema = z
  .strictObject({
    windowId: z.number({ error: problemCode('window_id') }).int().positive(),
    name: clientFields.name,
    redirectUris: clientFields.redirectUris.default([]),
    postLogoutRedirectUris: clientFields.postLogoutRedirectUris.default([]),
    backchannelLogoutUri: clientFields.backchannelLogoutUri.optional(),
    frontchannelLogoutUri: clientFields.frontchannelLogoutUri.optional(),
    jwksUri: clientFields.jwksUri.optional(),
    jwks: clientFields.jwks.optional(),
    authMethod: z.enum(AUTH_METHODS).default('client_secret_basic'),
    grantTypes: clientFields.grantTypes.default(['authorization_code', 'refresh_token']),
    scopes: clientFields.scopes.default([...SCOPES]),
    thirdParty: clientFields.thirdParty.default(false),
  })
  .superRefine(clientRules);

export type NewClient = z.input<typeof newClientSchema>;

// The window and the auth method are what a client is: a different one is a new client.
// null removes an optional setting.
export const clientPatchSchema = z.strictObject({
  name: clientFields.name.optional(),
  redirectUris: clientFields.redirectUris.optional(),
  postLogoutRedirectUris: clientFields.postLogoutRedirectUris.optional(),
  backchannelLogoutUri: clientFields.backchannelLogoutUri.nullable().optional(),
  frontchannelLogoutUri: clientFields.frontchannelLogoutUri.nullable().optional(),
  jwksUri: clientFields.jwksUri.nullable().optional(),
  jwks: clientFields.jwks.nullable().optional(),
  grantTypes: clientFields.grantTypes.optional(),
  scopes: clientFields.scopes.optional(),
  thirdParty: clientFields.thirdParty.optional(),
});

export type ClientPatch = z.input<typeof clientPatchSchema>;

// What administrators see of a client: never a secret or its digest.
export type Client = {
  clientId: string;
  windowId: number;
  name: string;
  redirectUris: string[];
  postLogoutRedirectUris: string[];
  backchannelLogoutUri?: string;
  frontchannelLogoutUri?: string;
  jwksUri?: string;
  jwks?: JwkSet;
  authMethod: AuthMethod;
  grantTypes: GrantType[];
  scopes: string[];
  thirdParty: boolean;
  disabled: boolean;
  createdAt: Date;
  secretRotatedAt: Date | null;
  previousSecretValidUntil: Date | null;
};

// What oidc-provider sees of a client: standard metadata plus our own properties
// (extraClientMetadata in provider.ts).
export type ClientMetadata = {
  client_id: string;
  client_name: string;
  client_secret?: string;
  redirect_uris: string[];
  post_logout_redirect_uris: string[];
  backchannel_logout_uri?: string;
  backchannel_logout_session_required?: boolean;
  // Front-Channel Logout 1.0 (oidc/frontchannel-logout.ts): iss and sid are always sent.
  frontchannel_logout_uri?: string;
  frontchannel_logout_session_required?: boolean;
  jwks_uri?: string;
  jwks?: JwkSet;
  token_endpoint_auth_method: AuthMethod;
  grant_types: GrantType[];
  response_types: string[];
  // Space-separated, as in RFC 7591; absent on clients registered before scopes were
  // stored, which the provider lets ask for any scope.
  scope?: string;
  window_id: number;
  third_party: boolean;
  // The digest replaced by the last rotation, while its grace period lasts.
  client_secret_previous?: string;
};

type StoredMetadata = Omit<ClientMetadata, 'client_id' | 'client_name' | 'client_secret' | 'client_secret_previous' | 'window_id' | 'third_party'>;

type ClientRow = {
  client_id: string;
  window_id: number;
  name: string;
  secret_digest: string | null;
  previous_secret_digest: string | null;
  previous_secret_expires_at: Date | null;
  secret_rotated_at: Date | null;
  metadata: StoredMetadata;
  third_party: boolean;
  created_at: Date;
  updated_at: Date;
  disabled_at: Date | null;
};

function toMetadata(c: z.output<typeof newClientSchema>): StoredMetadata {
  const grantTypes = [...new Set(c.grantTypes)];
  return {
    redirect_uris: [...new Set(c.redirectUris)],
    post_logout_redirect_uris: [...new Set(c.postLogoutRedirectUris)],
    token_endpoint_auth_method: c.authMethod,
    grant_types: grantTypes,
    response_types: grantTypes.includes('authorization_code') ? ['code'] : [],
    scope: [...new Set(c.scopes)].join(' '),
    ...(c.backchannelLogoutUri && { backchannel_logout_uri: c.backchannelLogoutUri, backchannel_logout_session_required: true }),
    ...(c.frontchannelLogoutUri && { frontchannel_logout_uri: c.frontchannelLogoutUri, frontchannel_logout_session_required: true }),
    ...(c.jwksUri && { jwks_uri: c.jwksUri }),
    ...(c.jwks && { jwks: c.jwks }),
  };
}

type ClientViewRow = Pick<ClientRow, 'client_id' | 'window_id' | 'name' | 'metadata' | 'third_party' | 'created_at' | 'secret_rotated_at' | 'disabled_at'> & {
  previous_secret_valid_until: Date | null;
};

const toClient = (r: ClientViewRow): Client => ({
  clientId: r.client_id,
  windowId: r.window_id,
  name: r.name,
  redirectUris: r.metadata.redirect_uris,
  postLogoutRedirectUris: r.metadata.post_logout_redirect_uris,
  ...(r.metadata.backchannel_logout_uri && { backchannelLogoutUri: r.metadata.backchannel_logout_uri }),
  ...(r.metadata.frontchannel_logout_uri && { frontchannelLogoutUri: r.metadata.frontchannel_logout_uri }),
  ...(r.metadata.jwks_uri && { jwksUri: r.metadata.jwks_uri }),
  ...(r.metadata.jwks && { jwks: r.metadata.jwks }),
  authMethod: r.metadata.token_endpoint_auth_method,
  grantTypes: r.metadata.grant_types,
  scopes: r.metadata.scope?.split(' ') ?? [...SCOPES],
  thirdParty: r.third_party,
  disabled: r.disabled_at !== null,
  createdAt: r.created_at,
  secretRotatedAt: r.secret_rotated_at,
  previousSecretValidUntil: r.previous_secret_valid_until,
});

// The settings of a client as creation takes them, to re-validate an edit.
const settingsOf = (c: Client): NewClient => ({
  windowId: c.windowId,
  name: c.name,
  redirectUris: c.redirectUris,
  postLogoutRedirectUris: c.postLogoutRedirectUris,
  backchannelLogoutUri: c.backchannelLogoutUri,
  frontchannelLogoutUri: c.frontchannelLogoutUri,
  jwksUri: c.jwksUri,
  jwks: c.jwks,
  authMethod: c.authMethod,
  grantTypes: c.grantTypes,
  scopes: c.scopes,
  thirdParty: c.thirdParty,
});

export type CreatedClient = { clientId: string; clientSecret: string | undefined; windowId: number };

// The plain secret leaves this function once and is never stored; callers that need a
// reproducible secret (the demo) pass their own.
export async function createClient(db: Db, input: NewClient, options: { clientId?: string; secret?: string } = {}): Promise<CreatedClient> {
  const c = parseInput(newClientSchema, input);
  await requireWindow(db, c.windowId);
  const secret = SECRET_METHODS.has(c.authMethod) ? (options.secret ?? randomSecret()) : undefined;
  const clientId = options.clientId ?? randomSecret(16);
  await db<ClientRow>('clients').insert({
    client_id: clientId,
    window_id: c.windowId,
    name: c.name,
    secret_digest: secret === undefined ? null : sha256(secret),
    metadata: toMetadata(c),
    third_party: c.thirdParty,
  });
  tablesChanged(db, 'clients');
  return { clientId, clientSecret: secret, windowId: c.windowId };
}

// What administrators are shown of the grace period follows the database's clock; the
// provider's check follows each node's (findClientMetadata): keep them in time (NTP).
const livePreviousUntil = (db: Db) => db.raw('CASE WHEN previous_secret_expires_at > now() THEN previous_secret_expires_at END AS previous_secret_valid_until');

async function findClient(db: Db, clientId: string, { lock = false } = {}): Promise<Client | undefined> {
  if (typeof clientId !== 'string' || clientId === '') return undefined;
  const query = db('clients')
    .where({ client_id: clientId })
    .first('client_id', 'window_id', 'name', 'metadata', 'third_party', 'created_at', 'secret_rotated_at', 'disabled_at', livePreviousUntil(db));
  const row: ClientViewRow | undefined = await (lock ? query.forUpdate() : query);
  return row && toClient(row);
}

async function requireClient(db: Db, clientId: string, options: { lock?: boolean } = {}): Promise<Client> {
  const client = await findClient(db, clientId, options);
  if (!client) throw new NotFoundError('client', 'client_not_found', { id: clientId });
  return client;
}

function refuseInternal(clientId: string): void {
  if (isInternalClient(clientId)) throw new InputError('clientId', 'client_internal');
}

// Disabled clients included.
export const getClient = (db: Db, clientId: string): Promise<Client | undefined> => findClient(db, clientId);

// Several at once, by id (those that exist), in one query: names for a page of records.
export async function findClients(db: Db, clientIds: readonly string[]): Promise<Client[]> {
  if (clientIds.length === 0) return [];
  const rows: ClientViewRow[] = await db('clients')
    .whereIn('client_id', [...new Set(clientIds)])
    .select('client_id', 'window_id', 'name', 'metadata', 'third_party', 'created_at', 'secret_rotated_at', 'disabled_at', livePreviousUntil(db));
  return rows.map(toClient);
}

export async function listClients(db: Db, windowId: number): Promise<Client[]> {
  await requireWindow(db, windowId);
  const rows: ClientViewRow[] = await db('clients')
    .where({ window_id: windowId })
    .orderBy(['created_at', 'client_id'])
    .select('client_id', 'window_id', 'name', 'metadata', 'third_party', 'created_at', 'secret_rotated_at', 'disabled_at', livePreviousUntil(db));
  return rows.map(toClient);
}

export async function updateClient(db: Db, clientId: string, patch: ClientPatch): Promise<Change<Client>> {
  refuseInternal(clientId);
  const p = parseInput(clientPatchSchema, patch);
  return db.transaction(async (trx) => {
    const before = await requireClient(trx, clientId, { lock: true });
    const c = parseInput(newClientSchema, patched(settingsOf(before), p));
    await trx('clients').where({ client_id: clientId }).update({ name: c.name, metadata: toMetadata(c), third_party: c.thirdParty, updated_at: trx.fn.now() });
    tablesChanged(trx, 'clients');
    return { before, after: await requireClient(trx, clientId) };
  });
}

const MAX_GRACE_SECONDS = 30 * 24 * 3600;

// The old secret keeps working for graceSeconds, so the window can deploy the new one
// without an outage; 0 ends it at once (a leaked secret).
export async function rotateClientSecret(db: Db, clientId: string, graceSeconds = 86400): Promise<{ clientSecret: string; previousSecretValidUntil: Date | null }> {
  refuseInternal(clientId);
  if (!Number.isInteger(graceSeconds) || graceSeconds < 0 || graceSeconds > MAX_GRACE_SECONDS) {
    throw new InputError('graceSeconds', 'grace_seconds', { maximum: MAX_GRACE_SECONDS });
  }
  const client = await requireClient(db, clientId);
  if (!SECRET_METHODS.has(client.authMethod)) throw new InputError('authMethod', 'no_secret', { method: client.authMethod });
  const clientSecret = randomSecret();
  const keepPrevious = graceSeconds > 0;
  // One statement: its right-hand sides read the row as the statement finds it, so the
  // digest kept as previous is the one being replaced, even when two rotations race.
  const [row] = await db('clients')
    .where({ client_id: clientId })
    .update({
      secret_digest: sha256(clientSecret),
      previous_secret_digest: keepPrevious ? db.raw('secret_digest') : null,
      previous_secret_expires_at: keepPrevious ? db.raw('now() + make_interval(secs => ?)', [graceSeconds]) : null,
      secret_rotated_at: db.fn.now(),
      updated_at: db.fn.now(),
    })
    .returning('previous_secret_expires_at');
  tablesChanged(db, 'clients');
  if (!row) throw new NotFoundError('client', 'client_not_found', { id: clientId });
  return { clientSecret, previousSecretValidUntil: row.previous_secret_expires_at };
}

// Takes effect at the client's next request: the provider looks the client up on every one.
export async function setClientDisabled(db: Db, clientId: string, disabled: boolean): Promise<Change<Client>> {
  refuseInternal(clientId);
  return db.transaction(async (trx) => {
    const before = await requireClient(trx, clientId, { lock: true });
    await trx('clients')
      .where({ client_id: clientId })
      .update({ disabled_at: disabled ? trx.raw('coalesce(disabled_at, now())') : null, updated_at: trx.fn.now() });
    tablesChanged(trx, 'clients');
    return { before, after: await requireClient(trx, clientId) };
  });
}

// Its codes, tokens and grants go with it, so nothing it was issued works any more.
export async function deleteClient(db: Db, clientId: string): Promise<Client> {
  refuseInternal(clientId);
  return db.transaction(async (trx) => {
    const client = await requireClient(trx, clientId, { lock: true });
    await trx('oidc_artifacts').whereRaw("payload->>'clientId' = ?", [clientId]).delete();
    await trx('clients').where({ client_id: clientId }).delete();
    tablesChanged(trx, 'clients');
    return client;
  });
}

// For clients this server registers itself, whose redirect URI follows the issuer.
export async function updateRedirectUris(db: Db, clientId: string, redirectUris: string[], postLogoutRedirectUris: string[] = []): Promise<void> {
  const uris = z.array(registeredUri).min(1).parse(redirectUris);
  const postLogout = z.array(registeredUri).parse(postLogoutRedirectUris);
  await db('clients')
    .where({ client_id: clientId })
    .update({ metadata: db.raw("metadata || jsonb_build_object('redirect_uris', ?::jsonb, 'post_logout_redirect_uris', ?::jsonb)", [JSON.stringify(uris), JSON.stringify(postLogout)]) });
  tablesChanged(db, 'clients');
}

// A live client (it and its window enabled) as the provider sees it, with the replaced
// digest and when it stops; read with its window on every request, so cached per node
// (src/db/cache.ts) and dropped when either table changes anywhere.
const liveClientRow = cachedRead({
  name: 'client',
  tables: ['clients', 'windows'],
  max: 10_000,
  key: (clientId: string) => clientId,
  load: async (db: Db, clientId: string): Promise<ClientRow | undefined> =>
    db('clients as c').join('windows as w', 'w.id', 'c.window_id').where('c.client_id', clientId).whereNull('c.disabled_at').whereNull('w.disabled_at').first('c.*'),
});

// A client whose window or itself is disabled does not exist for the provider.
// oidc-provider calls this on every Client.find and keeps a built Client only in an LRU
// keyed on the SHA-256 of this metadata (lib/models/client.js): a rotated digest, or the
// previous digest dropping out when its grace period ends, is a new Client on every node
// at its next request, without a restart. The grace period is compared with this
// node's clock at each call, so a cached row stops the old secret on time too.
export async function findClientMetadata(db: Db, clientId: string): Promise<ClientMetadata | undefined> {
  const row = await liveClientRow(db, clientId);
  if (!row) return undefined;
  const previousLive = row.previous_secret_digest !== null && row.previous_secret_expires_at !== null && new Date(row.previous_secret_expires_at).getTime() > Date.now();
  // A copy: the provider is handed an object of its own, never the cached one.
  return {
    ...structuredClone(row.metadata),
    client_id: row.client_id,
    client_name: row.name,
    ...(row.secret_digest !== null && { client_secret: row.secret_digest }),
    ...(previousLive && { client_secret_previous: row.previous_secret_digest! }),
    window_id: row.window_id,
    third_party: row.third_party,
  };
}

// Origins the provider may call (back-channel logout, jwks_uri): exactly those an
// administrator registered on a live client, even on private or loopback addresses.
export async function isRegisteredOutgoingOrigin(db: Db, origin: string): Promise<boolean> {
  const rows: Array<{ backchannel: string | null; jwks: string | null }> = await db('clients as c')
    .join('windows as w', 'w.id', 'c.window_id')
    .whereNull('c.disabled_at')
    .whereNull('w.disabled_at')
    .select(db.raw("c.metadata->>'backchannel_logout_uri' as backchannel"), db.raw("c.metadata->>'jwks_uri' as jwks"));
  return rows.some((r) => [r.backchannel, r.jwks].some((uri) => uri !== null && new URL(uri).origin === origin));
}

export function parseGrantTypes(value: string): string[] {
  const list = value.split(',').map((s) => s.trim()).filter(Boolean);
  if (list.length === 0) throw new InputError('grantTypes', 'grant_types_min');
  return list;
}
