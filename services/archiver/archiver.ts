/**
 * The local stand-in for Kinesis Data Firehose: every shard of the stream → the lake's raw/ prefix.
 *
 * Like Firehose it deaggregates the stream's KPL aggregated records and buffers by size and by
 * time, then writes ONE new object per flush: gzip NDJSON, one user record (change event or
 * heartbeat) a line, each line the user record's data exactly as the reader wrote it, under `raw/YYYY/MM/DD/HH/<stream>-<first sequence>-<uuid>.ndjson.gz` where the hour is
 * the arrival time of the object's oldest record (Firehose's rule). Heartbeats are kept: Firehose
 * delivers everything on the stream, and a heartbeat in the lake tells a reader of the lake how far
 * the stream was complete at that point; replay simply skips them.
 *
 * Delivery is at-least-once, like Firehose: the object is written (`IfNoneMatch: *`, a new uuid
 * per object so nothing is ever overwritten) and only then is the shard's checkpoint advanced in
 * DynamoDB (`archiver#<stream>#<shardId>`, conditional and monotonic). A crash between the two
 * writes the same records again in a later object; replay deduplicates by event position.
 *
 * Each shard has its own buffer (so an object's records come from one shard and its first sequence
 * number names it), and an object's records arrived within `flushMs` of each other, also when a
 * backlog is read at once; shards are re-listed periodically so that children of a reshard are
 * picked up, each once its parent is archived to its end.
 */
import { metrics } from "../shared/metrics.ts"
import { randomUUID } from "node:crypto"
import { GetRecordsCommand, GetShardIteratorCommand, type KinesisClient, type _Record } from "@aws-sdk/client-kinesis"
import { Effect, Option } from "effect"
import { archiverCheckpointKey, sequencePosition } from "../../contracts/checkpoint.ts"
import { rawObjectKey } from "../../contracts/lake.ts"
import type { CheckpointStoreShape } from "../shared/checkpoint-store.ts"
import type { LakeError, LakeStoreShape } from "../shared/lake-store.ts"
import { encodeRawObject } from "../lake/raw.ts"
import { deaggregate } from "../shared/kinesis/aggregation.ts"
import { listShards } from "../shared/kinesis/list-shards.ts"
import { followShards, kinesisRead, pauseUnless, readShardUntil } from "../shared/kinesis/shard-reading.ts"

export { archiverCheckpointKey }

export interface ArchiverCheckpoint {
  readonly sequenceNumber: string
  /** The object that holds the records up to this sequence number. */
  readonly object: string
}

export interface ArchiverFlush {
  readonly shardId: string
  readonly key: string
  readonly records: number
  readonly bytes: number
  readonly firstSequence: string
  readonly lastSequence: string
  readonly reason: "size" | "time" | "shutdown" | "shard-closed"
}

export interface ArchiverOptions {
  readonly kinesis: KinesisClient
  readonly lake: LakeStoreShape
  readonly checkpoints: CheckpointStoreShape
  readonly stream: string
  /** Flush when the buffered (uncompressed) records reach this size. Default 5 MiB (Firehose's default). */
  readonly flushBytes?: number
  /** Flush when the oldest buffered record has waited this long; an object never holds records that arrived further apart. Default 60 s. */
  readonly flushMs?: number
  /** GetRecords limit. */
  readonly batchSize?: number
  readonly idleWaitMs?: number
  readonly shardRefreshMs?: number
  readonly onFlush?: (flush: ArchiverFlush) => void
  readonly onError?: (shardId: string, error: unknown) => void
}

export interface ArchiverStats {
  /** Objects written. */
  objects: number
  /** Compressed bytes written. */
  bytes: number
  records: number
  shards: number
  errors: number
}

interface Buffered {
  lines: Array<string>
  bytes: number
  firstSequence: string
  lastSequence: string
  oldestArrival: Date
  startedAt: number
}

const arrivalOf = (record: _Record): Date => record.ApproximateArrivalTimestamp ?? new Date()

export class Archiver {
  readonly stats: ArchiverStats = { objects: 0, bytes: 0, records: 0, shards: 0, errors: 0 }
  private readonly flushBytes: number
  private readonly flushMs: number

  constructor(private readonly options: ArchiverOptions) {
    this.flushBytes = options.flushBytes ?? 5 * 1024 * 1024
    this.flushMs = options.flushMs ?? 60_000
  }

  /** Archives every shard until `signal` aborts, then flushes what is buffered and returns. */
  run(signal: AbortSignal): Promise<void> {
    return Effect.runPromise(this.archiveAll(signal))
  }

  /**
   * Every shard, a child only once its parent is archived to its end (followShards): the lake
   * watermark takes a shard's newest archived heartbeat to vouch for what came before it on that
   * shard, and after a split the reader's next heartbeat for the parent can land on a child.
   */
  private archiveAll(signal: AbortSignal) {
    return followShards({
      signal,
      list: kinesisRead(() => listShards(this.options.kinesis, this.options.stream)),
      refreshMs: this.options.shardRefreshMs ?? 30_000,
      prepare: (shardIds) => Effect.sync(() => void (this.stats.shards += shardIds.length)),
      read: (shardId) => this.archiveShard(shardId, signal),
      onListError: (error) => this.options.onError?.("*", error)
    })
  }

  private iteratorAfter(shardId: string, sequenceNumber: string | undefined) {
    return Effect.map(
      kinesisRead(() =>
        this.options.kinesis.send(
          new GetShardIteratorCommand({
            StreamName: this.options.stream,
            ShardId: shardId,
            ...(sequenceNumber
              ? { ShardIteratorType: "AFTER_SEQUENCE_NUMBER", StartingSequenceNumber: sequenceNumber }
              : { ShardIteratorType: "TRIM_HORIZON" })
          })
        )
      ),
      (out) => out.ShardIterator!
    )
  }

  private archiveShard(shardId: string, signal: AbortSignal): Effect.Effect<void> {
    return Effect.gen({ self: this }, function* () {
      const key = archiverCheckpointKey(this.options.stream, shardId)
      let buffer: Buffered | undefined
      let iterator: string | undefined
      // Where to resume reading after an error: after the last record held (buffered or written).
      let resumeAfter: string | undefined
      let loaded = false
      /** One page of the shard; "ended" once a closed shard (after a reshard) is read to its end and flushed. */
      const step = Effect.gen({ self: this }, function* () {
        if (!loaded) {
          const checkpoint = Option.getOrUndefined(yield* this.options.checkpoints.get<ArchiverCheckpoint>(key))
          resumeAfter = checkpoint?.data.sequenceNumber
          loaded = true
        }
        if (buffer && this.due(buffer)) buffer = yield* this.flush(shardId, buffer, buffer.bytes >= this.flushBytes ? "size" : "time")
        iterator ??= yield* this.iteratorAfter(shardId, resumeAfter)
        const read = iterator
        const page = yield* kinesisRead(() => this.options.kinesis.send(new GetRecordsCommand({ ShardIterator: read, Limit: this.options.batchSize ?? 10_000 })))
        const records = page.Records ?? []
        for (const record of records) {
          // An object spans at most flushMs of arrival time, also when a backlog is read at once:
          // replay --from lists objects by their oldest arrival hour (raw.ts EARLY_SLACK_MS).
          if (buffer && arrivalOf(record).getTime() - buffer.oldestArrival.getTime() >= this.flushMs) buffer = yield* this.flush(shardId, buffer, "time")
          buffer = this.add(buffer, record)
          resumeAfter = record.SequenceNumber!
          if (buffer.bytes >= this.flushBytes) buffer = yield* this.flush(shardId, buffer, "size")
        }
        iterator = page.NextShardIterator
        if (!iterator) {
          if (buffer) buffer = yield* this.flush(shardId, buffer, "shard-closed")
          return "ended" as const
        }
        if (records.length === 0) {
          const untilDue = buffer ? buffer.startedAt + this.flushMs - Date.now() : Infinity
          yield* pauseUnless(signal, Math.min(this.options.idleWaitMs ?? 200, untilDue))
        }
        return "more" as const
      })
      // A failure is reported; the shard goes on after the last record held.
      yield* readShardUntil(signal, step, (error) => {
        this.stats.errors++
        this.options.onError?.(shardId, error)
        iterator = undefined
      })
      // Graceful stop: deliver what is buffered (a failure here leaves it to the next run, from the checkpoint).
      if (buffer) {
        const held = buffer
        yield* this.flush(shardId, held, "shutdown").pipe(Effect.catch((error) => Effect.sync(() => this.options.onError?.(shardId, error))))
      }
    })
  }

  private due(buffer: Buffered) {
    return buffer.bytes >= this.flushBytes || Date.now() - buffer.startedAt >= this.flushMs
  }

  private add(buffer: Buffered | undefined, record: _Record): Buffered {
    const sequence = record.SequenceNumber!
    const next = buffer ?? {
      lines: [],
      bytes: 0,
      firstSequence: sequence,
      lastSequence: sequence,
      oldestArrival: arrivalOf(record),
      startedAt: Date.now()
    }
    // A corrupt aggregate is archived as it came (one line, base64) rather than dropped: the lake keeps everything.
    let users: Array<{ data: Uint8Array }>
    try {
      users = deaggregate(record.Data!, record.PartitionKey!)
    } catch {
      users = [{ data: Buffer.from(JSON.stringify({ undecodableAggregate: Buffer.from(record.Data!).toString("base64") })) }]
    }
    for (const user of users) {
      const line = Buffer.from(user.data).toString("utf8")
      next.lines.push(line)
      next.bytes += Buffer.byteLength(line) + 1
    }
    next.lastSequence = sequence
    return next
  }

  /** Writes one object, then checkpoints; the (now empty) buffer. If the write fails the caller keeps the buffer. */
  private flush(shardId: string, buffer: Buffered, reason: ArchiverFlush["reason"]): Effect.Effect<undefined, LakeError> {
    return Effect.gen({ self: this }, function* () {
      const body = encodeRawObject(buffer.lines)
      const key = rawObjectKey(buffer.oldestArrival, this.options.stream, buffer.firstSequence, randomUUID())
      yield* this.options.lake.putNew(key, body, "application/x-ndjson")
      metrics.emit("lake", { LakeObjectsWritten: 1, LakeBytesWritten: body.byteLength })
      this.stats.objects++
      this.stats.bytes += body.byteLength
      this.stats.records += buffer.lines.length
      // The object is durable: a failed checkpoint must not write it again (the next flush's
      // checkpoint supersedes this one; a restart before that re-delivers, which is allowed).
      yield* this.options.checkpoints
        .advance(archiverCheckpointKey(this.options.stream, shardId), sequencePosition(buffer.lastSequence), {
          sequenceNumber: buffer.lastSequence,
          object: key
        } satisfies ArchiverCheckpoint)
        .pipe(
          Effect.catch((error) =>
            Effect.sync(() => {
              this.stats.errors++
              this.options.onError?.(shardId, error)
            })
          )
        )
      this.options.onFlush?.({
        shardId,
        key,
        records: buffer.lines.length,
        bytes: body.byteLength,
        firstSequence: buffer.firstSequence,
        lastSequence: buffer.lastSequence,
        reason
      })
      return undefined
    })
  }
}
