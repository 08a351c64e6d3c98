import { Effect } from "effect"
import { Command, Flag } from "effect/cli"
import { consumerFromEnv, migrateFromEnv } from "../../consumer/main.ts"
import { archiverFromEnv } from "../../archiver/main.ts"
import { readerFromEnv } from "../../reader/main.ts"
import { makeLogger, scrubValues } from "../../shared/logger.ts"
import { aborted, untilSignal } from "../effects.ts"
import { COMMAND_DESCRIPTIONS } from "../command-table.ts"

export const COMPONENTS = ["reader", "consumer", "archiver"] as const
export type Component = (typeof COMPONENTS)[number]

const components = Flag.String("components").pipe(
  Flag.withDescription(`Comma-separated components to run: ${COMPONENTS.join(", ")} (default: all)`),
  Flag.withDefault(COMPONENTS.join(","))
)
const resnapshot = Flag.Boolean("resnapshot").pipe(
  Flag.withDescription("Reader: if the slot behind the checkpoint is gone, start over with a new slot and initial snapshot"),
  Flag.withDefault(false)
)

export const parseComponents = (text: string): Array<Component> => {
  const names = text.split(",").map((s) => s.trim()).filter(Boolean)
  const unknown = names.filter((n) => !(COMPONENTS as ReadonlyArray<string>).includes(n))
  if (unknown.length > 0) throw new Error(`unknown component(s) ${unknown.join(", ")}; choose from ${COMPONENTS.join(", ")}`)
  return names as Array<Component>
}

export const runCommand = Command.make("run", { components, resnapshot }, ({ components, resnapshot }) =>
  Effect.gen(function* () {
    const selected = parseComponents(components)
    makeLogger("cli").info(`running: ${selected.join(", ")} (Ctrl-C to stop)`, { command: "run" })
    yield* untilSignal(async (signal) => {
      const stops: Array<() => Promise<void>> = []
      const failures: Array<Promise<never>> = []
      if (selected.includes("reader")) {
        const log = makeLogger("reader", { fields: { slot: process.env.TOTES_SLOT ?? "totes_cdc" } })
        const reader = readerFromEnv(process.env, {
          resnapshot,
          onProgress: (p) => {
            if (p.phase === "snapshot" && p.done) log.info("snapshot table done", { table: p.table, rows: p.rows })
            else if (p.phase === "info") log.info(p.message)
            else if (p.phase === "outage") (p.state === "started" ? log.warn : log.info)(p.message, { status: `${p.dependency} outage ${p.state}` })
            else if (p.phase === "schema") (p.breaksWarehouse.length > 0 ? log.warn : log.info)(p.message, { table: p.table, lsn: p.lsn })
            else if (p.phase === "warning") log.warn(p.message)
          }
        })
        stops.push(() => reader.stop())
        failures.push(reader.start().then(() => Promise.reject(reader.error ?? new Error("reader stopped"))))
      }
      if (selected.includes("consumer")) {
        await migrateFromEnv()
        const log = makeLogger("consumer", { fields: { stream: process.env.TOTES_STREAM ?? "totes-changes" } })
        const consumer = consumerFromEnv(process.env, {
          onError: (shardId, error) =>
            log.error("shard polling failed; retrying from the checkpoint", {
              shardId,
              errorCode: (error as { code?: string; name?: string })?.code ?? (error as Error)?.name,
              reason: scrubValues((error as Error)?.message ?? String(error))
            })
        })
        const stopConsumer = new AbortController()
        const polling = consumer.poller.run(stopConsumer.signal)
        stops.push(async () => {
          stopConsumer.abort()
          await polling.catch(() => {})
          await consumer.close()
        })
        failures.push(polling.then(() => Promise.reject(new Error("consumer stopped"))))
      }
      if (selected.includes("archiver")) {
        const log = makeLogger("archiver", { fields: { stream: process.env.TOTES_STREAM ?? "totes-changes" } })
        const archiver = archiverFromEnv(process.env, {
          onError: (shardId, error) =>
            log.error("archiving failed; retrying from the checkpoint", { shardId, reason: scrubValues((error as Error)?.message ?? String(error)) })
        })
        const stopArchiver = new AbortController()
        const archiving = archiver.run(stopArchiver.signal)
        stops.push(async () => {
          stopArchiver.abort()
          await archiving.catch(() => {})
        })
        failures.push(archiving.then(() => Promise.reject(new Error("archiver stopped"))))
      }
      try {
        await Promise.race([aborted(signal), ...failures])
      } catch (error) {
        // A component died: say so as a structured line, and never echo a value from the data path.
        const reason = scrubValues((error as Error)?.message ?? String(error))
        makeLogger("cli").error("a component stopped with an error; everything is being stopped", {
          command: "run",
          errorCode: (error as { code?: string; name?: string })?.code ?? (error as Error)?.name,
          reason
        })
        // eslint-disable-next-line preserve-caught-error -- the cause may carry row values: only the scrubbed text goes on
        throw new Error(reason)
      } finally {
        await Promise.all(stops.map((stop) => stop()))
      }
    })
  })
).pipe(Command.withDescription(COMMAND_DESCRIPTIONS.run))
