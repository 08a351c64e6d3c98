-- A warehouse rebuilt from the lake has no shards: how far it is consistent is what the replay
-- that built it applied (the lake watermark, or its --to bound). services/warehouse/freshness.ts
-- writes this one row; it only moves forward.

CREATE TABLE {{pipeline}}.replay_position (
  singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
  consistent_through_lsn pg_lsn NOT NULL,
  consistent_through_at timestamptz,
  replay_name text NOT NULL,
  updated_at timestamptz NOT NULL DEFAULT now()
);

-- Every change committed before consistent_through_lsn is in the warehouse (a heartbeat position:
-- the reader had published every transaction whose commit record starts before it). With live
-- shards (the stream pipeline) it is the minimum heartbeat over them, NULL until every one has
-- applied a heartbeat; without any (a warehouse built by replay) the replay's position.
-- consistent_through_source says which: 'stream', 'replay', or NULL.
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
       CASE WHEN live.shards > 0 THEN 'stream' WHEN r.consistent_through_lsn IS NOT NULL THEN 'replay' END AS consistent_through_source
FROM live
LEFT JOIN {{pipeline}}.replay_position r ON true;
