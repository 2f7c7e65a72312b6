import type { Knex } from 'knex';

// Administrator roles (MLPS separation of duties): system, security and audit
// administrators of the province, and administrators of one window.

export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable('admin_roles', (t) => {
    t.bigIncrements('id').primary();
    t.uuid('account_id').notNullable().references('id').inTable('accounts').onDelete('CASCADE');
    t.text('role').notNullable();
    t.integer('window_id').references('id').inTable('windows');
    t.uuid('granted_by').references('id').inTable('accounts').onDelete('SET NULL');
    t.timestamp('granted_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.index(['account_id']);
  });
  await knex.raw("ALTER TABLE admin_roles ADD CONSTRAINT admin_roles_role_check CHECK (role IN ('system_admin', 'security_admin', 'audit_admin', 'window_admin'))");
  await knex.raw("ALTER TABLE admin_roles ADD CONSTRAINT admin_roles_window_check CHECK ((role = 'window_admin') = (window_id IS NOT NULL))");
  await knex.raw('CREATE UNIQUE INDEX admin_roles_key ON admin_roles (account_id, role, coalesce(window_id, 0))');
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTable('admin_roles');
}
