import { fileURLToPath } from 'node:url';
import type { Db } from './connect.ts';

const directory = fileURLToPath(new URL('../../migrations', import.meta.url));

export async function migrate(db: Db): Promise<string[]> {
  const [, applied] = (await db.migrate.latest({ directory, loadExtensions: ['.ts'] })) as [number, string[]];
  return applied;
}
