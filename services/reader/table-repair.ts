/**
 * Online repair of chosen tables (`totes resnapshot --tables …`), a supervised side task of the
 * streaming session: it polls the repair request in the checkpoint table, re-reads each table in
 * key order, chunk by chunk, between two WAL markers (repair-window.ts says why the result is
 * exact), and records its progress in the same item. Streaming goes on throughout; no other table
 * is read.
 *
 * Per chunk:
 *   1. register the chunk with the intake's windows, write the low watermark;
 *   2. wait until every transaction that was running when the marker was written has ended
 *      (its commit may precede the marker in the WAL without being visible yet);
 *   3. select the chunk (one statement: one snapshot), hand it to the windows;
 *   4. write the high watermark; the intake publishes the rows the stream did not change in the
 *      window, and the chunk's range record, when the marker reaches it;
 *   5. once Kinesis has accepted them, record the chunk's last key: a repair interrupted by a stop
 *      or a lost connection resumes after the last recorded chunk in the next session.
 *
 * A request that cannot be carried out (a table this reader does not capture, a key that is not a
 * single integer column, an SQL error) is marked failed and streaming goes on; a lost source
 * connection ends the session as always.
 */
import { randomUUID } from "node:crypto"
import { Effect, Exit, Option } from "effect"
import pg from "pg"
import { isActive, repairRequestKey, withRate, type RepairRequest, type RepairTableProgress } from "../../contracts/repair.ts"
import { kinesisBackoff } from "../shared/kinesis/publisher.ts"
import { metrics } from "../shared/metrics.ts"
import type { SessionContext } from "./context.ts"
import { isSourceConnectionError, underlying } from "./errors.ts"
import { integerKey, markerContent } from "./repair-window.ts"
import { estimateRows, primaryKeyColumns, readKeyChunk } from "./snapshot.ts"
import { emitRepairMarker, runningTransactions, SOURCE_SESSION_OPTIONS, stillRunning } from "./source-admin.ts"

const INTEGER_KEYS = new Set(["smallint", "integer", "bigint"])

/** A request that cannot be carried out: marked failed, streaming goes on. */
class RepairRefused extends Error {
  override readonly name = "RepairRefused"
}

/** A newer request or a cancel replaced the one being worked on. */
class RepairSuperseded extends Error {
  override readonly name = "RepairSuperseded"
}

export const tableRepairs = (ctx: SessionContext) =>
  Effect.gen(function* () {
    const key = repairRequestKey(ctx.settings.slot)
    for (;;) {
      const stored = Option.getOrUndefined(yield* ctx.settings.checkpoints.get<RepairRequest | null>(key).pipe(Effect.retry({ schedule: kinesisBackoff })))
      const request = stored?.data
      if (request && isActive(request) && request.position === stored.position) yield* runRequest(ctx, request)
      yield* Effect.sleep(`${ctx.settings.repairPollMs} millis`)
    }
  })

const now = () => new Date().toISOString()

const runRequest = (ctx: SessionContext, initial: RepairRequest) =>
  Effect.gen(function* () {
    let request: RepairRequest = { ...initial, state: "running", startedAt: initial.startedAt ?? now() }
    const save = (next: RepairRequest) =>
      Effect.gen(function* () {
        request = next
        const written = yield* ctx.settings.checkpoints.advance(repairRequestKey(ctx.settings.slot), request.position, request).pipe(Effect.retry({ schedule: kinesisBackoff }))
        if (!written) return yield* Effect.fail(new RepairSuperseded(`repair ${request.id} was replaced or cancelled`))
      })
    const setTable = (progress: RepairTableProgress, through?: string) =>
      save({
        ...request,
        ...(through ? { through } : {}),
        progress: request.progress.map((p) => (p.table === progress.table ? withRate(progress, Date.now()) : p))
      })

    const work = Effect.gen(function* () {
      yield* save(request)
      if (initial.state === "requested") ctx.progress({ phase: "info", message: `repair ${request.id}: re-reading ${request.tables.join(", ")} while streaming` })
      const client = yield* Effect.acquireRelease(
        Effect.tryPromise(async () => {
          const c = new pg.Client({ connectionString: ctx.settings.sourceUrl, application_name: "totes-reader-repair", options: SOURCE_SESSION_OPTIONS })
          c.on("error", () => {}) // a lost connection fails the query in progress
          await c.connect()
          return c
        }),
        (c) => Effect.promise(() => c.end().catch(() => {}))
      )
      for (const progress of request.progress) {
        if (progress.state === "done") continue
        yield* repairTable(ctx, client, request, progress, setTable)
      }
      yield* save({ ...request, state: "done", finishedAt: now() })
      ctx.progress({ phase: "info", message: `repair ${request.id}: ${request.tables.join(", ")} re-read and published through ${request.through ?? "–"}` })
    }).pipe(Effect.scoped)

    yield* work.pipe(
      Effect.catch((error: unknown) => {
        if (error instanceof RepairSuperseded) return Effect.sync(() => ctx.progress({ phase: "info", message: `${error.message}: stopped working on it` }))
        if (isSourceConnectionError(error)) return Effect.fail(error)
        const cause = underlying(error)
        const message = cause instanceof Error ? cause.message : String(cause)
        ctx.progress({ phase: "warning", message: `repair ${request.id} failed: ${message}` })
        return save({ ...request, state: "failed", finishedAt: now(), error: message }).pipe(Effect.catch(() => Effect.void))
      })
    )
  })

const repairTable = (
  ctx: SessionContext,
  client: pg.Client,
  request: RepairRequest,
  initial: RepairTableProgress,
  setTable: (progress: RepairTableProgress, through?: string) => Effect.Effect<void, unknown>
) =>
  Effect.gen(function* () {
    const table = initial.table
    if (!ctx.settings.tables.includes(table)) {
      return yield* Effect.fail(new RepairRefused(`table ${table} is not captured by this reader (TOTES_TABLES: ${ctx.settings.tables.join(", ")})`))
    }
    const keys = yield* Effect.tryPromise(() => primaryKeyColumns(client, table))
    if (keys.length !== 1 || !INTEGER_KEYS.has(keys[0]!.type)) {
      return yield* Effect.fail(
        new RepairRefused(`table ${table} cannot be repaired by key range: its primary key is ${keys.length === 0 ? "missing" : keys.map((k) => `${k.name} ${k.type}`).join(", ")}, not one integer column`)
      )
    }
    const keyColumn = keys[0]!.name
    let progress: RepairTableProgress = initial
    if (progress.state === "waiting") {
      progress = { ...progress, state: "running", startedAt: now(), estimatedRows: yield* Effect.tryPromise(() => estimateRows(client, table)) }
      yield* setTable(progress)
    }
    let after = progress.lastKey
    for (;;) {
      const chunk = yield* readChunk(ctx, client, request, { table, keyColumn, after }, (waitingFor) => setTable({ ...progress, waitingFor }))
      if (chunk._tag === "Truncated") continue // the table was truncated meanwhile: read the chunk again
      metrics.emit("reader", { RepairedRows: chunk.published }, { Table: table })
      progress = {
        ...progress,
        rows: progress.rows + chunk.rows,
        published: progress.published + chunk.published,
        superseded: progress.superseded + chunk.superseded,
        chunks: progress.chunks + 1,
        lastKey: chunk.through ?? progress.lastKey,
        waitingFor: undefined
      }
      const done = chunk.through === null
      if (done) progress = { ...progress, state: "done", finishedAt: now() }
      yield* setTable(progress, chunk.highWatermark)
      ctx.progress({ phase: "repair", table, rows: progress.rows, done, through: chunk.highWatermark })
      if (done) return
      after = chunk.through
    }
  })

/**
 * One chunk, steps 1–5 of the module comment. `onWait` is told (once, after a second) which
 * transactions the chunk waits for.
 */
const readChunk = (
  ctx: SessionContext,
  client: pg.Client,
  request: RepairRequest,
  range: { readonly table: string; readonly keyColumn: string; readonly after: number | null },
  onWait: (waitingFor: string) => Effect.Effect<void, unknown>
) => {
  const chunkId = `${request.id}:${range.table}:${range.after ?? ""}:${randomUUID().slice(0, 8)}`
  return Effect.gen(function* () {
    ctx.intake.repairs.expect({ id: chunkId, repair: request.id, table: range.table, keyColumn: range.keyColumn, after: range.after })
    const settled = ctx.intake.chunkSettled(chunkId)
    yield* Effect.tryPromise(() => emitRepairMarker(client, markerContent(chunkId, "low", now())))

    let open = yield* Effect.tryPromise(() => runningTransactions(client))
    const waitStarted = Date.now()
    let reported = false
    while (open.length > 0) {
      yield* Effect.sleep("10 millis")
      open = yield* Effect.tryPromise(() => stillRunning(client, open))
      if (open.length > 0 && !reported && Date.now() - waitStarted > 1_000) {
        reported = true
        yield* onWait(`transaction(s) ${open.slice(0, 5).join(", ")}${open.length > 5 ? ` and ${open.length - 5} more` : ""}, open since the chunk began`)
      }
    }

    const rows = yield* Effect.tryPromise(() => readKeyChunk(client, { ...range, limit: request.chunkRows }))
    const through = rows.length < request.chunkRows ? null : integerKey(rows[rows.length - 1]![range.keyColumn], range.keyColumn)
    ctx.intake.repairs.supply(chunkId, { rows, through })
    yield* Effect.tryPromise(() => emitRepairMarker(client, markerContent(chunkId, "high", now())))

    const outcome = yield* Effect.promise(() => settled)
    if (outcome._tag === "Truncated") return outcome
    // Recorded as done only once Kinesis has every record of the chunk.
    yield* ctx.accepted.until(() => ctx.outbox.acceptedBefore(outcome.barrier))
    return { ...outcome, rows: rows.length, through }
  }).pipe(
    // Whatever ends the chunk early, the intake stops waiting for it.
    Effect.onExit((exit) => (Exit.isSuccess(exit) ? Effect.void : Effect.sync(() => ctx.intake.forgetChunk(chunkId))))
  )
}
