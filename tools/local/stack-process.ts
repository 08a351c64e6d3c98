/**
 * `totes stack up` runs the local stack in a detached background process that owns the servers;
 * `.totes/` holds its pid, log and `stack.env`. `down` signals it and waits for a clean stop.
 */
import { spawn } from "node:child_process"
import { closeSync, existsSync, openSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import { resolve } from "node:path"
import { readStackEnv, stackFiles, writeStackEnv } from "../../services/cli/stack-env.ts"
import { startStack } from "./stack.ts"

const BIN = new URL("../../bin/totes.mjs", import.meta.url).pathname

export { readStackEnv, stackFiles }

const alive = (pid: number) => {
  try {
    process.kill(pid, 0)
    return true
  } catch {
    return false
  }
}

export const runningStackPid = (dir: string): number | undefined => {
  const { pid } = stackFiles(dir)
  if (!existsSync(pid)) return undefined
  const value = Number(readFileSync(pid, "utf8").trim())
  return Number.isInteger(value) && value > 0 && alive(value) ? value : undefined
}

const tail = (path: string, lines = 30) => (existsSync(path) ? readFileSync(path, "utf8").trimEnd().split("\n").slice(-lines).join("\n") : "(no log)")

/** Starts the background stack process and waits until it has written stack.env. */
export const stackUp = async (
  dirArg: string,
  options: { readonly timeoutMs?: number; readonly ownerPid?: number } = {}
): Promise<{ envPath: string; pid: number; already: boolean }> => {
  const dir = resolve(dirArg)
  const files = stackFiles(dir)
  const existing = runningStackPid(dir)
  if (existing && existsSync(files.env)) return { envPath: files.env, pid: existing, already: true }
  rmSync(files.env, { force: true })
  const { mkdirSync } = await import("node:fs")
  mkdirSync(dir, { recursive: true })
  const log = openSync(files.log, "w")
  const owner = options.ownerPid ? ["--owner-pid", String(options.ownerPid)] : []
  const child = spawn(process.execPath, [BIN, "stack", "serve", "--dir", dir, ...owner], { detached: true, stdio: ["ignore", log, log], env: process.env })
  closeSync(log)
  child.unref()
  const deadline = Date.now() + (options.timeoutMs ?? 60_000)
  while (Date.now() < deadline) {
    if (existsSync(files.env)) return { envPath: files.env, pid: child.pid!, already: false }
    if (child.exitCode !== null || !alive(child.pid!)) break
    await new Promise((r) => setTimeout(r, 100))
  }
  if (alive(child.pid!)) process.kill(child.pid!, "SIGTERM")
  throw new Error(`the local stack failed to start. Last lines of ${files.log}:\n${tail(files.log)}`)
}

/**
 * Foreground part of `stack up`: owns the servers until SIGINT/SIGTERM/SIGHUP, or until the
 * owner process (`totes dev`) is gone, however it ended: a stack started for a session never
 * outlives it.
 */
export const serveStack = async (dirArg: string, signal: AbortSignal, options: { readonly ownerPid?: number } = {}) => {
  const dir = resolve(dirArg)
  const files = stackFiles(dir)
  writeFileSync(files.pid, `${process.pid}\n`)
  const stack = await startStack({ dir, onProgress: (m) => console.log(m) })
  writeStackEnv(dir, stack.env)
  console.log(`local stack ready: ${files.env}`)
  await new Promise<void>((resolve) => {
    if (signal.aborted) return resolve()
    signal.addEventListener("abort", () => resolve(), { once: true })
    if (options.ownerPid) {
      const owner = options.ownerPid
      const watch = setInterval(() => {
        if (alive(owner)) return
        console.log(`owner process ${owner} is gone`)
        clearInterval(watch)
        resolve()
      }, 500)
      signal.addEventListener("abort", () => clearInterval(watch), { once: true })
    }
  })
  console.log("stopping local stack")
  rmSync(files.env, { force: true })
  await stack.stop()
  rmSync(files.pid, { force: true })
}

export const stackDown = async (dirArg: string): Promise<boolean> => {
  const dir = resolve(dirArg)
  const pid = runningStackPid(dir)
  if (!pid) {
    rmSync(dir, { recursive: true, force: true })
    return false
  }
  process.kill(pid, "SIGTERM")
  const deadline = Date.now() + 20_000
  while (alive(pid) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100))
  if (alive(pid)) process.kill(pid, "SIGKILL")
  rmSync(dir, { recursive: true, force: true })
  return true
}
