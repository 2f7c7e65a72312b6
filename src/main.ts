import './memory-settings.ts';
import { format } from 'node:util';
import { provinceAdministrators } from './accounts/bootstrap.ts';
import { ConfigError, loadConfig } from './config.ts';
import { MasterKeyMismatch } from './crypto/key-check.ts';
import { DatabaseInUseError } from './db/connect.ts';
import { DEMO_ACCOUNT, DEMO_SITES } from './demo/seed.ts';
import { createLogger, scrub } from './http/logging.ts';
import { startServer } from './server.ts';

// Everything this process writes is a JSON line through the logger (README, "Logs"),
// the start-up notes for the operator and a failure to start included: a log
// collector never sees a bare stack. (`npm start | npx pino-pretty` reads them easily.)
let logger = createLogger();
const fail = (message: string, err?: unknown, code = 1) => {
  logger.error(message, err);
  process.exit(code);
};
process.on('uncaughtException', (err) => fail('sme-passport: uncaught exception', err));
process.on('unhandledRejection', (err) => fail('sme-passport: unhandled rejection', err));
// Node prints its warnings (deprecations and the like) on standard error by itself,
// and libraries print with console (oidc-provider's NOTICE and WARNING lines): those
// become log lines too.
process.removeAllListeners('warning');
process.on('warning', (warning) => logger.info(`node warning: ${warning.name}: ${warning.message}`));
const logged = (level: 'info' | 'error') => (...args: unknown[]) => logger[level](scrub(format(...args)));
console.log = console.info = console.debug = logged('info');
console.warn = console.error = console.trace = logged('error');

try {
  const config = loadConfig();
  logger = createLogger({ level: config.logLevel });
  const running = await startServer(config, { logger });
  // Before anything is said to be running: a signal from then on shuts down cleanly.
  // SIGTERM (systemd, an orchestrator) first makes the balancer move away; SIGINT (a
  // terminal's Ctrl-C) stops listening at once. Both let requests in flight finish.
  let stopping = false;
  const stop = async (signal: 'SIGINT' | 'SIGTERM') => {
    if (stopping) return;
    stopping = true;
    logger.info(`sme-passport: ${signal} received, shutting down`);
    await running.close({ drain: signal === 'SIGTERM' });
    logger.info('sme-passport: stopped');
    process.exit(0);
  };
  process.on('SIGINT', () => void stop('SIGINT'));
  process.on('SIGTERM', () => void stop('SIGTERM'));
  const where = config.databaseUrl ? 'PostgreSQL (DATABASE_URL)' : `embedded PGlite in ${config.dataDir}`;
  logger.info(`sme-passport: OpenID Connect provider at ${running.url} on ${where}`);
  logger.info(`discovery: ${running.url}/.well-known/openid-configuration`);
  logger.info(`admin console: ${running.url}/admin`);
  // Until the province has its administrators, the one way to make them.
  if (!(await provinceAdministrators(running.database.db)).length) {
    logger.info('no administrator yet: run `npx sme-passport admin bootstrap` to create the system, security and audit administrators (README, "Administration")');
  }
  const metrics = config.metricsToken ? ' (with METRICS_TOKEN)' : config.production ? ' (off: set METRICS_TOKEN)' : '';
  logger.info(`probes: ${running.url}/healthz ${running.url}/readyz; metrics: ${running.url}/metrics${metrics}`);
  if (config.demo) {
    for (const site of DEMO_SITES) logger.info(`demo window site: ${running.url}/demo/${site.slug}/`);
    logger.info(`demo: sign in as "${DEMO_ACCOUNT.username}" with password "${DEMO_ACCOUNT.password}"`);
  }
} catch (err) {
  if (err instanceof ConfigError || err instanceof DatabaseInUseError || err instanceof MasterKeyMismatch) fail(`sme-passport: ${err.message}`, undefined, 2);
  else fail('sme-passport: could not start', err);
}
