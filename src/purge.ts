import type { Db } from './db/connect.ts';
import { liveSessionUids, purgeExpiredArtifacts } from './oidc/adapter.ts';
import { purgeEndedChoices } from './enterprises/acting.ts';
import { purgeStaleThrottles } from './accounts/lockout.ts';
import { purgeOldWindows } from './http/rate-limit.ts';
import { purgeEndedSessionDetails } from './oidc/session-details.ts';
import { purgeOldCodes } from './accounts/codes.ts';
import { recordExpiredSessions } from './oidc/sessions.ts';
import { rollUpTokenCounts } from './audit/token-counts.ts';
import { rollUpClientAuthCounts } from './audit/client-auth-counts.ts';
import { purgeSettledDeliveries } from './oidc/logout-deliveries.ts';

// Everything that expires, in one pass; each module deletes its own rows. Any node may
// run it at any time (the server on a timer, operators with `sme-passport purge`).
// Expired sessions and the counts of past minutes (tokens, failed client
// authentications) go on the audit trail first.
export async function purgeExpired(db: Db): Promise<number> {
  await rollUpTokenCounts(db);
  await rollUpClientAuthCounts(db);
  let deleted = 0;
  for (let batch = await recordExpiredSessions(db); batch > 0; batch = await recordExpiredSessions(db)) deleted += batch;
  deleted += await purgeExpiredArtifacts(db);
  deleted += await purgeEndedChoices(db, liveSessionUids);
  deleted += await purgeStaleThrottles(db);
  deleted += await purgeOldWindows(db);
  deleted += await purgeEndedSessionDetails(db);
  deleted += await purgeOldCodes(db);
  deleted += await purgeSettledDeliveries(db);
  return deleted;
}
