import type { Db } from '../db/connect.ts';
import type { Logger } from '../http/errors.ts';

// Things too frequent for a record each (tokens, failed client authentications) are
// counted per minute (minute-counts.ts turns each minute's rows into records). A server
// counts them in memory and adds them to their tables once a second, one statement per
// table: no row is updated on the request path, so the tokens of one client do not queue
// behind one row lock. A crash loses at most the last second of counts of that node;
// nothing else is lost: a failed write keeps its counts for the next second, and past
// MAX_PENDING_KEYS a count is written at once, by a statement of its own. Where no server
// flushes (the command line), every count is written at once.

export type CountTable = {
  table: string;
  // Every column but minute and count, with its SQL type; `key` are those of the
  // primary key (with minute). The others keep the value of the first count of a key.
  columns: Record<string, 'text' | 'integer'>;
  key: string[];
};

type Values = Record<string, string | number | null>;
type Pending = { table: CountTable; minute: string; values: Values; n: number };
type Node = { counts: Map<string, Pending>; flushing?: Promise<void> };

export const MAX_PENDING_KEYS = 10_000;
const nodes = new WeakMap<Db, Node>();

// The node's clock decides the minute; a count that arrives after its minute was rolled
// up (a clock late by more than minute-counts.ts waits) becomes a second record of that
// minute, never a lost one.
// (The text of the current minute is made once a minute, not once a count.)
let current = { start: -1, text: '' };
const minuteOf = (ms: number) => {
  const start = ms - (ms % 60_000);
  if (start !== current.start) current = { start, text: new Date(start).toISOString() };
  return current.text;
};

export function addCount(db: Db, table: CountTable, values: Values): Promise<void> {
  const minute = minuteOf(Date.now());
  const node = nodes.get(db);
  if (!node) return addToTable(db, table, [{ table, minute, values, n: 1 }]);
  const id = JSON.stringify([table.table, minute, ...table.key.map((k) => values[k])]);
  const pending = node.counts.get(id);
  if (pending) pending.n += 1;
  else if (node.counts.size < MAX_PENDING_KEYS) node.counts.set(id, { table, minute, values, n: 1 });
  else {
    void flushOnce(db, node).catch(() => undefined);
    return addToTable(db, table, [{ table, minute, values, n: 1 }]);
  }
  return Promise.resolve();
}

export const pendingCountKeys = (db: Db): number => nodes.get(db)?.counts.size ?? 0;

// Counts of this process for `db` kept in memory and written every second, until stop()
// writes what is left.
export function flushCountsEverySecond(db: Db, logger: Logger): { stop(): Promise<void> } {
  const node: Node = { counts: new Map() };
  nodes.set(db, node);
  const timer = setInterval(() => {
    flushOnce(db, node).catch((err) => logger.error(`writing counts failed; ${node.counts.size} kept to try again`, err));
  }, 1000);
  timer.unref();
  return {
    async stop() {
      clearInterval(timer);
      // Counts made from now on are written at once.
      if (nodes.get(db) === node) nodes.delete(db);
      try {
        await flushNode(db, node);
      } catch (err) {
        logger.error(`writing counts failed while closing: ${[...node.counts.values()].reduce((n, p) => n + p.n, 0)} counts are lost`, err);
      }
    },
  };
}

// Writes every count made before the call (tests, and closing).
export async function flushPendingCounts(db: Db): Promise<void> {
  const node = nodes.get(db);
  if (node) await flushNode(db, node);
}

async function flushNode(db: Db, node: Node): Promise<void> {
  await node.flushing?.catch(() => undefined);
  await flushOnce(db, node);
}

// One write at a time per node: a second that finds one still going leaves it be.
function flushOnce(db: Db, node: Node): Promise<void> {
  node.flushing ??= writePending(db, node).finally(() => (node.flushing = undefined));
  return node.flushing;
}

async function writePending(db: Db, node: Node): Promise<void> {
  if (node.counts.size === 0) return;
  const taken = node.counts;
  node.counts = new Map();
  const byTable = Map.groupBy(taken, ([, p]) => p.table);
  let failure: unknown;
  for (const [table, entries] of byTable) {
    try {
      await addToTable(db, table, entries.map(([, p]) => p));
    } catch (err) {
      failure = err;
      for (const [id, p] of entries) {
        const since = node.counts.get(id);
        if (since) since.n += p.n;
        else node.counts.set(id, p);
      }
    }
  }
  if (failure) throw failure;
}

async function addToTable(db: Db, table: CountTable, pending: Pending[]): Promise<void> {
  const names = Object.keys(table.columns);
  const rows = pending.map((p) => ({ ...p.values, minute: p.minute, count: p.n }));
  const types = names.map((c) => `${c} ${table.columns[c]}`).join(', ');
  await db.raw(
    `INSERT INTO ${table.table} (minute, ${names.join(', ')}, count)
     SELECT minute, ${names.join(', ')}, count FROM jsonb_to_recordset(?::jsonb) AS r(minute timestamptz, ${types}, count integer)
     ON CONFLICT (minute, ${table.key.join(', ')}) DO UPDATE SET count = ${table.table}.count + excluded.count`,
    [JSON.stringify(rows)],
  );
}
