import type { Db } from '../db/connect.ts';
import { createClient, findClientMetadata, updateRedirectUris } from '../windows/clients.ts';
import { listWindows } from '../windows/windows.ts';

// The account center signs people in through the provider like any window does, as a
// first-party client of the provincial platform that this server registers itself.
export const ACCOUNT_CENTER_CLIENT_ID = 'sme-passport-account-center';

export async function ensureAccountCenterClient(db: Db, issuer: string): Promise<void> {
  const redirectUri = `${issuer}/account/callback`;
  await db.transaction(async (trx) => {
    await trx.raw("SELECT pg_advisory_xact_lock(hashtext('sme-passport:account-center-client'))");
    const existing = await findClientMetadata(trx, ACCOUNT_CENTER_CLIENT_ID);
    if (existing) {
      if (existing.redirect_uris.join(' ') !== redirectUri) await updateRedirectUris(trx, ACCOUNT_CENTER_CLIENT_ID, [redirectUri]);
      return;
    }
    const province = (await listWindows(trx)).find((w) => w.kind === 'province');
    if (!province) throw new Error('the window registry has no provincial platform');
    await createClient(
      trx,
      { windowId: province.id, name: '统一身份认证 · 账号中心', redirectUris: [redirectUri], authMethod: 'none', grantTypes: ['authorization_code'] },
      { clientId: ACCOUNT_CENTER_CLIENT_ID },
    );
  });
}
