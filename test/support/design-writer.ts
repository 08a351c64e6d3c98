/**
 * A writing workload that outlives outages: inserts designs one transaction at a time through
 * `url`; a lost connection is reconnected and a failed insert retried, until `signal` aborts.
 * `counts` is updated as it goes, so a test can await the workload's progress.
 */
import { setTimeout as sleep } from "node:timers/promises"
import pg from "pg"

export interface DesignWriterCounts {
  committed: number
  failures: number
}

export const writeDesignsUntil = async (url: string, signal: AbortSignal, counts: DesignWriterCounts = { committed: 0, failures: 0 }) => {
  let client: pg.Client | undefined
  while (!signal.aborted) {
    try {
      if (!client) {
        client = new pg.Client({ connectionString: url })
        client.on("error", () => {})
        await client.connect()
      }
      await client.query(
        "INSERT INTO design (design_name, file_location, file_name, last_updated) VALUES ($1, '/usr', 'd.json', now())",
        [`Design ${counts.committed}`]
      )
      counts.committed++
    } catch {
      counts.failures++
      await client?.end().catch(() => {})
      client = undefined
      await sleep(100) // the server is down: try again a little later, not in a tight loop
    }
    await sleep(5) // a steady trickle of small transactions, not a flood
  }
  await client?.end().catch(() => {})
  return { committed: counts.committed, failures: counts.failures }
}
