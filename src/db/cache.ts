import type { Knex } from 'knex';
import { currentRequest } from '../http/requests.ts';
import type { Db } from './connect.ts';
import { CHANGES_CHANNEL, changeFeedOf, nodeChangeFeedOf, type ChangeFeed } from './change-feed.ts';

// Per-node caches of what every request reads, each entry dropped when one of the
// tables it was read from changes (migrations/20261201000020_change_notifications.ts).
// A cache trusts what it holds only while the node's change feed is up: while it is
// down, or where there is none (the command line, a transaction), every read goes to
// the database and nothing is kept, and everything kept is dropped the moment it goes.
//
// A change on another node is heard a moment after its commit: before a request is
// answered from a cache, the node makes sure it has heard every change committed
// before the request came in (ChangeFeed.fence), so a change stops the very next
// request on every node.
//
// A read that began before a change and ends after it must not keep what it read:
// each table has a generation, raised by every change, and a read keeps its value only
// if the generations of its tables are those it started with.

// The tables with change notifications: the only ones a cache may be read from.
export type CachedTable = 'windows' | 'clients' | 'accounts' | 'admin_roles' | 'totp_factors' | 'enterprises' | 'memberships' | 'acting_enterprises' | 'window_apis';

export type CacheCounts = { hits: number; misses: number; bypassed: number };

type Cache = { tables: readonly CachedTable[]; entries: Map<string, unknown>; counts: CacheCounts };

type NodeCaches = {
  caches: Map<string, Cache>;
  generations: Map<string, number>;
  // Raised whenever the feed changes state: reads in flight keep nothing.
  epoch: number;
  // Tables changed by this node's transactions still open: read from the database
  // until they end, since another node's notification of them comes only later.
  open: Map<string, number>;
  // Notifications of changes heard, by table.
  heard: Map<string, number>;
};

const nodes = new WeakMap<ChangeFeed, NodeCaches>();

function cachesOf(feed: ChangeFeed): NodeCaches {
  const known = nodes.get(feed);
  if (known) return known;
  const node: NodeCaches = { caches: new Map(), generations: new Map(), epoch: 0, open: new Map(), heard: new Map() };
  feed.subscribe(CHANGES_CHANNEL, (table) => {
    node.heard.set(table, (node.heard.get(table) ?? 0) + 1);
    dropTables(node, [table]);
  });
  feed.onState(() => {
    node.epoch++;
    for (const cache of node.caches.values()) cache.entries.clear();
  });
  nodes.set(feed, node);
  return node;
}

function dropTables(node: NodeCaches, tables: readonly string[]): void {
  for (const table of tables) node.generations.set(table, (node.generations.get(table) ?? 0) + 1);
  for (const cache of node.caches.values()) {
    if (cache.tables.some((t) => tables.includes(t))) cache.entries.clear();
  }
}

// Generations only rise, so an unchanged sum means nothing changed.
const stamp = (node: NodeCaches, tables: readonly CachedTable[]) => tables.reduce((sum, t) => sum + (node.generations.get(t) ?? 0), node.epoch);

// Values are shared by every request that reads them: frozen, so none can change
// what the next one sees.
function deepFreeze<T>(value: T): T {
  if (value === null || typeof value !== 'object' || Object.isFrozen(value) || value instanceof Date) return value;
  for (const inner of Object.values(value)) deepFreeze(inner);
  return Object.freeze(value);
}

export type CacheSpec<A extends unknown[], V> = {
  name: string;
  tables: readonly CachedTable[];
  // Entries kept per node; the least recently used goes first.
  max: number;
  key: (...args: A) => string;
  load: (db: Db, ...args: A) => Promise<V>;
};

export type CachedRead<A extends unknown[], V> = ((db: Db, ...args: A) => Promise<V>) & {
  // For what `load` reads, read by another statement (the account typed at sign-in, read
  // with its attempt's count): called before that statement, and `keep` once the caller
  // knows the value is worth keeping. It is kept by the rule of a miss: only if no table
  // it comes from changed in between.
  otherRead(db: Db): { keep(value: V, ...args: A): void };
};

function cacheOf(node: NodeCaches, { name, tables }: { name: string; tables: readonly CachedTable[] }): Cache {
  let cache = node.caches.get(name);
  if (!cache) {
    cache = { tables, entries: new Map(), counts: { hits: 0, misses: 0, bypassed: 0 } };
    node.caches.set(name, cache);
  }
  return cache;
}

// Whether the node may keep what it reads of these tables now.
const trusted = (feed: ChangeFeed, node: NodeCaches, tables: readonly CachedTable[]) => feed.state === 'up' && !tables.some((t) => node.open.get(t));

function keep(cache: Cache, max: number, key: string, value: unknown): void {
  cache.entries.set(key, deepFreeze(value));
  if (cache.entries.size > max) cache.entries.delete(cache.entries.keys().next().value!);
}

// `load` read through a cache: what it finds is kept (nothing is kept for undefined,
// so a name that does not exist costs a lookup each time, and fills no cache).
export function cachedRead<A extends unknown[], V>(spec: CacheSpec<A, V>): CachedRead<A, V> {
  const read = async (db: Db, ...args: A): Promise<V> => {
    const feed = changeFeedOf(db);
    if (!feed) return spec.load(db, ...args);
    const node = cachesOf(feed);
    const cache = cacheOf(node, spec);
    if (!trusted(feed, node, spec.tables)) {
      cache.counts.bypassed++;
      return spec.load(db, ...args);
    }
    const key = spec.key(...args);
    // What is held may already be stale: a change committed before this request came
    // in may not have been heard yet (its notification is on its way), so a hit waits
    // for the fence (change-feed.ts), shared by the requests of the moment, and looks
    // again.
    if (cache.entries.has(key)) {
      try {
        await heardAllBeforeThisRequest(feed);
      } catch {
        cache.counts.bypassed++;
        return spec.load(db, ...args);
      }
    }
    if (cache.entries.has(key)) {
      const value = cache.entries.get(key) as V;
      cache.entries.delete(key);
      cache.entries.set(key, value);
      cache.counts.hits++;
      return value;
    }
    cache.counts.misses++;
    const before = stamp(node, spec.tables);
    const value = await spec.load(db, ...args);
    if (value !== undefined && stamp(node, spec.tables) === before) keep(cache, spec.max, key, value);
    return value;
  };
  const otherRead = (db: Db) => {
    const feed = changeFeedOf(db);
    const node = feed && cachesOf(feed);
    if (!feed || !node || !trusted(feed, node, spec.tables)) return { keep() {} };
    const before = stamp(node, spec.tables);
    return {
      keep(value: V, ...args: A) {
        if (value !== undefined && stamp(node, spec.tables) === before) keep(cacheOf(node, spec), spec.max, spec.key(...args), value);
      },
    };
  };
  return Object.assign(read, { otherRead });
}

// Resolves once the node has heard of every change committed before the request it is
// called in came in (or before the call, outside a request).
export const heardAllBeforeThisRequest = (feed: ChangeFeed): Promise<void> => feed.fence(currentRequest()?.started ?? process.hrtime.bigint());

const outermost = (trx: Knex.Transaction): Knex.Transaction => (trx.parentTransaction ? outermost(trx.parentTransaction) : trx);

// Called by the code that writes a cached table, once it has: this node drops what it
// holds at once rather than when its own notification comes back, so it never answers
// its next request from before its own change. In a transaction the change is visible
// only once the outermost transaction ends: until then the tables are read from the
// database, and at the end dropped again.
export function tablesChanged(db: Db, ...tables: CachedTable[]): void {
  const feed = nodeChangeFeedOf(db);
  if (!feed) return;
  const node = cachesOf(feed);
  dropTables(node, tables);
  if (!db.isTransaction) return;
  for (const t of tables) node.open.set(t, (node.open.get(t) ?? 0) + 1);
  const ended = () => {
    dropTables(node, tables);
    for (const t of tables) node.open.set(t, node.open.get(t)! - 1);
  };
  outermost(db as Knex.Transaction).executionPromise.then(ended, ended);
}

// Hits, misses and reads that went past the cache (the feed down), per cache, and the
// notifications of changes the node has heard, per table.
export function cacheCounts(db: Db): { caches: Record<string, CacheCounts>; changesHeard: Record<string, number> } {
  const feed = changeFeedOf(db);
  if (!feed) return { caches: {}, changesHeard: {} };
  const node = cachesOf(feed);
  return { caches: Object.fromEntries([...node.caches].map(([name, cache]) => [name, { ...cache.counts }])), changesHeard: Object.fromEntries(node.heard) };
}
