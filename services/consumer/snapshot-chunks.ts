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
import { Effect, Result } from "effect"
import pg from "pg"
import type { ChangeEvent, SnapshotChunk } from "../../contracts/change-event.ts"
import { isMissingObject } from "../lake/claims.ts"
import { chunkEvents, decodeChunk } from "../lake/snapshot-chunks.ts"
import type { LakeStoreShape } from "../shared/lake-store.ts"
import { mergeSnapshotChunk, type ChunkMerge } from "../warehouse/snapshot-merge.ts"

/** The lake could not be read right now: the batch is retried later (never skipped, never dead-lettered for it). */
export class SnapshotChunkUnavailable extends Error {
  override readonly name = "SnapshotChunkUnavailable"
}

export interface ChunkDeps {
  readonly pool: pg.Pool
  readonly lake: LakeStoreShape | undefined
  readonly schema?: string
  readonly pipelineSchema?: string
}

export type ChunkOutcome = { readonly merged: Extract<ChunkMerge, { _tag: "Merged" }> } | { readonly events: ReadonlyArray<ChangeEvent>; readonly reason: string }

/** The chunk's rows as COPY text; missing from the lake → an error that isolates the pointer, any other lake failure → SnapshotChunkUnavailable. */
const readChunk = async (lake: LakeStoreShape | undefined, pointer: SnapshotChunk): Promise<Buffer> => {
  if (!lake) throw new SnapshotChunkUnavailable(`snapshot chunk ${pointer.object.key}: no lake bucket configured`)
  const body = await Effect.runPromise(Effect.result(lake.get(pointer.object.key)))
  if (Result.isFailure(body)) {
    if (isMissingObject(body.failure)) throw new Error(`snapshot chunk ${pointer.object.key} is missing from the lake`)
    throw new SnapshotChunkUnavailable(`snapshot chunk ${pointer.object.key}: ${body.failure.message}`)
  }
  return decodeChunk(body.success)
}

export const applySnapshotChunk = async (deps: ChunkDeps, pointer: SnapshotChunk): Promise<ChunkOutcome> => {
  const text = await readChunk(deps.lake, pointer)
  const client = new pg.Client({ ...(deps.pool.options as pg.ClientConfig), application_name: "totes-consumer-snapshot", pipeline: false } as pg.ClientConfig)
  client.on("error", () => {}) // a lost connection fails the query in progress; that is what counts
  await client.connect()
  let merge: ChunkMerge
  try {
    merge = await mergeSnapshotChunk(client, pointer, text, { schema: deps.schema, pipelineSchema: deps.pipelineSchema })
  } finally {
    await client.end().catch(() => {})
  }
  if (merge._tag === "Merged") return { merged: merge }
  return { events: chunkEvents(pointer, text.toString("utf8")), reason: merge.reason }
}
