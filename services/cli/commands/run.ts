import { Effect } from "effect"
import { Command, Flag } from "effect/cli"
import { consumerFromEnv, migrateFromEnv } from "../../consumer/main.ts"
import { archiverFromEnv } from "../../archiver/main.ts"
import { readerFromEnv } from "../../reader/main.ts"
import { PublicationName, readConfig, reveal, SlotName, SourceDatabaseUrl, StreamName, Tables, WarehouseDatabaseUrl } from "../../shared/config.ts"
import { explainConnectionError } from "../../shared/database-connection.ts"
import { errorReason, makeLogger } from "../../shared/logger.ts"
import { dependencyOf, errorCodeOf, makeOutageReporter } from "../../shared/outage-reporter.ts"
import { namesFrom } from "../arguments.ts"
import { aborted, untilSignal } from "../effects.ts"
import { COMMAND_DESCRIPTIONS } from "../command-descriptions.ts"
import { firstExit, spawnComponents, stopComponents } from "../component-processes.ts"
import { ReportedFailure } from "../outcome.ts"
import { archiverOutageCallbacks, consumerOutageCallbacks } from "../outages.ts"

export const COMPONENTS = ["reader", "consumer", "archiver"] as const
export type Component = (typeof COMPONENTS)[number]

const components = Flag.String("components").pipe(
  namesFrom(COMPONENTS, "component(s)"),
  Flag.withDescription(`Comma-separated components to run: ${COMPONENTS.join(", ")} (default: all)`),
  Flag.withDefault(COMPONENTS)
)
const resnapshot = Flag.Boolean("resnapshot").pipe(
  Flag.withDescription("Reader: if the slot behind the checkpoint is gone, start over with a new slot and initial snapshot"),
  Flag.withDefault(false)
)

/** The URL of a database, for connection messages ("" when unset: then nothing connected to it). */
const urlOf = (database: "source" | "warehouse") => {
  try {
    return reveal(readConfig(database === "source" ? SourceDatabaseUrl : WarehouseDatabaseUrl))
  } catch {
    return ""
  }
}

/** What a component's failure means, in one line: which component, which dependency, what to do. */
const failureLine = (component: Component, error: unknown, keep: ReadonlyArray<string>): { dependency: string; message: string } => {
  const name = (error as { name?: unknown })?.name
  if (component === "reader" && (name === "ReaderRefused" || name === "ReaderStartError" || name === "SourceValidationError")) {
    return { dependency: "source", message: `reader refused to start: ${errorReason(error)}` }
  }
  const database = component === "reader" ? "source" : "warehouse"
  const dependency = dependencyOf(error, component === "archiver" ? "Kinesis" : database)
  const connection = dependency === database ? explainConnectionError(database, urlOf(database), error) : undefined
  if (connection) return { dependency, message: `${component} stopped: ${connection.message}` }
  return {
    dependency,
    message: `${component} stopped (${dependency}: ${errorReason(error, keep)}); everything was stopped. Nothing acknowledged is lost: restart it (in AWS the service restarts it)`
  }
}

export const runCommand = Command.make("run", { components, resnapshot }, ({ components: selected, resnapshot }) =>
  Effect.gen(function* () {
    // Every setting the selected components need is read now: a bad one is a usage error before anything starts.
    const slot = readConfig(SlotName)
    const stream = readConfig(StreamName)
    const keep = [slot, readConfig(PublicationName), stream, ...readConfig(Tables)]
    const cli = makeLogger("cli", { fields: { command: "run" } })
    cli.info(`running: ${selected.join(", ")} (Ctrl-C to stop)`)
    if (selected.length > 1) {
      // One process per component: none can starve another on a small machine.
      yield* untilSignal(async (signal) => {
        const children = spawnComponents(selected, { env: process.env, args: (component) => (component === "reader" && resnapshot ? ["--resnapshot"] : []) })
        try {
          const ended = await Promise.race([aborted(signal).then(() => undefined), firstExit(children)])
          if (ended) {
            const message = `${ended.component} stopped (exit ${ended.code ?? ended.signal}); everything was stopped. Nothing acknowledged is lost: restart it`
            cli.error(message, { status: "component stopped" })
            throw new ReportedFailure(message)
          }
        } finally {
          await stopComponents(children)
        }
      })
      return
    }
    yield* untilSignal(async (signal) => {
      const stops: Array<() => Promise<void>> = []
      // The first component failure, whenever it comes: handled from the moment a component
      // starts, so a failure during the warehouse migration below is never an unhandled rejection.
      let fail: (failure: { component: Component; error: unknown }) => void = () => {}
      const firstFailure = new Promise<never>((_, reject) => (fail = reject))
      firstFailure.catch(() => {})
      const watch = (component: Component, running: Promise<void>) =>
        running.then(
          () => fail({ component, error: new Error(`${component} stopped`) }),
          (error: unknown) => fail({ component, error })
        )
      try {
        if (selected.includes("reader")) {
          const log = makeLogger("reader", { fields: { slot } })
          const reader = readerFromEnv(process.env, {
            resnapshot,
            onProgress: (p) => {
              if (p.phase === "snapshot" && p.done) log.info("snapshot table done", { table: p.table, rows: p.rows })
              else if (p.phase === "info") log.info(p.message)
              else if (p.phase === "outage") (p.state === "started" ? log.warn : log.info)(p.message, { status: `${p.dependency} outage ${p.state}`, dependency: p.dependency })
              else if (p.phase === "schema") (p.breaksWarehouse.length > 0 ? log.warn : log.info)(p.message, { table: p.table, lsn: p.lsn })
              else if (p.phase === "warning") log.warn(p.message)
            }
          })
          stops.push(() => reader.stop())
          watch("reader", reader.start().then(() => Promise.reject(reader.error ?? new Error("reader stopped"))))
        }
        if (selected.includes("consumer")) {
          await Promise.race([
            migrateFromEnv().catch((error: unknown) => {
              throw explainConnectionError("warehouse", urlOf("warehouse"), error) ?? error
            }),
            firstFailure
          ])
          const outages = makeOutageReporter({ log: makeLogger("consumer", { fields: { stream } }), component: "consumer" })
          const consumer = consumerFromEnv(process.env, consumerOutageCallbacks(outages, process.env))
          const stopConsumer = new AbortController()
          const polling = consumer.poller.run(stopConsumer.signal)
          stops.push(async () => {
            stopConsumer.abort()
            await polling.catch(() => {})
            outages.close()
            await consumer.close()
          })
          watch("consumer", polling)
        }
        if (selected.includes("archiver")) {
          const outages = makeOutageReporter({ log: makeLogger("archiver", { fields: { stream } }), component: "archiver" })
          const archiver = archiverFromEnv(process.env, archiverOutageCallbacks(outages, process.env))
          const stopArchiver = new AbortController()
          const archiving = archiver.run(stopArchiver.signal)
          stops.push(async () => {
            stopArchiver.abort()
            await archiving.catch(() => {})
            outages.close()
          })
          watch("archiver", archiving)
        }
        await Promise.race([aborted(signal), firstFailure])
      } catch (caught) {
        // One structured line says which component, which dependency and what to do; the CLI adds nothing.
        const { component, error } = (caught as { component?: Component }).component ? (caught as { component: Component; error: unknown }) : { component: "consumer" as const, error: caught }
        const { dependency, message } = failureLine(component, error, keep)
        cli.error(message, { dependency, errorCode: errorCodeOf(error) })
        throw new ReportedFailure(message)
      } finally {
        await Promise.all(stops.map((stop) => stop()))
      }
    })
  })
).pipe(Command.withDescription(COMMAND_DESCRIPTIONS.run))
