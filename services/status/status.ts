/**
 * Pipeline status: where the reader and the consumer are, how far behind the source, and the
 * warehouse's consistent_through watermark. Read-only everywhere.
 */
import { Effect, Option } from "effect"
import pg from "pg"
import { readerCheckpointKey, shardCheckpointKey, type ReaderCheckpoint } from "../../contracts/checkpoint.ts"
import { compareLsn, lsnToBigInt, normalizeLsn } from "../../contracts/lsn.ts"
import type { ShardCheckpoint } from "../consumer/poller.ts"
import { readFreshness, readShardPositions } from "../consumer/apply.ts"
import type { CheckpointStoreShape } from "../shared/checkpoint-store.ts"
import { currentWalLsn, slotInfo } from "../reader/source-admin.ts"

export interface StatusInputs {
  readonly source: pg.ClientBase
  readonly warehouse: pg.ClientBase
  readonly checkpoints: CheckpointStoreShape
  readonly slot: string
  readonly stream: string
  readonly schema?: string
  readonly pipelineSchema?: string
}

export interface PipelineStatus {
  readonly at: string
  readonly source: { readonly walLsn: string }
  readonly reader: {
    readonly checkpointLsn: string | null
    readonly checkpointCommittedAt: string | null
    readonly slotConfirmedLsn: string | null
    readonly slotActive: boolean
    readonly retainedWalBytes: number | null
    readonly lagBytes: number | null
    readonly lagSeconds: number | null
  }
  readonly consumer: {
    readonly shards: ReadonlyArray<{ readonly shardId: string; readonly checkpointSequence: string | null; readonly appliedSequence: string | null; readonly heartbeatLsn: string | null }>
    readonly consistentThroughLsn: string | null
    readonly consistentThroughAt: string | null
    readonly lagBytes: number | null
    readonly lagSeconds: number | null
  }
}

/** A warehouse not migrated yet has no watermark; any other error (permissions, wrong schema) is reported. */
const notMigratedYet = <A>(fallback: A) => (error: unknown): A => {
  if ((error as { code?: string })?.code === "42P01" || (error as { code?: string })?.code === "3F000") return fallback
  throw error
}

const bytesBetween = (newer: string, older: string | null) => (older ? Math.max(0, Number(lsnToBigInt(newer) - lsnToBigInt(older))) : null)

export const readStatus = async (inputs: StatusInputs): Promise<PipelineStatus> => {
  const walLsn = await currentWalLsn(inputs.source)
  const slot = await slotInfo(inputs.source, inputs.slot)
  const checkpoint = Option.getOrUndefined(await Effect.runPromise(inputs.checkpoints.get<ReaderCheckpoint | null>(readerCheckpointKey(inputs.slot))))
  const schemas = { schema: inputs.schema, pipelineSchema: inputs.pipelineSchema }
  const freshness = await readFreshness(inputs.warehouse, schemas).catch(notMigratedYet({ consistentThroughLsn: null, consistentThroughAt: null }))
  const positions = await readShardPositions(inputs.warehouse, { ...schemas, stream: inputs.stream }).catch(notMigratedYet([]))
  const shards = await Promise.all(
    positions.map(async (p) => {
      const cp = Option.getOrUndefined(await Effect.runPromise(inputs.checkpoints.get<ShardCheckpoint>(shardCheckpointKey(inputs.stream, p.shardId))))
      return { shardId: p.shardId, checkpointSequence: cp?.data.sequenceNumber ?? null, appliedSequence: p.sequenceNumber, heartbeatLsn: p.heartbeatLsn }
    })
  )
  const through = freshness.consistentThroughLsn ? normalizeLsn(freshness.consistentThroughLsn) : null
  const throughAt = freshness.consistentThroughAt ? new Date(freshness.consistentThroughAt).toISOString() : null
  const consumerLag = bytesBetween(walLsn, through)
  const readerLag = bytesBetween(walLsn, checkpoint?.data?.lsn ?? null)
  return {
    at: new Date().toISOString(),
    source: { walLsn },
    reader: {
      checkpointLsn: checkpoint?.data?.lsn ?? null,
      checkpointCommittedAt: checkpoint?.data?.committedAt ?? null,
      slotConfirmedLsn: slot?.confirmedFlushLsn ?? null,
      slotActive: Boolean(slot?.activePid),
      retainedWalBytes: slot ? bytesBetween(walLsn, slot.restartLsn) : null,
      lagBytes: readerLag,
      // Nothing pending means no lag; otherwise the age of the last durable commit.
      lagSeconds: readerLag === null ? null : readerLag === 0 ? 0 : Math.max(0, (Date.now() - Date.parse(checkpoint!.data!.committedAt)) / 1000)
    },
    consumer: {
      shards,
      consistentThroughLsn: through,
      consistentThroughAt: throughAt,
      lagBytes: consumerLag,
      // Nothing pending means no lag, however old the last commit is.
      lagSeconds: throughAt === null ? null : consumerLag === 0 ? 0 : Math.max(0, (Date.now() - Date.parse(throughAt)) / 1000)
    }
  }
}

/**
 * Resolves once everything committed in the source before the call is in the warehouse
 * (consistent_through ≥ the source's WAL position at the call); rejects on timeout.
 */
export const waitCaughtUp = async (
  inputs: Pick<StatusInputs, "source" | "warehouse" | "schema" | "pipelineSchema">,
  options: { timeoutMs: number; pollMs?: number; onWait?: (target: string, through: string | null) => void }
): Promise<{ target: string; through: string; waitedMs: number }> => {
  const started = Date.now()
  const target = await currentWalLsn(inputs.source)
  for (;;) {
    const { consistentThroughLsn } = await readFreshness(inputs.warehouse, { schema: inputs.schema, pipelineSchema: inputs.pipelineSchema }).catch(
      notMigratedYet({ consistentThroughLsn: null as string | null })
    )
    if (consistentThroughLsn && compareLsn(normalizeLsn(consistentThroughLsn), target) >= 0) {
      return { target, through: normalizeLsn(consistentThroughLsn), waitedMs: Date.now() - started }
    }
    if (Date.now() - started > options.timeoutMs) {
      throw new Error(`not caught up after ${Math.round(options.timeoutMs / 1000)} s: source at ${target}, warehouse consistent through ${consistentThroughLsn ?? "nothing yet"}`)
    }
    options.onWait?.(target, consistentThroughLsn)
    await new Promise((r) => setTimeout(r, options.pollMs ?? 250))
  }
}
