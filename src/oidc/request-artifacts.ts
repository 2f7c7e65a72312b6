import { AsyncLocalStorage } from 'node:async_hooks';
import type { Next, ParameterizedContext } from 'koa';

// What one request has read of the provider's artifacts. The library reads the same
// interaction or session more than once while handling one request, and re-saves a
// session it has not changed; the token endpoint needs a code, its session and its
// grant, which one statement can bring (adapter.ts). Each request has its own copy, so
// nothing here outlives the request or is seen by another.

export type Seen = { id: string; payload: string; expiresAt: number | null; consumedAt: number | null };

type RequestArtifacts = {
  seen: Map<string, Seen | null>;
  // The provider's resume endpoint: it reads the interaction and then destroys it.
  resuming: boolean;
  // Interactions deleted when they were read: destroy() has nothing left to do.
  deletedAtFind: Set<string>;
  // Codes marked consumed when they were read: consume() has nothing left to do, and
  // a request that ends without consuming gives them back (see artifactsOfRequest).
  consumedAtFind: Set<string>;
};

const store = new AsyncLocalStorage<RequestArtifacts>();

export const inRequest = (): boolean => store.getStore() !== undefined;

const keyOf = (model: string, by: 'id' | 'uid', value: string) => `${model}\u0000${by}\u0000${value}`;

// undefined: not read in this request; null: read and not there.
export function seenInRequest(model: string, by: 'id' | 'uid', value: string): Seen | null | undefined {
  return store.getStore()?.seen.get(keyOf(model, by, value));
}

export function rememberInRequest(model: string, by: 'id' | 'uid', value: string, seen: Seen | null): void {
  store.getStore()?.seen.set(keyOf(model, by, value), seen);
}

// A write makes what was read of that artifact stale (under either key).
export function forgetInRequest(model: string, id: string): void {
  const seen = store.getStore()?.seen;
  if (!seen) return;
  for (const [key, value] of seen) if (key.startsWith(`${model}\u0000`) && (value?.id === id || key === keyOf(model, 'id', id))) seen.delete(key);
}

export function consumedWhenRead(id: string): void {
  store.getStore()?.consumedAtFind.add(id);
}

// True once per code consumed when read in this request.
export function takeConsumedWhenRead(id: string): boolean {
  return store.getStore()?.consumedAtFind.delete(id) ?? false;
}

export function markResuming(): void {
  const artifacts = store.getStore();
  if (artifacts) artifacts.resuming = true;
}

export const isResuming = (): boolean => store.getStore()?.resuming ?? false;

export function deletedWhenRead(id: string): void {
  store.getStore()?.deletedAtFind.add(id);
}

export function takeDeletedWhenRead(id: string): boolean {
  return store.getStore()?.deletedAtFind.delete(id) ?? false;
}

// Middleware: the request's own artifact memory. `giveBack` is called for codes marked
// consumed when read that the request did not go on to consume (a failed redemption:
// wrong redirect_uri, PKCE, client), so that a failed attempt changes nothing.
export function artifactsOfRequest(giveBack: (codeIds: string[]) => Promise<void>) {
  return async (_ctx: ParameterizedContext, next: Next): Promise<void> => {
    const artifacts: RequestArtifacts = { seen: new Map(), resuming: false, deletedAtFind: new Set(), consumedAtFind: new Set() };
    try {
      await store.run(artifacts, next);
    } finally {
      // Not given back (the database failed meanwhile), a code stays consumed: the failed
      // attempt counts as its one use, which is the safe side.
      if (artifacts.consumedAtFind.size > 0) await giveBack([...artifacts.consumedAtFind]).catch(() => undefined);
    }
  };
}
