import './memory-settings.ts';
import { ConfigError, loadConfig } from './config.ts';
import { DatabaseInUseError } from './db/connect.ts';
import { DEMO_ACCOUNT, DEMO_SITES } from './demo/seed.ts';
import { startServer } from './server.ts';

try {
  const config = loadConfig();
  const running = await startServer(config);
  const where = config.databaseUrl ? 'PostgreSQL (DATABASE_URL)' : `embedded PGlite in ${config.dataDir}`;
  console.log(`sme-passport: OpenID Connect provider at ${running.url} on ${where}`);
  console.log(`  discovery: ${running.url}/.well-known/openid-configuration`);
  console.log(`  admin console: ${running.url}/admin (the first administrator: npx sme-passport admin grant --account NAME --role security_admin)`);
  const metrics = config.metricsToken ? ' (with METRICS_TOKEN)' : config.production ? ' (off: set METRICS_TOKEN)' : '';
  console.log(`  probes: ${running.url}/healthz ${running.url}/readyz; metrics: ${running.url}/metrics${metrics}`);
  if (config.demo) {
    for (const site of DEMO_SITES) console.log(`  demo window site: ${running.url}/demo/${site.slug}/`);
    console.log(`  sign in as "${DEMO_ACCOUNT.username}" with password "${DEMO_ACCOUNT.password}"`);
  }
  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    console.log(`sme-passport: ${signal} received, shutting down`);
    await running.close();
    process.exit(0);
  };
  process.on('SIGINT', () => void stop('SIGINT'));
  process.on('SIGTERM', () => void stop('SIGTERM'));
} catch (err) {
  if (err instanceof ConfigError || err instanceof DatabaseInUseError) {
    console.error(`sme-passport: ${err.message}`);
    process.exit(2);
  }
  throw err;
}
