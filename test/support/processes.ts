/** Runs `totes` commands as real child processes (for crash tests and CLI checks). */
import { spawn, type ChildProcess } from "node:child_process"
import { setTimeout as sleep } from "node:timers/promises"

export const TOTES_BIN = new URL("../../bin/totes.mjs", import.meta.url).pathname

export interface Spawned {
  readonly child: ChildProcess
  readonly output: () => string
  readonly exited: Promise<number | null>
}

export const spawnTotes = (args: ReadonlyArray<string>, env: Record<string, string>): Spawned => {
  const child = spawn(process.execPath, [TOTES_BIN, ...args], { env: { ...process.env, ...env }, stdio: ["ignore", "pipe", "pipe"] })
  let output = ""
  child.stdout!.on("data", (d) => (output += d))
  child.stderr!.on("data", (d) => (output += d))
  const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)))
  return { child, output: () => output, exited }
}

export const runTotes = async (args: ReadonlyArray<string>, env: Record<string, string>, timeoutMs = 60_000) => {
  const spawned = spawnTotes(args, env)
  const timer = setTimeout(() => spawned.child.kill("SIGKILL"), timeoutMs)
  const code = await spawned.exited
  clearTimeout(timer)
  return { code, output: spawned.output() }
}

/**
 * Polls `predicate` every `intervalMs` until it holds; fails after `timeoutMs` naming `what` was
 * awaited (a function is called then, so the message can say where things stood at that moment).
 */
export const waitFor = async (
  predicate: () => boolean | Promise<boolean>,
  timeoutMs: number,
  what: string | (() => string),
  intervalMs = 50
) => {
  const deadline = Date.now() + timeoutMs
  while (Date.now() < deadline) {
    if (await predicate()) return
    await sleep(intervalMs)
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${typeof what === "function" ? what() : what}`)
}
