-- Shards apply in parallel (services/warehouse/apply.ts).
--
-- 1. Referential integrity of the facts is guaranteed by the order of apply (every date and dimension
--    key a fact row references is written earlier in the same transaction, as a placeholder if need
--    be) and proven by tests and `totes verify`, not by per-row triggers, which cost most of the time
--    of a fact insert. PostgreSQL 18 keeps the foreign keys as NOT ENFORCED (documentation for BI
--    tools and the planner's join knowledge); older servers drop them.
DO $$
DECLARE
  fk record;
BEGIN
  FOR fk IN
    SELECT c.conname, c.conrelid::regclass AS tbl
    FROM pg_constraint c
    WHERE c.contype = 'f'
      AND c.conrelid IN ('{{schema}}.fact_sales_order'::regclass, '{{schema}}.fact_purchase_order'::regclass, '{{schema}}.fact_payment'::regclass)
  LOOP
    IF current_setting('server_version_num')::integer >= 180000 THEN
      EXECUTE format('ALTER TABLE %s ALTER CONSTRAINT %I NOT ENFORCED', fk.tbl, fk.conname);
    ELSE
      EXECUTE format('ALTER TABLE %s DROP CONSTRAINT %I', fk.tbl, fk.conname);
    END IF;
  END LOOP;
END $$;

-- 2. The 'd' fact rows of truncations, re-derived in source order (was a client-side loop of round
--    trips): one per key whose latest change before the truncation is not a delete, with the event id
--    `<truncation event id>:<key>`. Changes older than a truncation can arrive after it (another
--    shard), so whenever a batch brings a truncation or an older change of the table, the affected
--    truncations are re-derived: missing rows are added and rows that are no longer right (the key
--    turned out to be deleted already) are withdrawn. `keys` NULL re-derives every key (a new
--    truncation); otherwise only those keys. Returns rows added minus rows withdrawn.
CREATE FUNCTION {{pipeline}}.reconcile_truncations(
  fact text, source_table text, key_column text, fact_columns text[], earliest_lsn pg_lsn, earliest_seq integer, keys integer[]
) RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
  t record;
  changed integer := 0;
  n integer;
  cols text := array_to_string(ARRAY(SELECT format('%I', c) FROM unnest(fact_columns) c), ', ');
  gcols text := array_to_string(ARRAY(SELECT format('g.%I', c) FROM unnest(fact_columns) c), ', ');
  targets text := array_to_string(ARRAY(SELECT format('%I.%I', fact, c) FROM unnest(fact_columns) c), ', ');
  excluded text := array_to_string(ARRAY(SELECT format('excluded.%I', c) FROM unnest(fact_columns) c), ', ');
  sets text := array_to_string(ARRAY(SELECT format('%I = excluded.%I', c, c) FROM unnest(fact_columns) c), ', ');
BEGIN
  FOR t IN
    SELECT tr.source_lsn, tr.source_seq, tr.event_id, tr.committed_at FROM {{pipeline}}.truncation tr
    WHERE tr.table_name = source_table AND (tr.source_lsn, tr.source_seq) >= (earliest_lsn, earliest_seq)
    ORDER BY tr.source_lsn, tr.source_seq
  LOOP
    EXECUTE format(
      'DELETE FROM {{schema}}.%1$I g
       WHERE g.event_id = $1 || '':'' || g.%2$I AND ($4::integer[] IS NULL OR g.%2$I = ANY($4::integer[]))
         AND COALESCE((SELECT f.change_op FROM {{schema}}.%1$I f
                       WHERE f.%2$I = g.%2$I AND (f.source_lsn, f.source_seq) < ($2::pg_lsn, $3::integer)
                       ORDER BY f.source_lsn DESC, f.source_seq DESC LIMIT 1), ''d'') = ''d''',
      fact, key_column)
    USING t.event_id, t.source_lsn, t.source_seq, keys;
    GET DIAGNOSTICS n = ROW_COUNT;
    changed := changed - n;
    EXECUTE format(
      'INSERT INTO {{schema}}.%1$I (%3$s, source_seq, change_op, event_id, source_lsn, source_committed_at)
       SELECT %4$s, $3::integer, ''d'', $1 || '':'' || g.%2$I, $2::pg_lsn, $5::timestamptz
       FROM (
         SELECT DISTINCT ON (f.%2$I) f.* FROM {{schema}}.%1$I f
         WHERE (f.source_lsn, f.source_seq) < ($2::pg_lsn, $3::integer) AND ($4::integer[] IS NULL OR f.%2$I = ANY($4::integer[]))
         ORDER BY f.%2$I, f.source_lsn DESC, f.source_seq DESC
       ) g
       WHERE g.change_op <> ''d''
       ON CONFLICT (event_id) DO UPDATE SET %6$s
       WHERE (%5$s) IS DISTINCT FROM (%7$s)',
      fact, key_column, cols, gcols, targets, sets, excluded)
    USING t.event_id, t.source_lsn, t.source_seq, keys, t.committed_at;
    GET DIAGNOSTICS n = ROW_COUNT;
    changed := changed + n;
  END LOOP;
  RETURN changed;
END $$;
