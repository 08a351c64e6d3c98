/** Shared pieces of the benchmarks: a private local stack and small statistics helpers. */
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { readStackEnv, stackDown, stackUp } from "../tools/local/stack-process.ts"

/**
 * A private local stack (4 shards) in its own background process, as `totes stack up` runs it:
 * the local AWS servers then do not share the benchmark's JavaScript thread.
 */
export const withStack = async <A>(work: (stack: { readonly env: Readonly<Record<string, string>> }) => Promise<A>): Promise<A> => {
  const dir = mkdtempSync(join(tmpdir(), "totes-bench-"))
  await stackUp(dir)
  try {
    return await work({ env: readStackEnv(dir) })
  } finally {
    await stackDown(dir)
    rmSync(dir, { recursive: true, force: true })
  }
}

export const percentile = (values: ReadonlyArray<number>, p: number): number => {
  const sorted = [...values].sort((a, b) => a - b)
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? Number.NaN
}

export const seconds = (ms: number) => (ms / 1000).toFixed(2)
export const perSecond = (count: number, ms: number) => Math.round(count / (ms / 1000)).toLocaleString("en-GB")

/**
 * CPU time (ms) the PostgreSQL server at `url` has used so far: its postmaster and every backend,
 * live ones and those that ended (Linux /proc: the postmaster's own and its reaped children's
 * times). Undefined where /proc is not there. With process.cpuUsage() it shows where a run's CPU
 * went: on two cores a run that keeps both busy cannot go faster by overlapping more.
 */
export const postgresCpuMs = async (url: string): Promise<number | undefined> => {
  const { readFileSync, readdirSync } = await import("node:fs")
  const pg = (await import("pg")).default
  const client = new pg.Client({ connectionString: url })
  await client.connect()
  let dataDirectory: string
  try {
    dataDirectory = (await client.query("SHOW data_directory")).rows[0].data_directory
  } finally {
    await client.end()
  }
  try {
    const postmaster = Number(readFileSync(`${dataDirectory}/postmaster.pid`, "utf8").split("\n")[0])
    const ticks = 100 // USER_HZ
    let total = 0
    for (const entry of readdirSync("/proc")) {
      if (!/^\d+$/.test(entry)) continue
      let stat: string
      try {
        stat = readFileSync(`/proc/${entry}/stat`, "utf8")
      } catch {
        continue // ended meanwhile
      }
      const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ")
      const [ppid, utime, stime, cutime, cstime] = [fields[1], fields[11], fields[12], fields[13], fields[14]].map(Number) as [number, number, number, number, number]
      if (Number(entry) === postmaster) total += utime + stime + cutime + cstime
      else if (ppid === postmaster) total += utime + stime
    }
    return (total * 1000) / ticks
  } catch {
    return undefined
  }
}

/** This process's CPU time so far (ms), every thread (libuv's gunzip, V8's GC) included. */
export const processCpuMs = () => {
  const { user, system } = process.cpuUsage()
  return (user + system) / 1000
}
