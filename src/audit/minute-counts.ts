import type { Db } from '../db/connect.ts';
import { recordEvent, type AuditEvent } from './trail.ts';

// Things too frequent for a record each (tokens, failed client authentications) are
// counted per minute in a table of their own and become audit records once their minute
// is over, a small batch per transaction (each holds the audit trail's lock until it
// commits). Any node may run it; rows another node is rolling up are skipped. A minute is
// read ROLL_UP_DELAY after it ends: nodes write their counts once a second
// (pending-counts.ts), and the last of them should land before the minute is read, so
// that it goes on record as one record per key.

const ROLL_UP_DELAY = "interval '10 seconds'";

export type MinuteCounts<Row extends { minute: Date }> = { table: string; key: Array<keyof Row & string>; toEvent(row: Row): AuditEvent };

export async function rollUpMinuteCounts<Row extends { minute: Date }>(db: Db, counts: MinuteCounts<Row>, batch = 50): Promise<number> {
  let total = 0;
  for (let done = await rollUpBatch(db, counts, batch); done > 0; done = await rollUpBatch(db, counts, batch)) total += done;
  return total;
}

async function rollUpBatch<Row extends { minute: Date }>(db: Db, counts: MinuteCounts<Row>, batch: number): Promise<number> {
  return db.transaction(async (trx) => {
    const rows: Row[] = await trx(counts.table)
      .where('minute', '<', trx.raw(`date_trunc('minute', now() - ${ROLL_UP_DELAY})`))
      .orderBy(counts.key)
      .limit(batch)
      .forUpdate()
      .skipLocked()
      .select();
    for (const row of rows) {
      await recordEvent(trx, counts.toEvent(row));
      await trx(counts.table).where(Object.fromEntries(counts.key.map((k) => [k, row[k]]))).delete();
    }
    return rows.length;
  });
}
