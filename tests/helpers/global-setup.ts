import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { PGlite } from '@electric-sql/pglite';
import type { TestProject } from 'vitest/node';
import { knexOverPglite, openPostgres, PGLITE_OPTIONS } from '../../src/db/connect.ts';
import { migrate } from '../../src/db/migrate.ts';

// Migrate once; every test file then gets its own copy: a database made from a
// template on PostgreSQL, a data directory loaded from a dump on PGlite.

declare module 'vitest' {
  export interface ProvidedContext {
    postgres: { url: string; template: string } | null;
    pgliteDump: string | null;
  }
}

export const postgresUrl = () => process.env.TEST_DATABASE_URL ?? process.env.DATABASE_URL;

export default async function setup(project: TestProject) {
  const url = postgresUrl();
  if (url) {
    const template = `sme_passport_tpl_${crypto.randomBytes(4).toString('hex')}`;
    const admin = openPostgres(url);
    await admin.db.raw(`CREATE DATABASE ${template}`);
    const templateUrl = new URL(url);
    templateUrl.pathname = `/${template}`;
    const tpl = openPostgres(templateUrl.href);
    await migrate(tpl);
    await tpl.close();
    project.provide('postgres', { url, template });
    project.provide('pgliteDump', null);
    return async () => {
      await admin.db.raw(`DROP DATABASE IF EXISTS ${template} WITH (FORCE)`);
      await admin.close();
    };
  }
  const pglite = await PGlite.create(PGLITE_OPTIONS);
  const db = knexOverPglite(pglite);
  await migrate({ db });
  const dump = await pglite.dumpDataDir('none');
  await db.destroy();
  const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'sme-passport-test-')), 'migrated.tar');
  fs.writeFileSync(file, Buffer.from(await dump.arrayBuffer()));
  project.provide('postgres', null);
  project.provide('pgliteDump', file);
  return () => fs.rmSync(path.dirname(file), { recursive: true, force: true });
}
