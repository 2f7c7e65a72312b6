import type { Knex } from 'knex';

// The enterprise registry (service objects) and memberships of persons in them.
// pg_trgm indexes names for contains-search, Chinese included.

export async function up(knex: Knex): Promise<void> {
  await knex.raw('CREATE EXTENSION IF NOT EXISTS pg_trgm');
  await knex.schema.createTable('enterprises', (t) => {
    t.uuid('id').primary().defaultTo(knex.raw('gen_random_uuid()'));
    t.text('uscc');
    t.text('name').notNullable();
    t.text('type').notNullable();
    t.text('region').notNullable();
    t.text('industry');
    t.text('status').notNullable().defaultTo('pending');
    t.timestamp('created_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.timestamp('updated_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
  });
  await knex.raw('CREATE UNIQUE INDEX enterprises_uscc_key ON enterprises (uscc) WHERE uscc IS NOT NULL');
  // A team without a code is known by its name in its region: the same team twice would be ambiguous.
  await knex.raw('CREATE UNIQUE INDEX enterprises_team_key ON enterprises (type, region, name) WHERE uscc IS NULL');
  await knex.raw('CREATE INDEX enterprises_name_prefix ON enterprises (name text_pattern_ops)');
  await knex.raw('CREATE INDEX enterprises_name_trgm ON enterprises USING gin (name gin_trgm_ops)');
  await knex.raw("ALTER TABLE enterprises ADD CONSTRAINT enterprises_type_check CHECK (type IN ('enterprise', 'social_org', 'team', 'individual_business'))");
  await knex.raw("ALTER TABLE enterprises ADD CONSTRAINT enterprises_status_check CHECK (status IN ('pending', 'verified', 'suspended'))");
  await knex.raw("ALTER TABLE enterprises ADD CONSTRAINT enterprises_region_check CHECK (region ~ '^[0-9]{6}$')");
  await knex.raw("ALTER TABLE enterprises ADD CONSTRAINT enterprises_uscc_check CHECK (uscc IS NOT NULL OR type = 'team')");

  await knex.schema.createTable('memberships', (t) => {
    t.uuid('account_id').notNullable().references('id').inTable('accounts').onDelete('CASCADE');
    t.uuid('enterprise_id').notNullable().references('id').inTable('enterprises').onDelete('CASCADE');
    t.text('role').notNullable();
    t.timestamp('created_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.primary(['account_id', 'enterprise_id']);
    t.index(['enterprise_id']);
  });
  await knex.raw("ALTER TABLE memberships ADD CONSTRAINT memberships_role_check CHECK (role IN ('legal_rep', 'admin', 'operator'))");
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTable('memberships');
  await knex.schema.dropTable('enterprises');
}
