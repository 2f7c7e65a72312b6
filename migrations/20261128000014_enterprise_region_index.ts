import type { Knex } from 'knex';

// A window administrator lists the enterprises of the window's region waiting for
// verification: a prefix match on the region code within one status.

export async function up(knex: Knex): Promise<void> {
  await knex.raw('CREATE INDEX enterprises_status_region ON enterprises (status, region text_pattern_ops)');
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw('DROP INDEX enterprises_status_region');
}
