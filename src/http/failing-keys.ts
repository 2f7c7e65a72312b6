import type { Db } from '../db/connect.ts';
import { heardAllBeforeThisRequest } from '../db/cache.ts';
import { changeFeedOf, FAILURES_CHANNEL } from '../db/change-feed.ts';

// Which limit keys have had a failure in their current window, known to every node
// without a read: a failure counted with hit(db, key, rule, FAILURES_CHANNEL) is
// announced on that channel, and each node keeps the keys it heard of until their
// window ends. A key no node has announced cannot be used up, so its check needs no
// statement; a key that has failures is checked in the database as before. A key not
// heard of is trusted only after the feed's fence (every failure committed before the
// request came in has been heard). While the node's notification connection is down
// (and until the keys with failures are loaded again once it is back), every key is
// checked.

// Kept this much past the window's end: the database's clock decides the window, the
// node's the forgetting.
const CLOCK_MARGIN_MS = 5_000;
// Beyond this many keys (a flood from many addresses) every key is checked in the
// database until the longest window has passed, and then the keys are loaded again:
// never a key forgotten while it may be used up.
const MAX_KEYS = 100_000;

export type FailingKeys = {
  // False only when the key certainly has no failure in its window.
  mayBeUsedUp(key: string): Promise<boolean>;
  // This node counted a failure; its window ends at `until` (ms since the epoch).
  failed(key: string, until: number): void;
};

type Announcement = { key: string; until: number };

function parseAnnouncement(payload: string): Announcement | undefined {
  try {
    const value = JSON.parse(payload) as Partial<Announcement>;
    return typeof value.key === 'string' && typeof value.until === 'number' ? { key: value.key, until: value.until } : undefined;
  } catch {
    return undefined;
  }
}

export function failingKeys(db: Db, prefixes: string[], maxWindowSeconds: number): FailingKeys {
  const feed = changeFeedOf(db);
  const keys = new Map<string, number>();
  let known = false;
  let loading = 0;
  let overflowed: NodeJS.Timeout | undefined;

  const remember = (key: string, until: number) => {
    if (!prefixes.some((prefix) => key.startsWith(prefix))) return;
    if (overflowed) return;
    if (keys.size >= MAX_KEYS && !keys.has(key)) {
      known = false;
      keys.clear();
      overflowed = setTimeout(() => {
        overflowed = undefined;
        if (feed?.state === 'up') reload();
      }, maxWindowSeconds * 1000 + CLOCK_MARGIN_MS);
      overflowed.unref();
      return;
    }
    keys.set(key, Math.max(keys.get(key) ?? 0, until + CLOCK_MARGIN_MS));
  };

  // What the database holds now, read after subscribing, so that nothing falls between.
  const load = async () => {
    if (overflowed) return;
    const attempt = ++loading;
    known = false;
    keys.clear();
    const rows = (await db('rate_limits')
      .where((q) => {
        for (const prefix of prefixes) q.orWhere('key', 'like', `${prefix}%`);
      })
      .where('window_start', '>', db.raw("now() - ? * interval '1 second'", [maxWindowSeconds]))
      .select('key', db.raw('extract(epoch FROM window_start)::float8 * 1000 AS start_ms'))) as Array<{ key: string; start_ms: number }>;
    if (attempt !== loading || feed?.state !== 'up' || overflowed) return;
    for (const row of rows) remember(row.key, row.start_ms + maxWindowSeconds * 1000);
    known = !overflowed;
  };

  feed?.subscribe(FAILURES_CHANNEL, (payload) => {
    const announced = parseAnnouncement(payload);
    if (announced) remember(announced.key, announced.until);
  });
  const reload = () => {
    load().catch(() => {
      // Unknown until the next time the feed comes up: every key is checked.
      known = false;
    });
  };
  feed?.onState((state) => {
    known = false;
    keys.clear();
    if (state === 'up') reload();
  });
  if (feed?.state === 'up') reload();

  const heardOf = (key: string) => {
    const until = keys.get(key);
    if (until === undefined) return false;
    if (until > Date.now()) return true;
    keys.delete(key);
    return false;
  };
  const trusted = () => known && feed?.state === 'up';

  return {
    async mayBeUsedUp(key) {
      if (!feed || !trusted() || heardOf(key)) return true;
      try {
        await heardAllBeforeThisRequest(feed);
      } catch {
        return true;
      }
      return !trusted() || heardOf(key);
    },
    failed: remember,
  };
}
