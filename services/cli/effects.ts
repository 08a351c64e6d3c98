/** Small bridges used by the thin CLI commands. */
import { Effect } from "effect"
import { CliError } from "effect/cli"

/** Runs async work; a failure becomes a CLI user error whose message is printed as is. */
export const task = <A>(work: () => Promise<A>) =>
  Effect.tryPromise({
    try: work,
    catch: (cause) => new CliError.UserError({ cause: cause instanceof Error ? cause : new Error(String(cause)) })
  })

/**
 * Runs `work` until SIGINT/SIGTERM, then lets it shut down. `work` receives an AbortSignal and
 * must resolve once it has stopped everything it started.
 */
export const untilSignal = (work: (signal: AbortSignal) => Promise<void>) =>
  // Uninterruptible: the runtime's own SIGINT handling must wait for our orderly shutdown.
  Effect.uninterruptible(task(async () => {
    const controller = new AbortController()
    const onSignal = () => controller.abort()
    process.once("SIGINT", onSignal)
    process.once("SIGTERM", onSignal)
    try {
      await work(controller.signal)
    } finally {
      process.off("SIGINT", onSignal)
      process.off("SIGTERM", onSignal)
    }
  }))

export const aborted = (signal: AbortSignal) =>
  new Promise<void>((resolve) => (signal.aborted ? resolve() : signal.addEventListener("abort", () => resolve(), { once: true })))
