/**
 * The consumer's side of a snapshot chunk (contracts/change-event.ts SnapshotChunk): the rows are
 * read from the lake and merged set-wise (services/warehouse/snapshot-merge.ts) on a connection
 * of their own (COPY cannot share the pool's pipelined connections); when the set-wise path
 * declines (a paused table, a type the schema check must look at), the chunk's rows come back as
 * op "r" change events for the ordinary apply.
 *
 * A chunk is merged in its own transaction before the rest of its batch; if the batch is then
 * retried, the merge runs again and changes nothing (position guard, fact rows unique by event id).
 */
import { Effect, Schema } from "effect"
import pg from "pg"
import type { ChangeEvent, SnapshotChunk } from "../../contracts/change-event.ts"
import { isMissingObject } from "../lake/claims.ts"
import { chunkEvents, decodeChunk } from "../lake/snapshot-chunks.ts"
import type { LakeStoreShape } from "../shared/lake-store.ts"
import { mergeSnapshotChunk, type ChunkMerge } from "../warehouse/snapshot-merge.ts"
import { tryWarehouse, type WarehouseError } from "../warehouse/warehouse-errors.ts"

/** The lake could not be read right now: the batch is retried later (never skipped, never dead-lettered for it). */
export class SnapshotChunkUnavailable extends Schema.TaggedError<SnapshotChunkUnavailable>()("SnapshotChunkUnavailable", {
  key: Schema.String,
  message: Schema.String
}) {}

/** The lake answered that the chunk is not there, or it does not hold the rows its pointer describes: the pointer is poison, isolated and dead-lettered. */
export class SnapshotChunkMissing extends Schema.TaggedError<SnapshotChunkMissing>()("SnapshotChunkMissing", {
  key: Schema.String,
  message: Schema.String
}) {}

export interface ChunkDeps {
  readonly pool: pg.Pool
  readonly lake: LakeStoreShape | undefined
  readonly schema?: string
  readonly pipelineSchema?: string
}

export type ChunkOutcome = { readonly merged: Extract<ChunkMerge, { _tag: "Merged" }> } | { readonly events: ReadonlyArray<ChangeEvent>; readonly reason: string }

const notAChunk = (key: string, cause: unknown) => new SnapshotChunkMissing({ key, message: `snapshot chunk ${key} does not hold the rows its pointer describes: ${(cause as Error)?.message ?? String(cause)}` })

/** The chunk's rows as COPY text. */
const readChunk = (lake: LakeStoreShape | undefined, pointer: SnapshotChunk): Effect.Effect<Buffer, SnapshotChunkUnavailable | SnapshotChunkMissing> => {
  const key = pointer.object.key
  if (!lake) return Effect.fail(new SnapshotChunkUnavailable({ key, message: `snapshot chunk ${key}: no lake bucket configured` }))
  return lake.get(key).pipe(
    Effect.mapError((error) =>
      isMissingObject(error)
        ? new SnapshotChunkMissing({ key, message: `snapshot chunk ${key} is missing from the lake` })
        : new SnapshotChunkUnavailable({ key, message: `snapshot chunk ${key}: ${error.message}` })
    ),
    Effect.flatMap((body) => Effect.tryPromise({ try: () => decodeChunk(body), catch: (cause) => notAChunk(key, cause) }))
  )
}

/** A connection of its own (COPY cannot share the pool's pipelined ones), ended whatever happens. */
const mergeConnection = (pool: pg.Pool) =>
  Effect.acquireRelease(
    tryWarehouse(async () => {
      const client = new pg.Client({ ...(pool.options as pg.ClientConfig), application_name: "totes-consumer-snapshot", pipeline: false } as pg.ClientConfig)
      client.on("error", () => {}) // a lost connection fails the query in progress; that is what counts
      await client.connect()
      return client
    }),
    (client) => Effect.promise(() => client.end().catch(() => {}))
  )

export const applySnapshotChunk = (deps: ChunkDeps, pointer: SnapshotChunk): Effect.Effect<ChunkOutcome, SnapshotChunkUnavailable | SnapshotChunkMissing | WarehouseError> =>
  Effect.gen(function* () {
    const text = yield* readChunk(deps.lake, pointer)
    const merge = yield* Effect.scoped(
      Effect.flatMap(mergeConnection(deps.pool), (client) => tryWarehouse(() => mergeSnapshotChunk(client, pointer, text, { schema: deps.schema, pipelineSchema: deps.pipelineSchema })))
    )
    if (merge._tag === "Merged") return { merged: merge }
    const events = yield* Effect.try({ try: () => chunkEvents(pointer, text.toString("utf8")), catch: (cause) => notAChunk(pointer.object.key, cause) })
    return { events, reason: merge.reason }
  })
