/** Shared pieces of the benchmarks: a private local stack and small statistics helpers. */
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { startStack, type LocalStack } from "../tools/local/stack.ts"

export const withStack = async <A>(work: (stack: LocalStack) => Promise<A>): Promise<A> => {
  const dir = mkdtempSync(join(tmpdir(), "totes-bench-"))
  const stack = await startStack({ dir, shards: 4 })
  try {
    return await work(stack)
  } finally {
    await stack.stop()
    rmSync(dir, { recursive: true, force: true })
  }
}

export const percentile = (values: ReadonlyArray<number>, p: number): number => {
  const sorted = [...values].sort((a, b) => a - b)
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? Number.NaN
}

export const seconds = (ms: number) => (ms / 1000).toFixed(2)
export const perSecond = (count: number, ms: number) => Math.round(count / (ms / 1000)).toLocaleString("en-GB")
