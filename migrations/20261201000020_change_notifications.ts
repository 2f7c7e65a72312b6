import type { Knex } from 'knex';

// Every node caches what each request reads from these tables (src/db/cache.ts) and
// drops it when one of them changes. A change, however it is made (the server, the
// command line, psql), announces itself on the channel sme_passport_changes with the
// table's name. PostgreSQL sends notifications when the transaction commits, so a node
// never hears of a change before it can read it, and never of one rolled back; a
// transaction's repeated notifications of one table arrive once.

const TABLES = ['windows', 'clients', 'accounts', 'admin_roles', 'totp_factors', 'enterprises', 'memberships', 'acting_enterprises'];

export async function up(knex: Knex): Promise<void> {
  await knex.raw(`
    CREATE FUNCTION sme_passport_notify_change() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
      PERFORM pg_notify('sme_passport_changes', TG_TABLE_NAME);
      RETURN NULL;
    END $$`);
  // Statement triggers: one notification per statement, however many rows it touches
  // (TRUNCATE has no rows at all).
  for (const table of TABLES) {
    await knex.raw(`CREATE TRIGGER ${table}_notify_change AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON ${table} FOR EACH STATEMENT EXECUTE FUNCTION sme_passport_notify_change()`);
  }
}

export async function down(knex: Knex): Promise<void> {
  for (const table of TABLES) await knex.raw(`DROP TRIGGER ${table}_notify_change ON ${table}`);
  await knex.raw('DROP FUNCTION sme_passport_notify_change()');
}
