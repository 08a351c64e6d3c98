/** Small bridges used by the thin CLI commands. */
import { Effect } from "effect"
import { fromPromise } from "../shared/promise-effect.ts"

/**
 * Runs async work; a failure stays the error it is (main.ts prints it as one line and picks
 * the exit code, see outcome.ts).
 */
export const task = fromPromise

const STOP_SIGNALS = ["SIGINT", "SIGTERM", "SIGHUP"] as const

/** Once the terminal is gone (SIGHUP), writing to it fails (EIO, EPIPE): shutting down must not crash on that. */
const ignoreClosedTerminal = () => {
  for (const stream of [process.stdout, process.stderr]) {
    if (stream.listenerCount("error") === 0) stream.on("error", () => {})
  }
}

/**
 * Runs `work` until SIGINT, SIGTERM or SIGHUP (a closed terminal), then lets it shut down.
 * `work` receives an AbortSignal and must end (its Effect succeed or its promise resolve) once it
 * has stopped everything it started.
 */
export const untilSignal = <E = Error>(work: (signal: AbortSignal) => Effect.Effect<void, E> | Promise<void>): Effect.Effect<void, E | Error> =>
  // Uninterruptible: the runtime's own signal handling (main.ts) must wait for our orderly shutdown.
  Effect.uninterruptible(
    Effect.acquireUseRelease(
      Effect.sync(() => {
        const controller = new AbortController()
        const onSignal = (signal: NodeJS.Signals) => {
          if (signal === "SIGHUP") ignoreClosedTerminal()
          controller.abort()
        }
        for (const s of STOP_SIGNALS) process.once(s, onSignal)
        return { signal: controller.signal, onSignal }
      }),
      ({ signal }) => Effect.suspend((): Effect.Effect<void, E | Error> => {
        const running = work(signal)
        return Effect.isEffect(running) ? running : task(() => running)
      }),
      ({ onSignal }) => Effect.sync(() => {
        for (const s of STOP_SIGNALS) process.off(s, onSignal)
      })
    )
  )

export const aborted = (signal: AbortSignal) =>
  new Promise<void>((resolve) => (signal.aborted ? resolve() : signal.addEventListener("abort", () => resolve(), { once: true })))
