import type { Knex } from 'knex';

// Whether a phone number or email address was proven with a code (registration or
// change on the account page), for the *_verified claims.

export async function up(knex: Knex): Promise<void> {
  await knex.schema.alterTable('accounts', (t) => {
    t.boolean('phone_verified').notNullable().defaultTo(false);
    t.boolean('email_verified').notNullable().defaultTo(false);
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.alterTable('accounts', (t) => {
    t.dropColumn('phone_verified');
    t.dropColumn('email_verified');
  });
}
