import { z } from 'zod';
import type { Db } from '../db/connect.ts';
import { InputError, parseInput } from '../errors.ts';
import { randomSecret, sha256 } from '../crypto/secrets.ts';
import { requireWindow } from './windows.ts';

export const AUTH_METHODS = ['client_secret_basic', 'client_secret_post', 'private_key_jwt', 'none'] as const;
export const GRANT_TYPES = ['authorization_code', 'refresh_token', 'client_credentials'] as const;
const SECRET_METHODS = new Set<string>(['client_secret_basic', 'client_secret_post']);

const isLoopback = (hostname: string) => hostname === 'localhost' || hostname === '[::1]' || /^127(\.\d{1,3}){3}$/.test(hostname);

// Registered URIs are compared exactly, so they must be exact: absolute, no fragment,
// https unless the host is this machine.
const registeredUri = z.string().superRefine((value, ctx) => {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    ctx.addIssue({ code: 'custom', message: `"${value}" is not an absolute URI` });
    return;
  }
  if (url.hash || value.includes('#')) ctx.addIssue({ code: 'custom', message: `"${value}" must not have a fragment (#...)` });
  else if (url.protocol !== 'https:' && !(url.protocol === 'http:' && isLoopback(url.hostname))) {
    ctx.addIssue({ code: 'custom', message: `"${value}" must use https (http is allowed only for localhost and loopback addresses)` });
  } else if (url.username || url.password) ctx.addIssue({ code: 'custom', message: `"${value}" must not carry a user name or password` });
});

export const newClientSchema = z
  .strictObject({
    windowId: z.number({ error: 'must be a window id (a number)' }).int().positive(),
    name: z.string().trim().min(1, 'must not be empty').max(100, 'must be at most 100 characters'),
    redirectUris: z.array(registeredUri).default([]),
    postLogoutRedirectUris: z.array(registeredUri).default([]),
    backchannelLogoutUri: registeredUri.optional(),
    jwksUri: registeredUri.optional(),
    authMethod: z.enum(AUTH_METHODS, { error: `must be one of ${AUTH_METHODS.join(', ')}` }).default('client_secret_basic'),
    grantTypes: z
      .array(z.enum(GRANT_TYPES, { error: `each must be one of ${GRANT_TYPES.join(', ')}` }))
      .min(1, 'must name at least one grant type')
      .default(['authorization_code', 'refresh_token']),
    thirdParty: z.boolean().default(false),
  })
  .superRefine((c, ctx) => {
    const grants = new Set(c.grantTypes);
    const issue = (path: string, message: string) => ctx.addIssue({ code: 'custom', path: [path], message });
    if (grants.has('authorization_code') && c.redirectUris.length === 0) issue('redirectUris', 'at least one redirect URI is needed for authorization_code');
    if (!grants.has('authorization_code') && c.redirectUris.length > 0) issue('redirectUris', 'redirect URIs need the authorization_code grant');
    if (grants.has('refresh_token') && !grants.has('authorization_code')) issue('grantTypes', 'refresh_token needs authorization_code');
    if (grants.has('client_credentials') && c.authMethod === 'none') issue('grantTypes', 'client_credentials needs a client that can authenticate (not auth method none)');
    if (c.authMethod === 'private_key_jwt' && !c.jwksUri) issue('jwksUri', 'private_key_jwt needs the client’s jwks_uri');
    if (c.authMethod !== 'private_key_jwt' && c.jwksUri) issue('jwksUri', 'is only used with private_key_jwt');
  });

export type NewClient = z.input<typeof newClientSchema>;

// What oidc-provider sees of a client: standard metadata plus our two properties.
export type ClientMetadata = {
  client_id: string;
  client_name: string;
  client_secret?: string;
  redirect_uris: string[];
  post_logout_redirect_uris: string[];
  backchannel_logout_uri?: string;
  backchannel_logout_session_required?: boolean;
  jwks_uri?: string;
  token_endpoint_auth_method: string;
  grant_types: string[];
  response_types: string[];
  window_id: number;
  third_party: boolean;
};

type ClientRow = {
  client_id: string;
  window_id: number;
  name: string;
  secret_digest: string | null;
  metadata: Omit<ClientMetadata, 'client_id' | 'client_name' | 'client_secret' | 'window_id' | 'third_party'>;
  third_party: boolean;
  disabled_at: Date | null;
};

export type CreatedClient = { clientId: string; clientSecret: string | undefined; windowId: number };

// The plain secret leaves this function once and is never stored; callers that need a
// reproducible secret (the demo) pass their own.
export async function createClient(db: Db, input: NewClient, options: { clientId?: string; secret?: string } = {}): Promise<CreatedClient> {
  const c = parseInput(newClientSchema, input);
  await requireWindow(db, c.windowId);
  const grantTypes = [...new Set(c.grantTypes)];
  const secret = SECRET_METHODS.has(c.authMethod) ? (options.secret ?? randomSecret()) : undefined;
  const clientId = options.clientId ?? randomSecret(16);
  const metadata: ClientRow['metadata'] = {
    redirect_uris: [...new Set(c.redirectUris)],
    post_logout_redirect_uris: [...new Set(c.postLogoutRedirectUris)],
    token_endpoint_auth_method: c.authMethod,
    grant_types: grantTypes,
    response_types: grantTypes.includes('authorization_code') ? ['code'] : [],
    ...(c.backchannelLogoutUri && { backchannel_logout_uri: c.backchannelLogoutUri, backchannel_logout_session_required: true }),
    ...(c.jwksUri && { jwks_uri: c.jwksUri }),
  };
  await db<ClientRow>('clients').insert({
    client_id: clientId,
    window_id: c.windowId,
    name: c.name,
    secret_digest: secret === undefined ? null : sha256(secret),
    metadata,
    third_party: c.thirdParty,
  });
  return { clientId, clientSecret: secret, windowId: c.windowId };
}

// For clients this server registers itself, whose redirect URI follows the issuer.
export async function updateRedirectUris(db: Db, clientId: string, redirectUris: string[]): Promise<void> {
  const uris = z.array(registeredUri).min(1).parse(redirectUris);
  await db('clients').where({ client_id: clientId }).update({ metadata: db.raw("jsonb_set(metadata, '{redirect_uris}', ?::jsonb)", [JSON.stringify(uris)]) });
}

// A client whose window or itself is disabled does not exist for the provider.
export async function findClientMetadata(db: Db, clientId: string): Promise<ClientMetadata | undefined> {
  const row = await db<ClientRow>('clients as c')
    .join('windows as w', 'w.id', 'c.window_id')
    .where('c.client_id', clientId)
    .whereNull('c.disabled_at')
    .whereNull('w.disabled_at')
    .first('c.*');
  if (!row) return undefined;
  return {
    ...row.metadata,
    client_id: row.client_id,
    client_name: row.name,
    ...(row.secret_digest !== null && { client_secret: row.secret_digest }),
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
  if (list.length === 0) throw new InputError('grantTypes', 'must name at least one grant type');
  return list;
}
