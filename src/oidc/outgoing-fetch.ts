import type { Db } from '../db/connect.ts';
import { isRegisteredOutgoingOrigin } from '../windows/clients.ts';

// The library's own fetch refuses private and loopback addresses, but window sites on
// a government intranet live there. We allow exactly the origins administrators
// registered on a live client (back-channel logout, jwks_uri), wherever they resolve,
// and nothing else.
export function outgoingFetch(db: Db) {
  return async (url: URL | string, options: RequestInit & { dispatcher?: unknown }): Promise<Response> => {
    const target = new URL(url);
    if (!(await isRegisteredOutgoingOrigin(db, target.origin))) {
      throw new Error(`outgoing request to ${target.origin} refused: not a registered client endpoint`);
    }
    const { dispatcher: _ssrfGuard, ...rest } = options;
    return fetch(target, { ...rest, redirect: 'manual' });
  };
}
