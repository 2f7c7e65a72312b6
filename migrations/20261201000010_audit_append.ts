import type { Knex } from 'knex';

// An append to the audit trail in one statement: take the append lock, read the hash the
// chain ends with, insert the records hashed one onto the next, and give back each id,
// prev_hash and hash. The caller sends each record's columns and its JCS text
// (src/audit/chain.ts computes it, the chain's definition being frozen there); the hash is
// SHA-256 over the same bytes as chainHash, so the chain is the one it always was. Before
// anything is committed, each record as stored is compared with the JCS text it was hashed
// from, so a record whose stored form differs from what was hashed is refused.

export async function up(knex: Knex): Promise<void> {
  await knex.raw(`
    CREATE FUNCTION audit_append(records jsonb) RETURNS TABLE (id bigint, prev_hash text, hash text)
    LANGUAGE plpgsql AS $$
    #variable_conflict use_column
    DECLARE
      head text;
      r jsonb;
      stored audit_events;
    BEGIN
      PERFORM pg_advisory_xact_lock(hashtext('sme-passport:audit-append'));
      SELECT e.hash INTO head FROM audit_events e ORDER BY e.id DESC LIMIT 1;
      IF head IS NULL THEN
        SELECT a.last_hash INTO head FROM audit_anchors a ORDER BY a.last_event_id DESC, a.id DESC LIMIT 1;
      END IF;
      head := coalesce(head, repeat('0', 64));
      FOR r IN SELECT x.value FROM jsonb_array_elements(records) WITH ORDINALITY AS x(value, n) ORDER BY x.n LOOP
        INSERT INTO audit_events AS e (at, actor_type, actor_id, actor_ip, enterprise_id, window_id, event, target, outcome, reason, before, after, prev_hash, hash)
        VALUES ((r->>'at')::timestamptz, r->>'actor_type', r->>'actor_id', r->>'actor_ip', (r->>'enterprise_id')::uuid, (r->>'window_id')::integer,
                r->>'event', r->>'target', r->>'outcome', r->>'reason', nullif(r->'before', 'null'::jsonb), nullif(r->'after', 'null'::jsonb),
                head, encode(sha256(convert_to(head || E'\\n' || (r->>'jcs'), 'UTF8')), 'hex'))
        RETURNING e.* INTO stored;
        IF jsonb_build_object(
             'at', to_char(stored.at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'),
             'actor_type', stored.actor_type, 'actor_id', stored.actor_id, 'actor_ip', stored.actor_ip,
             'enterprise_id', stored.enterprise_id, 'window_id', stored.window_id, 'event', stored.event,
             'target', stored.target, 'outcome', stored.outcome, 'reason', stored.reason,
             'before', stored.before, 'after', stored.after
           ) IS DISTINCT FROM (r->>'jcs')::jsonb THEN
          RAISE EXCEPTION 'an audit record as stored differs from the text it was hashed from';
        END IF;
        id := stored.id;
        prev_hash := head;
        hash := stored.hash;
        RETURN NEXT;
        head := stored.hash;
      END LOOP;
    END $$`);
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw('DROP FUNCTION audit_append(jsonb)');
}
