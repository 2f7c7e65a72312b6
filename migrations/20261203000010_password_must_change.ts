import type { Knex } from 'knex';

// A password someone else chose and handed over (the administrators' bootstrap): it
// opens one sign-in, which asks the person for their own password first.

export async function up(knex: Knex): Promise<void> {
  await knex.schema.alterTable('accounts', (t) => {
    t.boolean('password_must_change').notNullable().defaultTo(false);
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.alterTable('accounts', (t) => {
    t.dropColumn('password_must_change');
  });
}
