import type { Knex } from 'knex';

// What tells a node whether its master key is the one this database's secrets are
// sealed with (src/crypto/key-check.ts): one row, written at the first start.

export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable('master_key_check', (t) => {
    t.boolean('one').primary().defaultTo(true);
    t.text('value').notNullable();
    t.timestamp('created_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
  });
  await knex.raw('ALTER TABLE master_key_check ADD CONSTRAINT master_key_check_one_row CHECK (one)');
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTable('master_key_check');
}
