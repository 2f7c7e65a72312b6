import type { Knex } from 'knex';

// Counters every node shares: consecutive sign-in failures and locks (per account, or
// per typed identifier when there is no such account), and per-IP request windows.

export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable('sign_in_throttle', (t) => {
    t.text('key').primary();
    t.integer('failures').notNullable().defaultTo(0);
    t.timestamp('locked_until', { useTz: true });
    t.timestamp('updated_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
  });
  await knex.schema.createTable('rate_limits', (t) => {
    t.text('key').primary();
    t.timestamp('window_start', { useTz: true }).notNullable();
    t.integer('hits').notNullable();
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTable('rate_limits');
  await knex.schema.dropTable('sign_in_throttle');
}
