import type { Db } from './connect.ts';

// Writes made outside a transaction wait in a queue per database handle and go in
// together: all that arrived while the previous group was being written, in one
// statement and one commit, so a node under load sends one round trip for many writes
// instead of one each. Each caller still waits for its own write. A group the database
// refuses is written again one by one, so that one bad write does not take the others
// with it and each caller hears its own answer.
export function groupedWrites<Item>(writeGroup: (db: Db, items: Item[]) => Promise<unknown>, maxGroup: number): (db: Db, item: Item) => Promise<void> {
  type Waiting = { item: Item; resolve: () => void; reject: (err: unknown) => void };
  const queues = new WeakMap<Db, { waiting: Waiting[]; writing: boolean }>();

  async function drain(db: Db, queue: { waiting: Waiting[]; writing: boolean }): Promise<void> {
    try {
      while (queue.waiting.length > 0) {
        const group = queue.waiting.splice(0, maxGroup);
        try {
          await writeGroup(db, group.map((w) => w.item));
          for (const w of group) w.resolve();
        } catch (err) {
          if (group.length === 1) group[0]!.reject(err);
          else for (const w of group) await writeGroup(db, [w.item]).then(() => w.resolve(), w.reject);
        }
      }
    } finally {
      queue.writing = false;
    }
  }

  return (db, item) =>
    new Promise((resolve, reject) => {
      let queue = queues.get(db);
      if (!queue) queues.set(db, (queue = { waiting: [], writing: false }));
      queue.waiting.push({ item, resolve, reject });
      if (queue.writing) return;
      queue.writing = true;
      // After what else this tick writes.
      const started = queue;
      queueMicrotask(() => void drain(db, started));
    });
}
