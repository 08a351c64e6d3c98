-- The pipeline's own state, in its own schema: the mirror of current source rows, truncations,
-- per-shard applied positions, skipped events and the ISO 4217 names.

CREATE SCHEMA IF NOT EXISTS {{pipeline}};

-- Current-state mirror of every captured source row, keyed by (table, primary key). `image` is
-- the whole row as lossless JSON; a deleted row stays as a tombstone carrying its last image, so
-- an older change replayed after the delete cannot bring it back (position guard).
CREATE TABLE {{pipeline}}.mirror (
  table_name text NOT NULL,
  key_id bigint NOT NULL,
  image jsonb NOT NULL,
  source_lsn pg_lsn NOT NULL,
  source_seq integer NOT NULL,
  deleted boolean NOT NULL,
  event_id text NOT NULL,
  updated_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (table_name, key_id)
);
CREATE INDEX mirror_counterparty_by_address ON {{pipeline}}.mirror (((image ->> 'legal_address_id')::bigint)) WHERE table_name = 'counterparty';
CREATE INDEX mirror_staff_by_department ON {{pipeline}}.mirror (((image ->> 'department_id')::bigint)) WHERE table_name = 'staff';

-- A truncate clears its table as of its position: every mirror row of that table older than the
-- latest truncation counts as deleted (see mirror_current), whatever order the events arrive in.
CREATE TABLE {{pipeline}}.truncation (
  table_name text NOT NULL,
  source_lsn pg_lsn NOT NULL,
  source_seq integer NOT NULL,
  event_id text NOT NULL UNIQUE,
  committed_at timestamptz NOT NULL,
  applied_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (table_name, source_lsn, source_seq)
);

CREATE VIEW {{pipeline}}.mirror_current AS
SELECT m.table_name, m.key_id, m.image, m.source_lsn, m.source_seq,
       m.deleted OR t.source_lsn IS NOT NULL AS deleted,
       -- the position this state reflects: the row's own, or the truncation that cleared it
       GREATEST(m.source_lsn, t.source_lsn) AS effective_lsn
FROM {{pipeline}}.mirror m
LEFT JOIN LATERAL (
  SELECT t.source_lsn FROM {{pipeline}}.truncation t
  WHERE t.table_name = m.table_name AND (t.source_lsn, t.source_seq) > (m.source_lsn, m.source_seq)
  ORDER BY t.source_lsn DESC, t.source_seq DESC
  LIMIT 1
) t ON true;

-- Applied position per Kinesis shard: the last sequence number applied and the last heartbeat
-- (commit LSN + commit time) seen on it. An ended shard (closed after a reshard and drained)
-- no longer holds the freshness watermark back.
CREATE TABLE {{pipeline}}.shard_position (
  stream text NOT NULL,
  shard_id text NOT NULL,
  sequence_number numeric(80, 0),
  heartbeat_lsn pg_lsn,
  heartbeat_committed_at timestamptz,
  ended boolean NOT NULL DEFAULT false,
  updated_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (stream, shard_id)
);

-- Events the consumer did not apply: a table it does not know, or an event it cannot read.
CREATE TABLE {{pipeline}}.skipped_event (
  event_id text PRIMARY KEY,
  table_name text,
  reason text NOT NULL,
  detail text,
  source_lsn pg_lsn,
  event jsonb,
  skipped_at timestamptz NOT NULL DEFAULT now()
);

-- ISO 4217 code -> name, synchronised from the npm package currency-codes by migrate.ts.
CREATE TABLE {{pipeline}}.iso_4217 (
  code text PRIMARY KEY,
  name text NOT NULL
);
