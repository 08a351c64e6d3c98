/** Small bridges used by the thin CLI commands. */
import { Effect } from "effect"

/**
 * Runs async work; a failure stays the error it is (main.ts prints it as one line and picks
 * the exit code, see outcome.ts).
 */
export const task = <A>(work: () => Promise<A>) =>
  Effect.tryPromise({
    try: work,
    catch: (cause) => (cause instanceof Error ? cause : new Error(String(cause)))
  })

const STOP_SIGNALS = ["SIGINT", "SIGTERM", "SIGHUP"] as const

/** Once the terminal is gone (SIGHUP), writing to it fails (EIO, EPIPE): shutting down must not crash on that. */
const ignoreClosedTerminal = () => {
  for (const stream of [process.stdout, process.stderr]) {
    if (stream.listenerCount("error") === 0) stream.on("error", () => {})
  }
}

/**
 * Runs `work` until SIGINT, SIGTERM or SIGHUP (a closed terminal), then lets it shut down.
 * `work` receives an AbortSignal and must resolve once it has stopped everything it started.
 */
export const untilSignal = (work: (signal: AbortSignal) => Promise<void>) =>
  // Uninterruptible: the runtime's own signal handling (main.ts) must wait for our orderly shutdown.
  Effect.uninterruptible(task(async () => {
    const controller = new AbortController()
    const onSignal = (signal: NodeJS.Signals) => {
      if (signal === "SIGHUP") ignoreClosedTerminal()
      controller.abort()
    }
    for (const s of STOP_SIGNALS) process.once(s, onSignal)
    try {
      await work(controller.signal)
    } finally {
      for (const s of STOP_SIGNALS) process.off(s, onSignal)
    }
  }))

export const aborted = (signal: AbortSignal) =>
  new Promise<void>((resolve) => (signal.aborted ? resolve() : signal.addEventListener("abort", () => resolve(), { once: true })))
