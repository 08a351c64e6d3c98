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
