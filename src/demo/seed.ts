import crypto from 'node:crypto';
import type { Db } from '../db/connect.ts';
import { createAccount, findAccountByIdOrUsername } from '../accounts/accounts.ts';
import type { PasswordPolicy } from '../accounts/password-policy.ts';
import { createEnterprise, findEnterprise } from '../enterprises/enterprises.ts';
import { addMember } from '../enterprises/memberships.ts';
import { completeUscc } from '../enterprises/uscc.ts';
import { createClient, findClientMetadata } from '../windows/clients.ts';
import { listWindows } from '../windows/windows.ts';

// The demo: two window sites served by this same process, and one person to sign in
// with. Only outside production (config.ts refuses DEMO in production).

export const DEMO_ACCOUNT = { username: 'demo', password: 'henan-sme-2014', displayName: '演示用户', phone: '13800000000' };

// Two example enterprises the demo person belongs to, so the demo shows the choice of
// whom to act for. Their names say they are examples.
export const DEMO_ENTERPRISES = [
  { uscc: completeUscc('9141010000000001'), name: '郑州示例科技有限公司（演示）', type: 'enterprise', region: '410100', status: 'verified', role: 'legal_rep' },
  { uscc: completeUscc('9241030000000002'), name: '洛阳示例商店（演示）', type: 'individual_business', region: '410300', status: 'pending', role: 'operator' },
] as const;

// Each site looks like a site of its own (its name, its colour), so a person sees
// that the sign-in happens elsewhere.
export const DEMO_SITES = [
  { slug: 'zhengzhou', region: '410100', colour: '#1565c0' },
  { slug: 'luoyang', region: '410300', colour: '#2e7d32' },
] as const;

export const demoClientId = (slug: string) => `demo-${slug}`;

// The demo sites need their plain secret at every start, but only its digest is
// stored: derive it from the master key instead of keeping it anywhere.
export const demoClientSecret = (masterKey: Buffer, slug: string) =>
  crypto.createHmac('sha256', masterKey).update(`demo-client-secret:${slug}`).digest('base64url');

export async function seedDemo(db: Db, masterKey: Buffer, issuer: string, policy: PasswordPolicy): Promise<void> {
  await db.transaction(async (trx) => {
    await trx.raw("SELECT pg_advisory_xact_lock(hashtext('sme-passport:seed-demo'))");
    const windows = await listWindows(trx);
    for (const site of DEMO_SITES) {
      if (await findClientMetadata(trx, demoClientId(site.slug))) continue;
      const window = windows.find((w) => w.kind === 'comprehensive' && w.region === site.region);
      if (!window) continue;
      const base = `${issuer}/demo/${site.slug}`;
      await createClient(
        trx,
        {
          windowId: window.id,
          name: `${window.name}（演示站点）`,
          redirectUris: [`${base}/callback`],
          postLogoutRedirectUris: [`${base}/`],
          backchannelLogoutUri: `${base}/backchannel-logout`,
        },
        { clientId: demoClientId(site.slug), secret: demoClientSecret(masterKey, site.slug) },
      );
    }
    const person = (await findAccountByIdOrUsername(trx, DEMO_ACCOUNT.username)) ?? (await createAccount(trx, DEMO_ACCOUNT, policy));
    for (const { role, ...example } of DEMO_ENTERPRISES) {
      if (await findEnterprise(trx, example.uscc)) continue;
      const enterprise = await createEnterprise(trx, example);
      await addMember(trx, { enterpriseId: enterprise.id, accountId: person.id, role });
    }
  });
}
