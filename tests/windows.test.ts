import crypto from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ACCOUNT_CENTER_CLIENT_ID, ensureAccountCenterClient } from '../src/account-center/client.ts';
import { sha256 } from '../src/crypto/secrets.ts';
import { ADMIN_CONSOLE_CLIENT_ID, adminConsoleSecret, ensureAdminConsoleClient } from '../src/admin/console-client.ts';
import { SCOPES } from '../src/oidc/claims.ts';
import {
  createClient,
  deleteClient,
  findClientMetadata,
  getClient,
  isInternalClient,
  isRegisteredOutgoingOrigin,
  listClients,
  rotateClientSecret,
  setClientDisabled,
  updateClient,
  type JwkSet,
  type NewClient,
} from '../src/windows/clients.ts';
import { seedWindowRegistry } from '../src/windows/seed.ts';
import { createWindow, listWindows, setWindowDisabled, updateWindow } from '../src/windows/windows.ts';
import { ConflictError, InputError, NotFoundError } from '../src/errors.ts';
import { testDatabase, type TestDatabase } from './helpers/database.ts';

let database: TestDatabase;

beforeAll(async () => {
  database = await testDatabase();
});

afterAll(async () => {
  await database?.close();
});

describe('the window registry', () => {
  it('seeds the provincial platform and the 28 comprehensive windows once', async () => {
    expect(await seedWindowRegistry(database.db)).toBe(true);
    expect(await seedWindowRegistry(database.db)).toBe(false);
    const windows = await listWindows(database.db);
    expect(windows.filter((w) => w.kind === 'province')).toEqual([expect.objectContaining({ region: '410000' })]);
    const comprehensive = windows.filter((w) => w.kind === 'comprehensive');
    expect(comprehensive).toHaveLength(28);
    expect(new Set(comprehensive.map((w) => w.region)).size).toBe(28);
    expect(comprehensive.find((w) => w.region === '419001')?.name).toBe('济源市综合窗口平台');
    expect(comprehensive.filter((w) => w.directlyAdministered)).toHaveLength(10);
  });

  it('validates a new window', async () => {
    await expect(createWindow(database.db, { kind: 'industry', name: '某产业窗口', region: '410100' })).rejects.toThrow(/cluster: is required/);
    await expect(createWindow(database.db, { kind: 'comprehensive', name: '某窗口' })).rejects.toThrow(/region: is required/);
    await expect(createWindow(database.db, { kind: 'nope' as never, name: '某窗口' })).rejects.toBeInstanceOf(InputError);
  });
});

describe('editing a window', () => {
  it('renames, moves and re-files a window under the same rules as creation', async () => {
    const service = await createWindow(database.db, { kind: 'service', name: '某服务机构', region: '410100' });
    const renamed = await updateWindow(database.db, service.id, { name: '  某服务机构（新）  ', region: null, directlyAdministered: true });
    expect(renamed.before).toEqual(service);
    expect(renamed.after).toEqual({ ...service, name: '某服务机构（新）', region: null, directlyAdministered: true });

    const industry = await createWindow(database.db, { kind: 'industry', name: '某产业窗口', region: '410100', cluster: '装备制造' });
    expect((await updateWindow(database.db, industry.id, { region: '410300', cluster: '新材料' })).after).toMatchObject({ region: '410300', cluster: '新材料' });
    await expect(updateWindow(database.db, industry.id, { cluster: null })).rejects.toThrow(/cluster: is required for an industry window/);
    await expect(updateWindow(database.db, industry.id, { region: null })).rejects.toThrow(/region: is required/);
    await expect(updateWindow(database.db, industry.id, { region: '4103' })).rejects.toThrow(/region: must be a 6-digit/);
    await expect(updateWindow(database.db, service.id, { cluster: '装备制造' })).rejects.toThrow(/cluster: is only for industry windows/);
    await expect(updateWindow(database.db, service.id, { name: 'x' })).rejects.toThrow(/name: must be at least 2 characters/);
    // A refused edit changes nothing.
    expect((await listWindows(database.db)).find((w) => w.id === industry.id)).toMatchObject({ region: '410300', cluster: '新材料' });
  });

  it('refuses a taken name, an unknown window and fields that cannot change', async () => {
    const [province] = await listWindows(database.db);
    const w = await createWindow(database.db, { kind: 'service', name: '另一服务机构' });
    const taken = updateWindow(database.db, w.id, { name: province!.name });
    await expect(taken).rejects.toBeInstanceOf(ConflictError);
    await expect(taken).rejects.toMatchObject({ field: 'name' });
    await expect(updateWindow(database.db, 999_999, { name: '不存在' })).rejects.toBeInstanceOf(NotFoundError);
    await expect(updateWindow(database.db, w.id, { kind: 'industry' } as never)).rejects.toThrow(/kind/);
    await expect(updateWindow(database.db, w.id, { disabled: true } as never)).rejects.toThrow(/disabled/);
  });

  it('disables and enables a window', async () => {
    const w = await createWindow(database.db, { kind: 'service', name: '可停用的机构' });
    const off = await setWindowDisabled(database.db, w.id, true);
    expect([off.before.disabled, off.after.disabled]).toEqual([false, true]);
    expect((await setWindowDisabled(database.db, w.id, true)).before.disabled).toBe(true);
    const on = await setWindowDisabled(database.db, w.id, false);
    expect([on.before.disabled, on.after.disabled]).toEqual([true, false]);
    await expect(setWindowDisabled(database.db, 999_999, true)).rejects.toBeInstanceOf(NotFoundError);
  });
});

type Jwk = JwkSet['keys'][number];
const publicKey = () => crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey.export({ format: 'jwk' }) as Jwk;

describe('clients of a window', () => {
  it('accepts exact redirect URIs only', async () => {
    const [w] = await listWindows(database.db);
    const make = (redirectUris: string[], extra = {}) => createClient(database.db, { windowId: w!.id, name: 'c', redirectUris, ...extra });
    await expect(make(['https://a.example.cn/cb#x'])).rejects.toThrow(/fragment/);
    await expect(make(['http://a.example.cn/cb'])).rejects.toThrow(/must use https/);
    await expect(make(['/relative'])).rejects.toThrow(/not an absolute URI/);
    await expect(make(['https://user:pw@a.example.cn/cb'])).rejects.toThrow(/user name or password/);
    await expect(make([])).rejects.toThrow(/at least one redirect URI/);
    await expect(make(['https://a.example.cn/cb'], { grantTypes: ['refresh_token'] })).rejects.toThrow(/redirect URIs need the authorization_code grant/);
    await expect(make([], { grantTypes: ['refresh_token', 'client_credentials'] })).rejects.toThrow(/refresh_token needs authorization_code/);
    await expect(make(['https://a.example.cn/cb'], { authMethod: 'private_key_jwt' })).rejects.toThrow(/jwks: private_key_jwt needs the client’s public keys/);
    for (const ok of ['https://a.example.cn/cb', 'http://localhost:8080/cb', 'http://127.0.0.1/cb', 'http://[::1]:3000/cb']) {
      const c = await make([ok]);
      expect((await findClientMetadata(database.db, c.clientId))?.redirect_uris).toEqual([ok]);
    }
  });

  it('allows outgoing requests to exactly the registered back-channel origins of live clients', async () => {
    const [w] = await listWindows(database.db);
    await createClient(database.db, { windowId: w!.id, name: 'bc', redirectUris: ['https://bc.example.cn/cb'], backchannelLogoutUri: 'https://bc.example.cn:8443/logout' });
    expect(await isRegisteredOutgoingOrigin(database.db, 'https://bc.example.cn:8443')).toBe(true);
    expect(await isRegisteredOutgoingOrigin(database.db, 'https://bc.example.cn')).toBe(false);
    expect(await isRegisteredOutgoingOrigin(database.db, 'http://169.254.169.254')).toBe(false);
    await database.db('windows').where({ id: w!.id }).update({ disabled_at: new Date() });
    expect(await isRegisteredOutgoingOrigin(database.db, 'https://bc.example.cn:8443')).toBe(false);
    await database.db('windows').where({ id: w!.id }).update({ disabled_at: null });
  });
});

describe('client scopes and keys', () => {
  const make = async (extra: Partial<NewClient>) => {
    const [w] = await listWindows(database.db);
    return createClient(database.db, { windowId: w!.id, name: 'k', redirectUris: ['https://k.example.cn/cb'], ...extra });
  };

  it('allows every scope by default, or the ones given, which must include openid', async () => {
    const all = await make({});
    expect((await getClient(database.db, all.clientId))?.scopes).toEqual(SCOPES);
    expect((await findClientMetadata(database.db, all.clientId))?.scope).toBe(SCOPES.join(' '));
    const narrow = await make({ scopes: ['openid', 'profile', 'openid'] });
    expect((await findClientMetadata(database.db, narrow.clientId))?.scope).toBe('openid profile');
    await expect(make({ scopes: ['profile'] })).rejects.toThrow(/scopes: must include openid/);
    await expect(make({ scopes: ['openid', 'admin'] as never })).rejects.toThrow(/scopes.1: each must be one of/);
  });

  it('takes an inline public key set for private_key_jwt, and nothing private', async () => {
    const jwk = publicKey();
    const c = await make({ authMethod: 'private_key_jwt', jwks: { keys: [jwk] } });
    expect(c.clientSecret).toBeUndefined();
    expect((await findClientMetadata(database.db, c.clientId))?.jwks).toEqual({ keys: [jwk] });
    expect((await getClient(database.db, c.clientId))?.jwks).toEqual({ keys: [jwk] });

    const keyPair = crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const privateJwk = keyPair.privateKey.export({ format: 'jwk' }) as Jwk;
    await expect(make({ authMethod: 'private_key_jwt', jwks: { keys: [privateJwk] } })).rejects.toThrow(/jwks.keys.0: must be a public key: remove its private parts \(d\)/);
    await expect(make({ authMethod: 'private_key_jwt', jwks: { keys: [{ kty: 'oct', k: 'c2VjcmV0' } as never] } })).rejects.toThrow(/kty: must be an RSA or EC public key/);
    await expect(make({ authMethod: 'private_key_jwt', jwks: { keys: [{ ...jwk, x: 'AAAA' }] } })).rejects.toThrow(/is not a valid EC public key/);
    await expect(make({ authMethod: 'private_key_jwt', jwks: { keys: [] } })).rejects.toThrow(/must hold at least one key/);
    await expect(make({ authMethod: 'private_key_jwt', jwks: [jwk] as never })).rejects.toThrow(/jwks: must be a JWK set/);
    await expect(make({ authMethod: 'private_key_jwt', jwks: { keys: [jwk] }, jwksUri: 'https://k.example.cn/jwks' })).rejects.toThrow(/jwks: give either jwks or jwksUri, not both/);
    await expect(make({ jwks: { keys: [jwk] } })).rejects.toThrow(/jwks: is only used with private_key_jwt/);
    await expect(make({ jwksUri: 'https://k.example.cn/jwks' })).rejects.toThrow(/jwksUri: is only used with private_key_jwt/);
  });
});

describe('editing a client', () => {
  const make = async (extra: Partial<NewClient> = {}) => {
    const [w] = await listWindows(database.db);
    return createClient(database.db, { windowId: w!.id, name: 'e', redirectUris: ['https://e.example.cn/cb'], ...extra });
  };

  it('merges a patch and keeps the rules of creation', async () => {
    const { clientId } = await make({ backchannelLogoutUri: 'https://e.example.cn/logout' });
    const renamed = await updateClient(database.db, clientId, { name: '新名字', scopes: ['openid', 'enterprise'], thirdParty: true });
    expect(renamed.before).toMatchObject({ name: 'e', scopes: SCOPES, thirdParty: false });
    expect(renamed.after).toMatchObject({ name: '新名字', scopes: ['openid', 'enterprise'], thirdParty: true, redirectUris: ['https://e.example.cn/cb'], backchannelLogoutUri: 'https://e.example.cn/logout' });
    expect((await findClientMetadata(database.db, clientId))?.scope).toBe('openid enterprise');

    // Each change is checked against the merged whole.
    await expect(updateClient(database.db, clientId, { grantTypes: ['client_credentials'] })).rejects.toThrow(/redirectUris: redirect URIs need the authorization_code grant/);
    const machine = await updateClient(database.db, clientId, { grantTypes: ['client_credentials'], redirectUris: [], backchannelLogoutUri: null });
    expect(machine.after).toMatchObject({ grantTypes: ['client_credentials'], redirectUris: [] });
    expect(machine.after).not.toHaveProperty('backchannelLogoutUri');
    expect(await findClientMetadata(database.db, clientId)).toMatchObject({ response_types: [], grant_types: ['client_credentials'] });
    await expect(updateClient(database.db, clientId, { jwksUri: 'https://e.example.cn/jwks' })).rejects.toThrow(/jwksUri: is only used with private_key_jwt/);
    await expect(updateClient(database.db, clientId, { redirectUris: ['http://e.example.cn/cb'] })).rejects.toThrow(/must use https/);
  });

  it('switches a private_key_jwt client between a jwks_uri and inline keys', async () => {
    const { clientId } = await make({ authMethod: 'private_key_jwt', jwksUri: 'https://e.example.cn/jwks' });
    await expect(updateClient(database.db, clientId, { jwks: { keys: [publicKey()] } })).rejects.toThrow(/not both/);
    await expect(updateClient(database.db, clientId, { jwksUri: null })).rejects.toThrow(/private_key_jwt needs the client’s public keys/);
    const { after } = await updateClient(database.db, clientId, { jwks: { keys: [publicKey()] }, jwksUri: null });
    expect(after.jwksUri).toBeUndefined();
    expect(after.jwks?.keys).toHaveLength(1);
  });

  it('cannot move a client to another window or change how it authenticates', async () => {
    const { clientId } = await make();
    await expect(updateClient(database.db, clientId, { windowId: 1 } as never)).rejects.toThrow(/windowId/);
    await expect(updateClient(database.db, clientId, { authMethod: 'none' } as never)).rejects.toThrow(/authMethod/);
    await expect(updateClient(database.db, 'no-such-client', { name: 'x' })).rejects.toBeInstanceOf(NotFoundError);
  });

  it('lists a window’s clients, disabled ones included, without any secret', async () => {
    const w = await createWindow(database.db, { kind: 'service', name: '列出客户端的机构' });
    const a = await createClient(database.db, { windowId: w.id, name: 'a', redirectUris: ['https://a.example.cn/cb'] });
    const b = await createClient(database.db, { windowId: w.id, name: 'b', redirectUris: ['https://b.example.cn/cb'] });
    await rotateClientSecret(database.db, a.clientId);
    const off = await setClientDisabled(database.db, b.clientId, true);
    expect([off.before.disabled, off.after.disabled]).toEqual([false, true]);
    expect(await findClientMetadata(database.db, b.clientId)).toBeUndefined();
    const listed = await listClients(database.db, w.id);
    // Both may carry the same created_at (the embedded database's clock counts milliseconds), so by name.
    expect(listed.map((c) => [c.name, c.disabled]).toSorted()).toEqual([['a', false], ['b', true]]);
    const text = JSON.stringify(listed);
    expect(text).not.toContain(a.clientSecret!);
    expect(text).not.toContain(sha256(a.clientSecret!));
    expect(text).not.toMatch(/secret"|digest/i);
    expect((await setClientDisabled(database.db, b.clientId, false)).after.disabled).toBe(false);
    await expect(listClients(database.db, 999_999)).rejects.toBeInstanceOf(NotFoundError);
  });
});

describe('client secret rotation', () => {
  const make = async (extra: Partial<NewClient> = {}) => {
    const [w] = await listWindows(database.db);
    return createClient(database.db, { windowId: w!.id, name: 'r', redirectUris: ['https://r.example.cn/cb'], ...extra });
  };

  it('keeps the replaced digest for the grace period only', async () => {
    const { clientId, clientSecret } = await make();
    const before = Date.now();
    const rotated = await rotateClientSecret(database.db, clientId, 3600);
    expect(rotated.clientSecret).not.toBe(clientSecret);
    expect(rotated.previousSecretValidUntil!.getTime()).toBeGreaterThan(before + 3590_000);
    expect(rotated.previousSecretValidUntil!.getTime()).toBeLessThan(Date.now() + 3610_000);
    expect(await findClientMetadata(database.db, clientId)).toMatchObject({ client_secret: sha256(rotated.clientSecret), client_secret_previous: sha256(clientSecret!) });
    const seen = await getClient(database.db, clientId);
    expect(seen?.secretRotatedAt).toBeInstanceOf(Date);
    expect(seen?.previousSecretValidUntil).toEqual(rotated.previousSecretValidUntil);

    // Past its expiry the previous digest is no longer handed to the provider.
    await database.db('clients').where({ client_id: clientId }).update({ previous_secret_expires_at: database.db.raw("now() - interval '1 second'") });
    expect(await findClientMetadata(database.db, clientId)).not.toHaveProperty('client_secret_previous');
    expect((await getClient(database.db, clientId))?.previousSecretValidUntil).toBeNull();

    const immediate = await rotateClientSecret(database.db, clientId, 0);
    expect(immediate.previousSecretValidUntil).toBeNull();
    expect(await findClientMetadata(database.db, clientId)).toEqual(expect.not.objectContaining({ client_secret_previous: expect.anything() }));
    expect((await findClientMetadata(database.db, clientId))?.client_secret).toBe(sha256(immediate.clientSecret));
  });

  it('refuses a bad grace period, a client without a secret and an unknown client', async () => {
    const { clientId } = await make();
    for (const grace of [-1, 1.5, 30 * 24 * 3600 + 1, Number.NaN]) {
      await expect(rotateClientSecret(database.db, clientId, grace)).rejects.toMatchObject({ field: 'graceSeconds' });
    }
    const pkjwt = await make({ authMethod: 'private_key_jwt', jwks: { keys: [publicKey()] } });
    await expect(rotateClientSecret(database.db, pkjwt.clientId)).rejects.toMatchObject({ field: 'authMethod' });
    const pub = await make({ authMethod: 'none', grantTypes: ['authorization_code'] });
    await expect(rotateClientSecret(database.db, pub.clientId)).rejects.toMatchObject({ field: 'authMethod' });
    await expect(rotateClientSecret(database.db, 'no-such-client')).rejects.toBeInstanceOf(NotFoundError);
  });
});

describe('removing a client', () => {
  it('deletes the client and every artifact issued to it', async () => {
    const [w] = await listWindows(database.db);
    const { clientId } = await createClient(database.db, { windowId: w!.id, name: 'd', redirectUris: ['https://d.example.cn/cb'] });
    const other = await createClient(database.db, { windowId: w!.id, name: 'o', redirectUris: ['https://o.example.cn/cb'] });
    const artifact = (id: string, owner: string) => ({ model: 'AccessToken', id, payload: JSON.stringify({ clientId: owner }) });
    await database.db('oidc_artifacts').insert([artifact('mine', clientId), artifact('theirs', other.clientId)]);
    const gone = await deleteClient(database.db, clientId);
    expect(gone).toMatchObject({ clientId, name: 'd' });
    expect(await getClient(database.db, clientId)).toBeUndefined();
    expect((await database.db('oidc_artifacts').whereIn('id', ['mine', 'theirs'])).map((r) => r.id)).toEqual(['theirs']);
    await expect(deleteClient(database.db, clientId)).rejects.toBeInstanceOf(NotFoundError);
  });

  it('leaves the server’s own clients alone', async () => {
    await ensureAccountCenterClient(database.db, 'http://localhost:3000');
    expect(isInternalClient(ACCOUNT_CENTER_CLIENT_ID)).toBe(true);
    expect(isInternalClient('sme-passport-anything')).toBe(true);
    expect(isInternalClient('a-window-client')).toBe(false);
    for (const attempt of [
      () => updateClient(database.db, ACCOUNT_CENTER_CLIENT_ID, { name: 'x' }),
      () => setClientDisabled(database.db, ACCOUNT_CENTER_CLIENT_ID, true),
      () => deleteClient(database.db, ACCOUNT_CENTER_CLIENT_ID),
      () => rotateClientSecret(database.db, ACCOUNT_CENTER_CLIENT_ID),
    ]) {
      await expect(attempt()).rejects.toMatchObject({ field: 'clientId', message: 'clientId: is managed by the server itself' });
    }
    expect(await findClientMetadata(database.db, ACCOUNT_CENTER_CLIENT_ID)).toMatchObject({ redirect_uris: ['http://localhost:3000/account/callback'] });
    expect(await getClient(database.db, ACCOUNT_CENTER_CLIENT_ID)).toMatchObject({ disabled: false });
  });

  it('registers the admin console once, and follows the issuer when it changes', async () => {
    const masterKey = crypto.randomBytes(32);
    await ensureAdminConsoleClient(database.db, 'http://localhost:3000', masterKey);
    await ensureAdminConsoleClient(database.db, 'https://passport.example.cn', masterKey);
    expect(await findClientMetadata(database.db, ADMIN_CONSOLE_CLIENT_ID)).toMatchObject({
      redirect_uris: ['https://passport.example.cn/admin/callback'],
      post_logout_redirect_uris: ['https://passport.example.cn/admin/signed-out'],
      token_endpoint_auth_method: 'client_secret_basic',
      client_secret: sha256(adminConsoleSecret(masterKey)),
    });
    expect(Number((await database.db('clients').where({ client_id: ADMIN_CONSOLE_CLIENT_ID }).count({ n: '*' }))[0]!.n)).toBe(1);
  });
});
