import type { Knex } from 'knex';

// The APIs of a window (resource servers): clients ask for tokens for them with
// resource=<identifier> and get RFC 9068 JWT access tokens (src/windows/apis.ts). Read
// on every token request, so cached per node and announced like the other cached
// tables (20261201000020_change_notifications.ts).

export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable('window_apis', (t) => {
    t.increments('id').primary();
    t.integer('window_id').notNullable().references('id').inTable('windows');
    t.text('identifier').notNullable().unique();
    t.text('name').notNullable();
    t.jsonb('scopes').notNullable();
    t.integer('access_token_ttl_seconds').notNullable();
    t.boolean('other_windows').notNullable().defaultTo(false);
    t.timestamp('created_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.timestamp('updated_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.index('window_id');
  });
  await knex.raw('ALTER TABLE window_apis ADD CONSTRAINT window_apis_ttl_check CHECK (access_token_ttl_seconds BETWEEN 60 AND 86400)');
  await knex.raw('CREATE TRIGGER window_apis_notify_change AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON window_apis FOR EACH STATEMENT EXECUTE FUNCTION sme_passport_notify_change()');
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTable('window_apis');
}
