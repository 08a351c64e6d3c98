/** In-process readers for tests: stopped after each test, and a wait for "everything so far is durable". */
import { afterEach } from "vitest"
import { compareLsn } from "../../contracts/lsn.ts"
import type { Reader } from "../../services/reader/reader.ts"
import { currentWalLsn } from "../../services/reader/source-admin.ts"
import { waitFor } from "./processes.ts"

/** Registers an afterEach that stops every reader pushed into the returned list. */
export const stoppedAfterEach = (): Array<Reader> => {
  const readers: Array<Reader> = []
  afterEach(async () => {
    for (const reader of readers.splice(0)) await reader.stop()
  })
  return readers
}

/** Waits until everything committed in the source so far is durable on the stream. */
export const waitDurable = async (reader: Reader, source: Parameters<typeof currentWalLsn>[0], timeoutMs = 60_000) => {
  const target = await currentWalLsn(source)
  await waitFor(
    () => {
      if (reader.error) throw reader.error
      return Boolean(reader.stats.durableLsn && compareLsn(reader.stats.durableLsn, target) >= 0)
    },
    timeoutMs,
    () => `reader durable through ${target} (at ${reader.stats.durableLsn})`
  )
}
