/**
 * A writing workload that outlives outages: inserts designs one transaction at a time through
 * `url`; a lost connection is reconnected and a failed insert retried, until `signal` aborts.
 */
import pg from "pg"

export const writeDesignsUntil = async (url: string, signal: AbortSignal) => {
  let client: pg.Client | undefined
  let committed = 0
  let failures = 0
  while (!signal.aborted) {
    try {
      if (!client) {
        client = new pg.Client({ connectionString: url })
        client.on("error", () => {})
        await client.connect()
      }
      await client.query(
        "INSERT INTO design (design_name, file_location, file_name, last_updated) VALUES ($1, '/usr', 'd.json', now())",
        [`Design ${committed}`]
      )
      committed++
    } catch {
      failures++
      await client?.end().catch(() => {})
      client = undefined
      await new Promise((resolve) => setTimeout(resolve, 100))
    }
    await new Promise((resolve) => setTimeout(resolve, 5))
  }
  await client?.end().catch(() => {})
  return { committed, failures }
}
