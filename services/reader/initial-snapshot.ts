/**
 * The initial snapshot phase of a session: a new slot with an exported snapshot, every table
 * read in it and published through the same outbox as the stream, progress recorded per table
 * once that table's rows are accepted by Kinesis, then the first checkpoint at the slot's
 * consistent point. With a lake (always in a deployment) a table is read with COPY in chunks
 * written to the lake and announced by one pointer record each (snapshot-copy.ts); without one,
 * row by row as change events (snapshot.ts). Streaming from that point gives every later change: no gap, no overlap.
 * A snapshot interrupted part-way resumes the remaining tables in a fresh snapshot (the exported
 * one dies with its connection), labelled with the consistent point so that changes streamed
 * after it still win by position.
 */
import { Effect, Schema } from "effect"
import pg from "pg"
import { readerCheckpointKey, snapshotStateKey, type SnapshotState, type SnapshotTableProgress } from "../../contracts/checkpoint.ts"
import { metrics } from "../shared/metrics.ts"
import { writeCheckpoint } from "./checkpointer.ts"
import type { SessionContext } from "./context.ts"
import type { SourcePosition } from "./outbox.ts"
import { createSlotWithSnapshot, estimateRows, keyColumns, readTableSnapshot } from "./snapshot.ts"
import { readTableInChunks } from "./snapshot-copy.ts"
import { FAILOVER_MIN_VERSION } from "./slot-health.ts"
import { dropSlot, serverVersionNum, SOURCE_SESSION_OPTIONS } from "./source-admin.ts"

export class SnapshotInterrupted extends Schema.TaggedError<SnapshotInterrupted>()("SnapshotInterrupted", {
  message: Schema.String
}) {}

/** Forgets the reader's state (first, so a crash after dropping the slot cannot look like a finished snapshot), drops the slot. */
export const startOver = (ctx: SessionContext, dropExisting: boolean) =>
  Effect.gen(function* () {
    const { checkpoints, slot } = ctx.settings
    yield* checkpoints.put(snapshotStateKey(slot), null)
    yield* checkpoints.put(readerCheckpointKey(slot), null)
    if (dropExisting) yield* Effect.tryPromise(() => dropSlot(ctx.admin, slot))
  })

/**
 * Creates the slot (with failover when asked for and the server has it: PostgreSQL 17+; the
 * slot-health check warns otherwise) and reads every table; returns the position to stream from.
 */
export const initialSnapshot = (ctx: SessionContext, stopRequested: () => boolean) =>
  Effect.gen(function* () {
    const failover = ctx.settings.failoverSlot && (yield* Effect.tryPromise(() => serverVersionNum(ctx.admin))) >= FAILOVER_MIN_VERSION
    const created = yield* Effect.acquireRelease(
      Effect.tryPromise(() => createSlotWithSnapshot(ctx.settings.sourceUrl, ctx.settings.slot, { failover })),
      (slot) => Effect.promise(() => slot.connection.end().catch(() => {}))
    )
    if (failover) ctx.progress({ phase: "info", message: `created slot '${ctx.settings.slot}' with failover: standbys with sync_replication_slots = on keep it` })
    const state: SnapshotState = { consistentPoint: created.consistentPoint, createdAt: created.createdAt, tablesDone: [], complete: false }
    yield* ctx.settings.checkpoints.put(snapshotStateKey(ctx.settings.slot), state)
    return yield* readSnapshotTables(ctx, state, created.snapshotName, stopRequested)
  }).pipe(Effect.scoped)

export const resumeSnapshot = (ctx: SessionContext, state: SnapshotState, stopRequested: () => boolean) =>
  Effect.gen(function* () {
    ctx.progress({ phase: "info", message: `resuming the initial snapshot: ${state.tablesDone.length} of ${ctx.settings.tables.length} tables were done` })
    return yield* readSnapshotTables(ctx, state, undefined, stopRequested)
  })

const readSnapshotTables = (ctx: SessionContext, initial: SnapshotState, snapshotName: string | undefined, stopRequested: () => boolean) =>
  Effect.gen(function* () {
    const { settings } = ctx
    let state = initial
    const client = yield* Effect.acquireRelease(
      Effect.tryPromise(async () => {
        const c = new pg.Client({ connectionString: settings.sourceUrl, application_name: "totes-reader-snapshot", options: SOURCE_SESSION_OPTIONS })
        await c.connect()
        return c
      }),
      (c) => Effect.promise(() => c.end().catch(() => {}))
    )
    yield* Effect.tryPromise(async () => {
      await client.query("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
      if (snapshotName) await client.query(`SET TRANSACTION SNAPSHOT '${snapshotName.replace(/'/g, "")}'`)
    })
    const committedAt = state.createdAt ?? new Date().toISOString()
    for (const table of settings.tables) {
      if (state.tablesDone.includes(table)) continue
      const startedAt = new Date().toISOString()
      const estimatedRows = yield* Effect.tryPromise(() => estimateRows(client, table))
      let rows = 0
      let progressWrites: Promise<void> = Promise.resolve()
      let lastProgressWrite = 0
      let progress = { table, rows: 0, estimatedRows, startedAt, updatedAt: startedAt, done: false } satisfies SnapshotTableProgress
      const withProgress = (p: SnapshotTableProgress): SnapshotState => ({ ...state, progress: [...(state.progress ?? []).filter((q) => q.table !== table), p] })
      /** After every batch or chunk; throws when a stop was requested (finished tables are recorded; the next start resumes the rest). */
      const advance = (total: number) => {
        if (stopRequested()) throw new SnapshotInterrupted({ message: "stopped during the initial snapshot" })
        rows = total
        ctx.progress({ phase: "snapshot", table, rows, done: false })
        progress = { ...progress, rows, updatedAt: new Date().toISOString() }
        // For `totes status` only (a lost write is corrected by the next one): at most one a second,
        // one at a time, awaited before the table is recorded as done (a late one never overwrites that).
        if (Date.now() - lastProgressWrite < 1_000) return
        lastProgressWrite = Date.now()
        const next = withProgress(progress)
        progressWrites = progressWrites.then(() => Effect.runPromise(Effect.ignore(settings.checkpoints.put(snapshotStateKey(settings.slot), next))))
      }
      const lake = settings.lake
      yield* Effect.tryPromise({
        try: async () => {
          if (!lake) {
            await readTableSnapshot(client, {
              database: ctx.database,
              consistentPoint: state.consistentPoint,
              committedAt,
              table,
              onBatch: async (events) => {
                if (stopRequested()) throw new SnapshotInterrupted({ message: "stopped during the initial snapshot" })
                for (const event of events) await ctx.intake.addEvent(event)
                advance(rows + events.length)
              }
            })
            return
          }
          await readTableInChunks(client, {
            lake,
            database: ctx.database,
            consistentPoint: state.consistentPoint,
            committedAt,
            table,
            keyColumns: await keyColumns(client, table),
            chunkRows: settings.snapshotChunkRows,
            route: (partitionKey) => ctx.routing.indexOfPartitionKey(partitionKey),
            shards: ctx.routing.shards.length,
            announce: (pointer, partitionKey) => ctx.intake.addSnapshotChunk(pointer, partitionKey),
            onChunk: advance
          })
        },
        catch: (error) => (error instanceof SnapshotInterrupted ? error : (error as Error))
      })
      // The table counts as done only once Kinesis has accepted all of its rows (or chunk pointers).
      const barrier = ctx.outbox.nextTicket
      yield* ctx.accepted.until(() => ctx.outbox.acceptedBefore(barrier))
      yield* Effect.promise(() => progressWrites)
      metrics.emit("reader", { SnapshotRows: rows }, { Table: table })
      state = withProgress({ ...progress, rows, updatedAt: new Date().toISOString(), done: true })
      state = { ...state, tablesDone: [...state.tablesDone, table] }
      yield* settings.checkpoints.put(snapshotStateKey(settings.slot), state)
      ctx.progress({ phase: "snapshot", table, rows, done: true })
    }
    yield* Effect.tryPromise(() => client.query("COMMIT"))
    // Not "now": only what committed before the slot existed is covered by the consistent point.
    const position: SourcePosition = { lsn: state.consistentPoint, committedAt }
    yield* writeCheckpoint(ctx, position)
    yield* settings.checkpoints.put(snapshotStateKey(settings.slot), { ...state, complete: true })
    return position
  }).pipe(Effect.scoped)
