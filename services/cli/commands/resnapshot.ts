/**
 * `totes resnapshot --tables design[,…]`: asks the running reader to re-read these tables while it
 * streams (services/reader/table-repair.ts), then follows its progress until the repair is
 * published. The request is an item in the checkpoint table (contracts/repair.ts); the reader
 * picks it up within a second, resumes it after a restart, and reports progress in it, which
 * `totes status` shows too.
 */
import { randomUUID } from "node:crypto"
import { Console, Effect, Option } from "effect"
import { Command, Flag } from "effect/cli"
import {
  cancelledPosition,
  describeRepair,
  describeTableProgress,
  isActive,
  newRepairRequest,
  repairRequestKey,
  type RepairRequest
} from "../../../contracts/repair.ts"
import { TOTESYS_TABLES } from "../../../contracts/totesys.ts"
import { slotInfo } from "../../reader/source-admin.ts"
import { CheckpointStore, type CheckpointStoreShape } from "../../shared/checkpoint-store.ts"
import { readConfig, reveal, SlotName, SourceDatabaseUrl, Tables } from "../../shared/config.ts"
import { connectClient } from "../../shared/database-connection.ts"
import { namesFrom, numberIn, validation } from "../arguments.ts"
import { COMMAND_DESCRIPTIONS } from "../command-descriptions.ts"
import { task } from "../effects.ts"
import { UsageError } from "../outcome.ts"

const read = (checkpoints: CheckpointStoreShape, key: string) =>
  Effect.map(checkpoints.get<RepairRequest | null>(key), (stored) => Option.getOrUndefined(stored)?.data ?? undefined)

/** Whether the reader holds its slot (is streaming); undefined when the slot is missing. */
const readerRunning = (slot: string): Effect.Effect<boolean | undefined, Error> =>
  Effect.scoped(
    Effect.gen(function* () {
      const source = yield* Effect.acquireRelease(
        task(() => connectClient("source", reveal(readConfig(SourceDatabaseUrl)), { application_name: "totes-resnapshot" })),
        (client) => Effect.promise(() => client.end().catch(() => {})),
        // Ctrl-C while the source does not answer ends the command at once (the process exits).
        { interruptible: true }
      )
      const info = yield* task(() => slotInfo(source, slot))
      return info ? info.activePid !== null : undefined
    })
  )

const cancel = Effect.fn("resnapshot.cancel")(function* (checkpoints: CheckpointStoreShape, key: string) {
  const current = yield* read(checkpoints, key)
  if (!current || !isActive(current)) return `no repair in progress${current ? ` (the last one: repair ${describeRepair(current)})` : ""}`
  const cancelled: RepairRequest = { ...current, state: "cancelled", finishedAt: new Date().toISOString(), position: cancelledPosition(current) }
  yield* checkpoints.advance(key, cancelled.position, cancelled)
  return `cancelled repair ${current.id} of ${current.tables.join(", ")}: the reader stops it after the chunk in hand (rows already published stay)`
})

/** Writes a new request unless one is in progress (or another was written at the same moment). */
const request = Effect.fn("resnapshot.request")(function* (checkpoints: CheckpointStoreShape, key: string, slot: string, tables: ReadonlyArray<string>, chunkRows: number) {
  const current = yield* read(checkpoints, key)
  if (current && isActive(current)) {
    return yield* Effect.fail(
      new Error(`a repair is in progress: repair ${describeRepair(current)}; wait for it (totes status shows its progress) or stop it with totes resnapshot --cancel`)
    )
  }
  const running = yield* readerRunning(slot)
  if (running !== true) {
    process.stderr.write(`note: the reader is not streaming (slot '${slot}' is ${running === undefined ? "missing" : "inactive"}): the repair starts when it runs\n`)
  }
  const fresh = newRepairRequest({ id: randomUUID(), tables, chunkRows, requestedAt: new Date().toISOString() })
  if (!(yield* checkpoints.advance(key, fresh.position, fresh))) return yield* Effect.fail(new Error("another repair was requested at the same moment: try again"))
  return fresh
})

/** Follows a request until the reader is done with it; prints progress lines on stderr when they change. */
const follow = Effect.fn("resnapshot.follow")(function* (checkpoints: CheckpointStoreShape, key: string, id: string, timeoutMs: number) {
  const deadline = Date.now() + timeoutMs
  let last = ""
  for (;;) {
    const current = yield* read(checkpoints, key)
    if (!current || current.id !== id) return yield* Effect.fail(new Error(`repair ${id} was replaced by another request${current ? ` (repair ${describeRepair(current)})` : ""}`))
    if (!isActive(current)) return current
    const lines = current.state === "running" ? current.progress.filter((p) => p.state === "running").map(describeTableProgress).join("\n") : `repair ${describeRepair(current)}`
    if (lines && lines !== last) process.stderr.write(`${lines}\n`)
    last = lines
    if (Date.now() > deadline) {
      return yield* Effect.fail(new Error(`repair ${id} is still running after ${Math.round(timeoutMs / 1000)} s; it goes on in the reader: totes status shows its progress`))
    }
    yield* Effect.sleep(500)
  }
})

const tables = Flag.String("tables").pipe(
  namesFrom(TOTESYS_TABLES, "table(s)"),
  Flag.withDescription(`Comma-separated source tables to re-read: ${TOTESYS_TABLES.join(", ")}`),
  Flag.optional
)

export const resnapshotCommand = Command.make(
  "resnapshot",
  {
    tables,
    chunk: Flag.Int("chunk").pipe(numberIn({ min: 1, max: 10_000, unit: "rows" }), Flag.withDescription("Rows per chunk (read between two WAL markers)"), Flag.withDefault(1_000)),
    noWait: Flag.Boolean("no-wait").pipe(Flag.withDescription("Write the request and return; totes status shows its progress"), Flag.withDefault(false)),
    timeout: Flag.Finite("timeout").pipe(
      numberIn({ min: 0, exclusiveMin: true, max: 604_800, unit: "seconds" }),
      Flag.withDescription("Seconds to wait for the reader to finish (the repair goes on after the wait)"),
      Flag.withDefault(3_600)
    ),
    cancel: Flag.Boolean("cancel").pipe(Flag.withDescription("Stop the repair in progress (rows already published stay)"), Flag.withDefault(false)),
    json: Flag.Boolean("json").pipe(Flag.withDescription("Print the finished request as JSON"), Flag.withDefault(false))
  },
  (flags) =>
    Effect.gen(function* () {
      const slot = readConfig(SlotName)
      const key = repairRequestKey(slot)
      const checkpoints = yield* CheckpointStore.make()
      if (flags.cancel) {
        yield* Console.log(yield* cancel(checkpoints, key))
        return
      }
      const wanted = Option.getOrElse(flags.tables, () => [] as ReadonlyArray<string>)
      const captured = readConfig(Tables)
      const notCaptured = wanted.filter((t) => !captured.includes(t))
      if (notCaptured.length > 0) {
        return yield* Effect.fail(new UsageError(`--tables: ${notCaptured.join(", ")} not captured by the reader (TOTES_TABLES: ${captured.join(", ")})`))
      }
      const requested = yield* request(checkpoints, key, slot, wanted, flags.chunk)
      if (flags.noWait) {
        yield* Console.log(`requested repair ${requested.id} of ${requested.tables.join(", ")} (chunks of ${requested.chunkRows} rows): the reader picks it up within a second; totes status shows its progress`)
        return
      }
      process.stderr.write(`requested repair ${requested.id} of ${requested.tables.join(", ")}; waiting for the reader (Ctrl-C stops waiting, not the repair)\n`)
      const finished = yield* follow(checkpoints, key, requested.id, flags.timeout * 1000)
      if (flags.json) yield* Console.log(JSON.stringify(finished, null, 2))
      else {
        yield* Console.log(`repair ${describeRepair(finished)}`)
        for (const p of finished.progress) yield* Console.log(`  ${describeTableProgress(p)}`)
        if (finished.state === "done") {
          yield* Console.log(`the warehouse holds the repair once its consistent_through passes ${finished.through ?? "–"} (totes status --wait-caught-up)`)
        }
      }
      if (finished.state !== "done") return yield* Effect.fail(new Error(`repair ${describeRepair(finished)}`))
    })
).pipe(
  Command.validate(
    validation(({ tables, cancel }) =>
      Option.isNone(tables) && !cancel
        ? "--tables is required: the tables to re-read, e.g. --tables design,sales_order (or --cancel)"
        : Option.isSome(tables) && cancel
          ? "--cancel stops the repair in progress and takes no --tables"
          : undefined
    )
  ),
  Command.withDescription(COMMAND_DESCRIPTIONS.resnapshot)
)
