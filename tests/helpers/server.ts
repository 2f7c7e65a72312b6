import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { loadConfig } from '../../src/config.ts';
import { startServer, type RunningServer } from '../../src/server.ts';
import type { Logger } from '../../src/http/errors.ts';
import { testDatabase, type TestDatabase } from './database.ts';

export type TestServer = RunningServer & { db: TestDatabase['db']; database: TestDatabase; dataDir: string; masterKey: string; errors: unknown[] };

// The real server on its own clean database, on a random loopback port. Errors the
// server logs are collected so a test can assert there were none.
export async function startTestServer(env: Record<string, string> = {}): Promise<TestServer> {
  const database = await testDatabase();
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'sme-passport-data-'));
  const masterKey = crypto.randomBytes(32).toString('base64');
  const errors: unknown[] = [];
  const logger: Logger = { error: (message, err) => errors.push(err ?? message), info: () => {} };
  const config = loadConfig({ NODE_ENV: 'test', PORT: '0', DATA_DIR: dataDir, MASTER_KEY: masterKey, DEMO: 'false', ...env });
  const running = await startServer(config, { database, logger });
  return {
    ...running,
    db: database.db,
    database,
    dataDir,
    masterKey,
    errors,
    async close() {
      await running.close();
      await database.close();
      fs.rmSync(dataDir, { recursive: true, force: true });
    },
  };
}
