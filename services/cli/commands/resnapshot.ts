/**
 * `totes resnapshot --tables design[,…]`: asks the running reader to re-read these tables while it
 * streams (services/reader/table-repair.ts), then follows its progress until the repair is
 * published. The request is an item in the checkpoint table (contracts/repair.ts); the reader
 * picks it up within a second, resumes it after a restart, and reports progress in it, which
 * `totes status` shows too.
 */
import { randomUUID } from "node:crypto"
import { setTimeout as sleep } from "node:timers/promises"
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

const read = async (checkpoints: CheckpointStoreShape, key: string) => Option.getOrUndefined(await Effect.runPromise(checkpoints.get<RepairRequest | null>(key)))

/** Whether the reader holds its slot (is streaming); undefined when the slot is missing. */
const readerRunning = async (slot: string): Promise<boolean | undefined> => {
  const source = await connectClient("source", reveal(readConfig(SourceDatabaseUrl)), { application_name: "totes-resnapshot" })
  try {
    const info = await slotInfo(source, slot)
    return info ? info.activePid !== null : undefined
  } finally {
    await source.end()
  }
}

const cancel = async (checkpoints: CheckpointStoreShape, key: string): Promise<string> => {
  const stored = await read(checkpoints, key)
  const current = stored?.data
  if (!current || !isActive(current)) return `no repair in progress${current ? ` (the last one: repair ${describeRepair(current)})` : ""}`
  const cancelled: RepairRequest = { ...current, state: "cancelled", finishedAt: new Date().toISOString(), position: cancelledPosition(current) }
  await Effect.runPromise(checkpoints.advance(key, cancelled.position, cancelled))
  return `cancelled repair ${current.id} of ${current.tables.join(", ")}: the reader stops it after the chunk in hand (rows already published stay)`
}

/** Follows a request until the reader is done with it; prints progress lines on stderr when they change. */
const follow = async (checkpoints: CheckpointStoreShape, key: string, id: string, timeoutMs: number): Promise<RepairRequest> => {
  const deadline = Date.now() + timeoutMs
  let last = ""
  for (;;) {
    const current = (await read(checkpoints, key))?.data
    if (!current || current.id !== id) throw new Error(`repair ${id} was replaced by another request${current ? ` (repair ${describeRepair(current)})` : ""}`)
    if (!isActive(current)) return current
    const lines = current.state === "running" ? current.progress.filter((p) => p.state === "running").map(describeTableProgress).join("\n") : `repair ${describeRepair(current)}`
    if (lines && lines !== last) process.stderr.write(`${lines}\n`)
    last = lines
    if (Date.now() > deadline) {
      throw new Error(`repair ${id} is still running after ${Math.round(timeoutMs / 1000)} s; it goes on in the reader: totes status shows its progress`)
    }
    await sleep(500)
  }
}

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
      const checkpoints = Effect.runSync(CheckpointStore.make())
      if (flags.cancel) {
        yield* Console.log(yield* task(() => cancel(checkpoints, key)))
        return
      }
      const wanted = Option.getOrElse(flags.tables, () => [] as ReadonlyArray<string>)
      const captured = readConfig(Tables)
      const notCaptured = wanted.filter((t) => !captured.includes(t))
      if (notCaptured.length > 0) {
        return yield* Effect.fail(new UsageError(`--tables: ${notCaptured.join(", ")} not captured by the reader (TOTES_TABLES: ${captured.join(", ")})`))
      }
      const request = yield* task(async () => {
        const current = (await read(checkpoints, key))?.data
        if (current && isActive(current)) {
          throw new Error(`a repair is in progress: repair ${describeRepair(current)}; wait for it (totes status shows its progress) or stop it with totes resnapshot --cancel`)
        }
        const running = await readerRunning(slot)
        if (running !== true) {
          process.stderr.write(`note: the reader is not streaming (slot '${slot}' is ${running === undefined ? "missing" : "inactive"}): the repair starts when it runs\n`)
        }
        const fresh = newRepairRequest({ id: randomUUID(), tables: wanted, chunkRows: flags.chunk, requestedAt: new Date().toISOString() })
        if (!(await Effect.runPromise(checkpoints.advance(key, fresh.position, fresh)))) throw new Error("another repair was requested at the same moment: try again")
        return fresh
      })
      if (flags.noWait) {
        yield* Console.log(`requested repair ${request.id} of ${request.tables.join(", ")} (chunks of ${request.chunkRows} rows): the reader picks it up within a second; totes status shows its progress`)
        return
      }
      process.stderr.write(`requested repair ${request.id} of ${request.tables.join(", ")}; waiting for the reader (Ctrl-C stops waiting, not the repair)\n`)
      const finished = yield* task(() => follow(checkpoints, key, request.id, flags.timeout * 1000))
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
