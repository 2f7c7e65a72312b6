import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createClient, findClientMetadata, isRegisteredOutgoingOrigin } from '../src/windows/clients.ts';
import { seedWindowRegistry } from '../src/windows/seed.ts';
import { createWindow, listWindows } from '../src/windows/windows.ts';
import { InputError } from '../src/errors.ts';
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
    await expect(make(['https://a.example.cn/cb'], { authMethod: 'private_key_jwt' })).rejects.toThrow(/jwks_uri/);
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
