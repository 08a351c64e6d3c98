-- Source schema changes that break a column the warehouse uses (a rename, a drop, a type whose
-- values no longer fit) pause that table instead of writing NULLs or failing row by row:
-- services/warehouse/schema-check.ts decides, services/warehouse/apply.ts pauses and parks.

-- A paused table: what broke, and the change it broke at (everything from there is parked).
CREATE TABLE {{pipeline}}.paused_table (
  table_name text PRIMARY KEY,
  column_name text NOT NULL,
  problem text NOT NULL CHECK (problem IN ('missing', 'type')),
  detail text NOT NULL,
  first_event_id text NOT NULL,
  first_lsn pg_lsn NOT NULL,
  first_seq integer NOT NULL,
  first_committed_at timestamptz,
  paused_at timestamptz NOT NULL DEFAULT now()
);

-- The changes of paused tables, kept until the table is resumed, then applied in source order.
CREATE TABLE {{pipeline}}.parked_event (
  event_id text PRIMARY KEY,
  table_name text NOT NULL,
  source_lsn pg_lsn NOT NULL,
  source_seq integer NOT NULL,
  event jsonb NOT NULL,
  parked_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX parked_event_order ON {{pipeline}}.parked_event (table_name, source_lsn, source_seq);

-- What the operator decided when resuming: a catalogue column now held by another source column
-- (renamed), accepted as gone (missing: NULL from then on), or its values accepted as they come (type).
CREATE TABLE {{pipeline}}.column_decision (
  table_name text NOT NULL,
  column_name text NOT NULL,
  decision text NOT NULL CHECK (decision IN ('renamed', 'missing', 'type')),
  source_column text CHECK ((decision = 'renamed') = (source_column IS NOT NULL)),
  decided_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (table_name, column_name)
);

-- For analysts and `totes status`: which tables the warehouse is not consistent for, since when.
CREATE VIEW {{schema}}.pipeline_paused_tables AS
SELECT t.table_name, t.column_name, t.problem, t.detail,
       t.first_lsn AS consistent_before_lsn, t.first_committed_at AS consistent_before_at, t.paused_at,
       (SELECT count(*) FROM {{pipeline}}.parked_event p WHERE p.table_name = t.table_name)::bigint AS parked_events
FROM {{pipeline}}.paused_table t;

-- pipeline_freshness names the tables it does not hold for (paused), empty when none.
CREATE OR REPLACE VIEW {{schema}}.pipeline_freshness AS
WITH live AS (
  SELECT count(*) AS shards,
         CASE WHEN bool_and(p.heartbeat_lsn IS NOT NULL) THEN min(p.heartbeat_lsn) END AS lsn,
         CASE WHEN bool_and(p.heartbeat_lsn IS NOT NULL) THEN (array_agg(p.heartbeat_committed_at ORDER BY p.heartbeat_lsn))[1] END AS at
  FROM {{pipeline}}.shard_position p
  WHERE NOT p.ended
)
SELECT CASE WHEN live.shards > 0 THEN live.lsn ELSE r.consistent_through_lsn END AS consistent_through_lsn,
       CASE WHEN live.shards > 0 THEN live.at ELSE r.consistent_through_at END AS consistent_through_at,
       CASE WHEN live.shards > 0 THEN 'stream' WHEN r.consistent_through_lsn IS NOT NULL THEN 'replay' END AS consistent_through_source,
       ARRAY(SELECT t.table_name FROM {{pipeline}}.paused_table t ORDER BY t.table_name) AS paused_tables
FROM live
LEFT JOIN {{pipeline}}.replay_position r ON true;
