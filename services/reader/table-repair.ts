/**
 * Online repair of chosen tables (`totes resnapshot --tables …`), a supervised side task of the
 * streaming session: it polls the repair request in the checkpoint table, re-reads each table in
 * key order, chunk by chunk, between two WAL markers (repair-window.ts says why the result is
 * exact), and records its progress in the same item. Streaming goes on throughout; no other table
 * is read.
 *
 * Per table: a start marker A; once the transactions open at A have ended, the largest key M
 * bounds the chunks (repair-window.ts, tailRange: the keys above M are one range at A). Per chunk:
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
import { integerKey, markerContent, tailRange } from "./repair-window.ts"
import { estimateRows, maxKey, primaryKeyColumns, readKeyChunk } from "./snapshot.ts"
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
    const waitingFor = (what: string) => setTable({ ...progress, waitingFor: what })
    if (progress.state === "waiting" || progress.startLsn === null) {
      // The start marker; once the transactions open at it have ended, its largest key bounds the chunks.
      const startLsn = yield* Effect.tryPromise(() => emitRepairMarker(client, markerContent(`${request.id}:${table}:start`, "low", now())))
      yield* waitForOpenTransactions(client, "the table's repair began", waitingFor)
      const upperKey = yield* Effect.tryPromise(() => maxKey(client, table, keyColumn))
      if (upperKey !== null && !Number.isSafeInteger(upperKey)) {
        return yield* Effect.fail(new RepairRefused(`table ${table} cannot be repaired by key range: its largest key is beyond 2^53`))
      }
      const estimatedRows = yield* Effect.tryPromise(() => estimateRows(client, table))
      progress = { ...progress, state: "running", startedAt: progress.startedAt ?? now(), estimatedRows, startLsn, upperKey }
      yield* setTable(progress)
    }
    const upperKey = progress.upperKey
    let after = progress.lastKey
    while (upperKey !== null && (after === null || after < upperKey)) {
      const chunk = yield* readChunk(ctx, client, request, { table, keyColumn, after, upTo: upperKey }, waitingFor)
      if (chunk._tag === "Truncated") continue // the table was truncated meanwhile: read the chunk again
      metrics.emit("reader", { RepairedRows: chunk.published }, { Table: table })
      progress = {
        ...progress,
        rows: progress.rows + chunk.rows,
        published: progress.published + chunk.published,
        superseded: progress.superseded + chunk.superseded,
        chunks: progress.chunks + 1,
        lastKey: chunk.through,
        waitingFor: undefined
      }
      yield* setTable(progress, chunk.highWatermark)
      ctx.progress({ phase: "repair", table, rows: progress.rows, done: false, through: chunk.highWatermark })
      after = chunk.through
    }
    // The keys above the bound: absent at the start marker (rows inserted since are newer than it).
    const tail = tailRange({ database: ctx.database, repair: request.id, table, keyColumn, startLsn: progress.startLsn!, committedAt: progress.startedAt ?? now(), upperKey })
    const barrier = ctx.intake.publishRange(tail)
    yield* ctx.accepted.until(() => ctx.outbox.acceptedBefore(barrier))
    progress = { ...progress, state: "done", finishedAt: now(), waitingFor: undefined }
    yield* setTable(progress)
    ctx.progress({ phase: "repair", table, rows: progress.rows, done: true, through: undefined })
  })

/**
 * Waits until every transaction running now has ended (visible to a new snapshot): one whose
 * commit record precedes a marker just written may not be visible yet. After a second, `onWait`
 * is told which transactions it waits for, and again every 2 s (its write also notices a cancel).
 */
const waitForOpenTransactions = (client: pg.Client, since: string, onWait: (what: string) => Effect.Effect<void, unknown>) =>
  Effect.gen(function* () {
    let open = yield* Effect.tryPromise(() => runningTransactions(client))
    let nextReport = Date.now() + 1_000
    while (open.length > 0) {
      yield* Effect.sleep("10 millis")
      open = yield* Effect.tryPromise(() => stillRunning(client, open))
      if (open.length > 0 && Date.now() >= nextReport) {
        nextReport = Date.now() + 2_000
        yield* onWait(`transaction(s) ${open.slice(0, 5).join(", ")}${open.length > 5 ? ` and ${open.length - 5} more` : ""}, open since ${since}`)
      }
    }
  })

/** One chunk, steps 1–5 of the module comment; `through` is the range's upper key (the bound when the chunk reached it). */
const readChunk = (
  ctx: SessionContext,
  client: pg.Client,
  request: RepairRequest,
  range: { readonly table: string; readonly keyColumn: string; readonly after: number | null; readonly upTo: number },
  onWait: (what: string) => Effect.Effect<void, unknown>
) => {
  const chunkId = `${request.id}:${range.table}:${range.after ?? ""}:${randomUUID().slice(0, 8)}`
  return Effect.gen(function* () {
    ctx.intake.repairs.expect({ id: chunkId, repair: request.id, table: range.table, keyColumn: range.keyColumn, after: range.after })
    const settled = ctx.intake.chunkSettled(chunkId)
    yield* Effect.tryPromise(() => emitRepairMarker(client, markerContent(chunkId, "low", now())))
    yield* waitForOpenTransactions(client, "the chunk began", onWait)
    const rows = yield* Effect.tryPromise(() => readKeyChunk(client, { ...range, limit: request.chunkRows }))
    const through = rows.length < request.chunkRows ? range.upTo : integerKey(rows[rows.length - 1]![range.keyColumn], range.keyColumn)
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
