import type { Knex } from 'knex';

// Rotation publishes a key before signing with it: active_from is when it starts signing.

export async function up(knex: Knex): Promise<void> {
  await knex.schema.alterTable('keys', (t) => {
    t.timestamp('active_from', { useTz: true }).notNullable().defaultTo(knex.fn.now());
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.alterTable('keys', (t) => t.dropColumn('active_from'));
}
