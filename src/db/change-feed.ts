import pg from 'pg';
import type { PGlite } from '@electric-sql/pglite';
import type { Logger } from '../http/errors.ts';
import type { Database, Db } from './connect.ts';

// A node's one LISTEN connection: what other nodes (and the command line, and psql)
// change is announced on it (migrations/20261201000020_change_notifications.ts), and
// the node's caches (cache.ts) trust what they hold only while it is up.
//
// On PostgreSQL it is a connection of its own, outside the pool: a pooled connection
// goes back to the pool and forgets its LISTEN. It is checked with a statement every
// HEARTBEAT_MS, so a connection that died without a word is noticed, and opened again
// every RECONNECT_MS while it is down. The embedded database is in this process: its
// notifications cannot be lost, and the feed is up from start to close.

export const CHANGES_CHANNEL = 'sme_passport_changes';
// Failures counted against a limit (http/failing-keys.ts).
export const FAILURES_CHANNEL = 'sme_passport_failures';

export type FeedState = 'up' | 'down' | 'closed';

export type ChangeFeed = {
  readonly state: FeedState;
  // Handlers of a channel the feed does not listen on would never be called: refused.
  subscribe(channel: string, handler: (payload: string) => void): () => void;
  onState(handler: (state: FeedState) => void): () => void;
  // Resolves once every change committed before `since` (process.hrtime.bigint()) has
  // been delivered: PostgreSQL sends a listening connection the notifications pending
  // for it before the answer to its next statement, so an answer to a statement sent
  // after `since` is that proof. Concurrent callers share one statement; rejects if the
  // connection is lost.
  fence(since: bigint): Promise<void>;
  close(): Promise<void>;
};

const RECONNECT_MS = 1000;
const HEARTBEAT_MS = 5000;
// A heartbeat not answered in this time means a dead connection.
const HEARTBEAT_TIMEOUT_MS = 5000;

// The name a node's LISTEN connection has in pg_stat_activity.
export const LISTEN_APPLICATION_NAME = 'sme-passport change feed';

type Deliver = (channel: string, payload: string) => void;
// One open LISTEN connection; `lost` is called at most once, when it goes.
type Connection = { heartbeat(): Promise<unknown>; stop(): Promise<void> };
type Source = (channels: string[], deliver: Deliver, lost: (err: unknown) => void) => Promise<Connection>;

function postgresSource(url: string): Source {
  return async (channels, deliver, lost) => {
    const client = new pg.Client({ connectionString: url, application_name: LISTEN_APPLICATION_NAME, keepAlive: true });
    let gone = false;
    const fail = (err: unknown) => {
      if (gone) return;
      gone = true;
      lost(err);
    };
    client.on('error', fail);
    client.on('end', () => fail(new Error('the change feed connection closed')));
    client.on('notification', (n) => deliver(n.channel, n.payload ?? ''));
    try {
      await client.connect();
      for (const channel of channels) await client.query(`LISTEN ${pg.escapeIdentifier(channel)}`);
    } catch (err) {
      gone = true;
      client.end().catch(() => {});
      throw err;
    }
    // One statement at a time on the connection (pg deprecates queueing a query behind
    // another on one client): a fence asked for while one is on its way is sent when
    // that one is answered, as PostgreSQL would have answered them anyway.
    let previous: Promise<unknown> = Promise.resolve();
    return {
      heartbeat: () => {
        const answered = previous.then(() => client.query('SELECT 1'));
        previous = answered.catch(() => {});
        return answered;
      },
      async stop() {
        gone = true;
        // A connection that died silently may never answer a goodbye: not waited for.
        client.end().catch(() => {});
      },
    };
  };
}

function embeddedSource(pglite: PGlite): Source {
  return async (channels, deliver) => {
    const stops = await Promise.all(channels.map((channel) => pglite.listen(channel, (payload) => deliver(channel, payload))));
    return {
      heartbeat: async () => {},
      async stop() {
        if (!pglite.closed) await Promise.all(stops.map((stop) => stop()));
      },
    };
  };
}

function runFeed(source: Source, channels: string[], logger: Logger): ChangeFeed & { started: Promise<void> } {
  let state: FeedState = 'down';
  let connection: Connection | undefined;
  let retry: NodeJS.Timeout | undefined;
  // Said once per outage: that notifications are gone, then that they are back.
  let complained = false;
  const handlers = new Map(channels.map((c) => [c, new Set<(payload: string) => void>()]));
  const stateHandlers = new Set<(state: FeedState) => void>();

  const setState = (next: FeedState) => {
    if (state === next) return;
    state = next;
    for (const handler of stateHandlers) handler(next);
  };
  const deliver: Deliver = (channel, payload) => {
    for (const handler of handlers.get(channel) ?? []) handler(payload);
  };
  const scheduleConnect = () => {
    if (state === 'closed' || retry) return;
    retry = setTimeout(() => {
      retry = undefined;
      void connect();
    }, RECONNECT_MS);
    retry.unref();
  };
  // Only the open connection can be lost: one still opening fails in connect instead.
  const lose = (from: Connection | undefined, err: unknown) => {
    if (state === 'closed' || !from || connection !== from) return;
    connection = undefined;
    void from?.stop();
    if (!complained) logger.error('change notifications lost: every cache is bypassed until they are back', err);
    complained = true;
    setState('down');
    scheduleConnect();
  };
  const connect = async () => {
    let opened: Connection | undefined;
    try {
      opened = await source(channels, deliver, (err) => lose(opened, err));
    } catch (err) {
      if (!complained && state !== 'closed') logger.error('change notifications cannot be received: every cache is bypassed until they can', err);
      complained = true;
      scheduleConnect();
      return;
    }
    if (state === 'closed') return void opened.stop();
    connection = opened;
    if (complained) logger.info('change notifications are back: caching again');
    complained = false;
    setState('up');
  };

  const heartbeat = setInterval(() => {
    const current = connection;
    if (!current || state !== 'up') return;
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise((_, reject) => {
      timer = setTimeout(() => reject(new Error(`the change feed connection did not answer in ${HEARTBEAT_TIMEOUT_MS} ms`)), HEARTBEAT_TIMEOUT_MS);
    });
    Promise.race([current.heartbeat(), timeout])
      .catch((err) => lose(current, err))
      .finally(() => clearTimeout(timer));
  }, HEARTBEAT_MS);
  heartbeat.unref();

  // The last statement sent as a fence, and the one gathering callers for this turn of
  // the event loop.
  let lastFence: { sentAt: bigint; answered: Promise<void> } | undefined;
  let nextFence: Promise<void> | undefined;
  const fence = (since: bigint): Promise<void> => {
    if (lastFence && lastFence.sentAt >= since) return lastFence.answered;
    nextFence ??= new Promise<void>((resolve, reject) => {
      setImmediate(() => {
        nextFence = undefined;
        const current = connection;
        if (!current) return reject(new Error('the change feed is down'));
        const sentAt = process.hrtime.bigint();
        const answered = current.heartbeat().then(() => {});
        answered.catch((err) => lose(current, err));
        lastFence = { sentAt, answered };
        answered.then(resolve, reject);
      });
    });
    return nextFence;
  };

  return {
    get state() {
      return state;
    },
    subscribe(channel, handler) {
      const set = handlers.get(channel);
      if (!set) throw new Error(`the change feed does not listen on ${channel}`);
      set.add(handler);
      return () => void set.delete(handler);
    },
    onState(handler) {
      stateHandlers.add(handler);
      return () => void stateHandlers.delete(handler);
    },
    fence,
    async close() {
      clearInterval(heartbeat);
      clearTimeout(retry);
      const open = connection;
      connection = undefined;
      setState('closed');
      await open?.stop();
    },
    started: connect(),
  };
}

// Keyed by the configuration object a knex instance shares with its transactions, so
// that code in a transaction finds its node's feed too (cache.ts, tablesChanged).
const feeds = new WeakMap<object, ChangeFeed>();
const nodeKey = (db: Db) => db.client.config as object;

// The feed of a node's database handle; none inside a transaction (whose reads are not
// cached) or where no server runs (the command line, scripts).
export function changeFeedOf(db: Db): ChangeFeed | undefined {
  return db.isTransaction ? undefined : feeds.get(nodeKey(db));
}

// The feed of the node a handle belongs to, from inside its transactions as well.
export function nodeChangeFeedOf(db: Db): ChangeFeed | undefined {
  return feeds.get(nodeKey(db));
}

// Resolves once the first connection is up or has failed (the server starts either way:
// without notifications every read goes to the database, as if nothing were cached).
export async function startChangeFeed(database: Database, logger: Logger): Promise<ChangeFeed> {
  const source = database.kind === 'postgres' ? postgresSource(database.directUrl) : embeddedSource(database.pglite);
  const feed = runFeed(source, [CHANGES_CHANNEL, FAILURES_CHANNEL], logger);
  const key = nodeKey(database.db);
  feeds.set(key, feed);
  feed.onState((state) => {
    if (state === 'closed' && feeds.get(key) === feed) feeds.delete(key);
  });
  await feed.started;
  return feed;
}
