import type Provider from 'oidc-provider';
import type { Config } from '../config.ts';
import type { Db } from '../db/connect.ts';
import { openMasterKey } from '../crypto/key-check.ts';
import type { Logger } from '../http/errors.ts';
import { loadKeys } from './keys.ts';
import { createProvider } from './provider.ts';

// The provider outside the server (the command line), for what must look exactly like
// the server's own doing: the clients as the server sees them, and back-channel logouts
// queued as the server queues them (the server's nodes deliver them).
export async function standaloneProvider(db: Db, config: Config, logger: Logger): Promise<Provider> {
  const keys = await loadKeys(db, await openMasterKey(db, config));
  if (keys.jwks.keys.length === 0) throw new Error('there are no signing keys yet: start the server once first');
  return createProvider({ issuer: config.issuer ?? `http://localhost:${config.port}`, db, keys, logger, session: config.security.session, clientAuth: config.security.clientAuth, development: config.development });
}
