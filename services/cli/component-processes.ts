/**
 * Pipeline components as separate processes: `totes run` with several components (and `totes
 * dev`) starts one `totes run --components <one>` child each, so that on a small machine the
 * reader, the consumer and the archiver each get their own event loop (in AWS they are separate
 * anyway: an ECS service, a Lambda, Firehose). Each child is the very command a single component
 * runs with; a child that ends is reported and the others are stopped.
 */
import { spawn, type ChildProcess } from "node:child_process"
import { createInterface } from "node:readline"

const BIN = new URL("../../bin/totes.mjs", import.meta.url).pathname

/**
 * Node flags per component. The reader's live data is bounded (its outbox holds at most 16 MiB of
 * events); capping its heap makes V8 collect the garbage of a million-row transaction early
 * instead of growing the process past 256 MiB (bench/reader-large-transaction.ts). The
 * Dockerfile starts the reader task with the same flag.
 */
export const NODE_FLAGS: Readonly<Record<string, ReadonlyArray<string>>> = { reader: ["--max-old-space-size=160"] }

export interface ComponentProcess {
  readonly component: string
  readonly child: ChildProcess
  /** Resolves with the exit code (or 128 + signal number style null when killed). */
  readonly exited: Promise<{ readonly code: number | null; readonly signal: NodeJS.Signals | null }>
}

export interface SpawnOptions {
  readonly env: Record<string, string | undefined>
  /** Extra arguments for every child (e.g. --resnapshot for the reader). */
  readonly args?: (component: string) => ReadonlyArray<string>
  /** Each line of a child's stdout (EMF metric lines) and stderr (JSON log lines); passed through when omitted. */
  readonly onStdout?: (component: string, line: string) => void
  readonly onStderr?: (component: string, line: string) => void
}

export const spawnComponents = (components: ReadonlyArray<string>, options: SpawnOptions): Array<ComponentProcess> =>
  components.map((component) => {
    const child = spawn(process.execPath, [...(NODE_FLAGS[component] ?? []), BIN, "run", "--components", component, ...(options.args?.(component) ?? [])], {
      env: options.env as NodeJS.ProcessEnv,
      stdio: ["ignore", options.onStdout ? "pipe" : "inherit", options.onStderr ? "pipe" : "inherit"]
    })
    if (options.onStdout) createInterface({ input: child.stdout! }).on("line", (line) => options.onStdout!(component, line))
    if (options.onStderr) createInterface({ input: child.stderr! }).on("line", (line) => options.onStderr!(component, line))
    const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
      child.once("exit", (code, signal) => resolve({ code, signal }))
    )
    return { component, child, exited }
  })

/** The first child to end, with how it ended. */
export const firstExit = (processes: ReadonlyArray<ComponentProcess>) =>
  Promise.race(processes.map((p) => p.exited.then((exit) => ({ component: p.component, ...exit }))))

/**
 * Stops every child that still runs: SIGTERM (each drains what it holds, then exits), then SIGKILL
 * after `graceMs` for one that hangs.
 */
export const stopComponents = async (processes: ReadonlyArray<ComponentProcess>, graceMs = 30_000) => {
  await Promise.all(
    processes.map(async ({ child, exited }) => {
      if (child.exitCode !== null || child.signalCode !== null) return
      child.kill("SIGTERM")
      const timer = setTimeout(() => child.kill("SIGKILL"), graceMs)
      await exited
      clearTimeout(timer)
    })
  )
}
