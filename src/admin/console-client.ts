import crypto from 'node:crypto';
import type { Db } from '../db/connect.ts';
import { createClient, findClientMetadata, updateRedirectUris } from '../windows/clients.ts';
import { listWindows } from '../windows/windows.ts';

// The admin console signs administrators in through the provider like any window, as
// a confidential first-party client of the provincial platform that this server
// registers itself, and calls the admin API with the access token it receives.
export const ADMIN_CONSOLE_CLIENT_ID = 'sme-passport-admin-console';

// Every node needs the plain secret, but only its digest is stored: derived from the
// master key, it is never kept anywhere.
export const adminConsoleSecret = (masterKey: Buffer) => crypto.createHmac('sha256', masterKey).update('admin-console-client-secret').digest('base64url');

export const adminConsoleUris = (issuer: string) => ({ redirect: `${issuer}/admin/callback`, postLogout: `${issuer}/admin/signed-out` });

export async function ensureAdminConsoleClient(db: Db, issuer: string, masterKey: Buffer): Promise<void> {
  const uris = adminConsoleUris(issuer);
  await db.transaction(async (trx) => {
    await trx.raw("SELECT pg_advisory_xact_lock(hashtext('sme-passport:admin-console-client'))");
    const existing = await findClientMetadata(trx, ADMIN_CONSOLE_CLIENT_ID);
    if (existing) {
      if (existing.redirect_uris.join(' ') !== uris.redirect || existing.post_logout_redirect_uris.join(' ') !== uris.postLogout) {
        await updateRedirectUris(trx, ADMIN_CONSOLE_CLIENT_ID, [uris.redirect], [uris.postLogout]);
      }
      return;
    }
    const province = (await listWindows(trx)).find((w) => w.kind === 'province');
    if (!province) throw new Error('the window registry has no provincial platform');
    await createClient(
      trx,
      {
        windowId: province.id,
        name: '统一身份认证 · 管理控制台',
        redirectUris: [uris.redirect],
        postLogoutRedirectUris: [uris.postLogout],
        authMethod: 'client_secret_basic',
        grantTypes: ['authorization_code'],
      },
      { clientId: ADMIN_CONSOLE_CLIENT_ID, secret: adminConsoleSecret(masterKey) },
    );
  });
}
