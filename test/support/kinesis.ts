/**
 * Reads a whole stream (every shard, from the start) with the real SDK, deaggregated: the user
 * records it holds, in stream order. A snapshot chunk's pointer is read back from the lake as the
 * op "r" change events it stands for (each with the pointer's shard and sequence number), so a test
 * sees the snapshot's rows whichever way they travelled; `{ chunks: true }` keeps the pointers.
 */
import { Effect } from "effect"
import { GetRecordsCommand, GetShardIteratorCommand, ListShardsCommand } from "@aws-sdk/client-kinesis"
import { kinesisClient } from "../../services/shared/aws-clients.ts"
import { deaggregate } from "../../services/shared/kinesis/aggregation.ts"
import type { StreamRecord } from "../../contracts/change-event.ts"
import { chunkEvents, readChunkText } from "../../services/lake/snapshot-chunks.ts"
import { lakeOf } from "./lake.ts"

export interface ShardRecord {
  readonly shardId: string
  readonly sequenceNumber: string
  /** Position of the user record inside its aggregated Kinesis record. */
  readonly subSequenceNumber: number
  readonly partitionKey: string
  readonly record: StreamRecord
}

export const readWholeStream = async (env: Record<string, string>, options: { readonly chunks?: boolean } = {}): Promise<Array<ShardRecord>> => {
  const records = await readStreamRecords(env)
  if (options.chunks || !records.some((r) => r.record.kind === "snapshot-chunk")) return records
  const lake = lakeOf(env)
  const out: Array<ShardRecord> = []
  for (const r of records) {
    if (r.record.kind !== "snapshot-chunk") {
      out.push(r)
      continue
    }
    const text = (await Effect.runPromise(readChunkText(lake, r.record))).toString("utf8")
    for (const event of chunkEvents(r.record, text)) out.push({ ...r, record: event })
  }
  return out
}

const readStreamRecords = async (env: Record<string, string>): Promise<Array<ShardRecord>> => {
  const client = kinesisClient(env)
  const out: Array<ShardRecord> = []
  const shards = await client.send(new ListShardsCommand({ StreamName: env.TOTES_STREAM }))
  for (const shard of shards.Shards ?? []) {
    let iterator = (
      await client.send(new GetShardIteratorCommand({ StreamName: env.TOTES_STREAM, ShardId: shard.ShardId, ShardIteratorType: "TRIM_HORIZON" }))
    ).ShardIterator
    while (iterator) {
      const page = await client.send(new GetRecordsCommand({ ShardIterator: iterator, Limit: 10_000 }))
      for (const r of page.Records ?? []) {
        deaggregate(r.Data!, r.PartitionKey!).forEach((user, subSequenceNumber) =>
          out.push({
            shardId: shard.ShardId!,
            sequenceNumber: r.SequenceNumber!,
            subSequenceNumber,
            partitionKey: user.partitionKey,
            record: JSON.parse(Buffer.from(user.data).toString("utf8")) as StreamRecord
          })
        )
      }
      if ((page.Records ?? []).length === 0 && (page.MillisBehindLatest ?? 0) === 0) break
      iterator = page.NextShardIterator
    }
  }
  client.destroy()
  return out
}
