import type http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Config } from './config.ts';
import { openDatabase, type Database } from './db/connect.ts';
import { migrate, WAITING_TO_MIGRATE } from './db/migrate.ts';
import { startChangeFeed, type ChangeFeed } from './db/change-feed.ts';
import { openMasterKey } from './crypto/key-check.ts';
import type { Logger } from './http/errors.ts';
import { createLogger } from './http/logging.ts';
import { answerNotServing } from './http/not-serving.ts';
import { stoppableServer } from './http/shutdown.ts';
import { ensureKeys, loadKeys } from './oidc/keys.ts';
import { purgeExpired } from './purge.ts';
import { startLogoutDeliveries } from './oidc/logout-deliveries.ts';
import { codeKey } from './accounts/codes.ts';
import { createSender } from './messages/senders.ts';
import { seedWindowRegistry } from './windows/seed.ts';
import { setAuditTrail } from './audit/trail.ts';
import { flushCountsEverySecond } from './audit/pending-counts.ts';
import { setHashingLimits } from './accounts/passwords.ts';
import { ensureAccountCenterClient } from './account-center/client.ts';
import { ensureAdminConsoleClient } from './admin/console-client.ts';
import { seedDemo } from './demo/seed.ts';
import { demoSites } from './demo/sites.ts';
import { createApp } from './app.ts';
import { runCliOn } from './cli.ts';
import { cliSocketPath, serveCliRelay } from './cli-relay.ts';

// url: the issuer; port: where this process listens (behind a proxy the two differ).
// close: stop listening at once, let what is in flight finish within the grace period
// (SHUTDOWN_GRACE_SECONDS), then stop the rest; with drain, first make a balancer move
// away (http/shutdown.ts).
export type RunningServer = { url: string; port: number; database: Database; close(options?: { drain?: boolean }): Promise<void> };

// This process as reached from itself: a wildcard address is reached on loopback.
function selfUrl({ address, port, family }: AddressInfo): string {
  const host = address === '0.0.0.0' ? '127.0.0.1' : address === '::' ? '::1' : address;
  return family === 'IPv6' || host.includes(':') ? `http://[${host}]:${port}` : `http://${host}:${port}`;
}

// config -> database -> migrations -> master key check -> keys -> listening (answering
// "starting", 503) -> first-start seed -> app, which answers from then on.
// A caller may hand in an open database (tests hand in a fresh copy).
export async function startServer(config: Config, options: { database?: Database; logger?: Logger } = {}): Promise<RunningServer> {
  const logger = options.logger ?? createLogger({ level: config.logLevel });
  setAuditTrail(config.auditTrail);
  setHashingLimits(config.passwordHashing);
  const database = options.database ?? (await openDatabase(config, logger));
  const { db } = database;
  let handle: http.RequestListener = (req, res) => answerNotServing('starting', req, res);
  const { server, stop } = stoppableServer((req, res) => handle(req, res));
  let feed: ChangeFeed | undefined;
  try {
    await migrate(database, { onWait: () => logger.info(WAITING_TO_MIGRATE) });
    const masterKey = await openMasterKey(db, config);
    // What this node caches is dropped when another changes it (src/db/cache.ts).
    feed = await startChangeFeed(database, logger);
    await ensureKeys(db, masterKey);
    await seedWindowRegistry(db);

    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(config.port, config.host, resolve);
    });
    const issuer = config.issuer ?? `http://localhost:${(server.address() as AddressInfo).port}`;

    await ensureAccountCenterClient(db, issuer);
    await ensureAdminConsoleClient(db, issuer, masterKey);
    const demo = config.demo ? demoSites(issuer, masterKey) : undefined;
    if (config.demo) await seedDemo(db, masterKey, issuer, config.security.passwords);

    let keys = await loadKeys(db, masterKey);
    const { app, providers, useKeys } = createApp({
      issuer,
      db,
      keys,
      trustProxy: config.trustProxy,
      security: config.security,
      masterKey,
      selfUrl: selfUrl(server.address() as AddressInfo),
      keyRotationDelaySeconds: config.keys.rotationDelaySeconds,
      messages: { codeKey: codeKey(masterKey), sender: createSender(db, config.messages) },
      outboxPage: config.messages.outbox,
      logger,
      production: config.production,
      development: config.development,
      metricsToken: config.metricsToken,
      extraRoutes: demo ? [demo.router] : [],
      homeLinks: demo?.links,
      presentation: config.presentation,
    });
    handle = app.callback();

    // The command line cannot open an embedded database this process holds: it sends
    // its commands here instead, and they run with this server's settings (its master key).
    const relay = database.kind === 'embedded' && !options.database
      ? await serveCliRelay(cliSocketPath(config.dataDir), (argv, stdin, cwd) => runCliOn(db, argv, { stdin, cwd, env: process.env }))
      : undefined;

    // A rotated key starts signing at its active_from, and other nodes rotate too:
    // every node looks at the key set and serves the new one without a restart.
    const keyWatch = setInterval(() => {
      loadKeys(db, masterKey)
        .then((next) => {
          if (next.version === keys.version) return;
          keys = next;
          useKeys(next);
          logger.info(`signing keys changed: ${next.version}`);
        })
        .catch((err) => logger.error('reloading signing keys failed', err));
    }, config.keys.refreshSeconds * 1000);
    keyWatch.unref();

    const purge = setInterval(() => {
      purgeExpired(db).catch((err) => logger.error('purging expired rows failed', err));
    }, config.purgeIntervalSeconds * 1000);
    purge.unref();
    const counts = flushCountsEverySecond(db, logger);
    const deliveries = startLogoutDeliveries({ db, provider: () => providers.current, settings: config.logoutDelivery, logger });

    return {
      url: issuer,
      port: (server.address() as AddressInfo).port,
      database,
      async close({ drain = false } = {}) {
        const { cut } = await stop({ drain, graceMs: config.shutdownGraceSeconds * 1000 });
        if (cut > 0) logger.error(`shutdown: ${cut} requests still in flight after ${config.shutdownGraceSeconds} s (SHUTDOWN_GRACE_SECONDS) were cut`);
        clearInterval(purge);
        clearInterval(keyWatch);
        await relay?.close();
        await deliveries.stop();
        await counts.stop();
        await feed?.close();
        if (!options.database) await database.close();
      },
    };
  } catch (err) {
    server.close();
    await feed?.close();
    if (!options.database) await database.close();
    throw err;
  }
}
