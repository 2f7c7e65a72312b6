import type { Db } from '../db/connect.ts';
import { COMPREHENSIVE_WINDOWS, PROVINCE } from './comprehensive.ts';
import { createWindow, listWindows } from './windows.ts';

// The registry's starting facts: the provincial platform and the 28 comprehensive
// windows. Runs once, on an empty registry; two nodes starting together seed once.
export async function seedWindowRegistry(db: Db): Promise<boolean> {
  return db.transaction(async (trx) => {
    await trx.raw("SELECT pg_advisory_xact_lock(hashtext('sme-passport:seed-windows'))");
    if ((await listWindows(trx)).length > 0) return false;
    for (const window of [PROVINCE, ...COMPREHENSIVE_WINDOWS]) await createWindow(trx, window);
    return true;
  });
}
