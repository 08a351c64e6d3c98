/**
 * The shards a warehouse is fed from (<pipeline>.shard_position): which exist, which ended after a
 * reshard, and how far each is applied. Freshness waits for a heartbeat from every live shard.
 */
import type pg from "pg"
import { resolveSchemas, type WarehouseSchemas } from "./migrate.ts"

/**
 * The statement declaring shards (apply sends it in its pipeline). Sorted, so that two sessions
 * inserting the same new rows take them in one order.
 */
export const registerShardsStatement = (p: string, stream: string, shardIds: ReadonlyArray<string>): [string, ReadonlyArray<unknown>] => [
  `INSERT INTO ${p}.shard_position (stream, shard_id) SELECT $1, unnest($2::text[]) ON CONFLICT (stream, shard_id) DO NOTHING`,
  [stream, [...shardIds].sort()]
]

/** Declares the shards of a stream, so that freshness waits for a heartbeat from each of them. */
export const registerShards = async (
  client: pg.ClientBase,
  options: WarehouseSchemas & { readonly stream: string; readonly shardIds: ReadonlyArray<string> }
): Promise<void> => {
  const [text, params] = registerShardsStatement(resolveSchemas(options).p, options.stream, options.shardIds)
  await client.query(text, [...params])
}

/** Retires a shard that is closed and fully applied (after a reshard): it no longer holds freshness back. */
export const endShard = async (client: pg.ClientBase, options: WarehouseSchemas & { readonly stream: string; readonly shardId: string }) => {
  const { p } = resolveSchemas(options)
  await client.query(
    `INSERT INTO ${p}.shard_position (stream, shard_id, ended) VALUES ($1, $2, true)
     ON CONFLICT (stream, shard_id) DO UPDATE SET ended = true, updated_at = now()`,
    [options.stream, options.shardId]
  )
}

export interface ShardPosition {
  readonly shardId: string
  /** Last applied sequence number (decimal text), null before the first batch. */
  readonly sequenceNumber: string | null
  readonly heartbeatLsn: string | null
  readonly heartbeatCommittedAt: Date | null
  readonly ended: boolean
}

/** The applied position of every known shard of a stream (where a poller resumes). */
export const readShardPositions = async (
  client: pg.ClientBase,
  options: WarehouseSchemas & { readonly stream: string }
): Promise<ReadonlyArray<ShardPosition>> => {
  const { p } = resolveSchemas(options)
  const { rows } = await client.query(
    `SELECT shard_id, sequence_number::text, heartbeat_lsn::text, heartbeat_committed_at, ended
     FROM ${p}.shard_position WHERE stream = $1 ORDER BY shard_id`,
    [options.stream]
  )
  return rows.map((row) => ({
    shardId: row.shard_id,
    sequenceNumber: row.sequence_number,
    heartbeatLsn: row.heartbeat_lsn,
    heartbeatCommittedAt: row.heartbeat_committed_at,
    ended: row.ended
  }))
}
