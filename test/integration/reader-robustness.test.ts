/** The reader does not depend on session defaults, and a stray marker message cannot stop it. */
import { describe, expect, it } from "vitest"
import type { ChangeEvent } from "../../contracts/change-event.ts"
import { readerFromEnv } from "../../services/reader/main.ts"
import { initSourceSchema } from "../../tools/source/totesys-db.ts"
import { readWholeStream } from "../support/kinesis.ts"
import { waitFor } from "../support/processes.ts"
import { connect, isolatedPipelineEnv } from "../support/stack.ts"
import { stoppedAfterEach, waitDurable } from "../support/readers.ts"

const readers = stoppedAfterEach()


describe("reader robustness", () => {
  it("publishes ISO values whatever the database's DateStyle and TimeZone, and survives a stray heartbeat-prefixed message", async () => {
    const env = await isolatedPipelineEnv({ shards: 1 })
    const source = await connect(env.SOURCE_DATABASE_URL!)
    await initSourceSchema(source)
    const database = new URL(env.SOURCE_DATABASE_URL!).pathname.slice(1)
    await source.query(`ALTER DATABASE "${database}" SET DateStyle = 'SQL, DMY'`)
    await source.query(`ALTER DATABASE "${database}" SET TimeZone = 'America/New_York'`)
    await source.query(`INSERT INTO design (design_name, file_location, file_name, created_at, last_updated) VALUES ('Before', '/a', 'a.json', '2024-02-03 04:05:06.789', '2024-02-03 04:05:06.789')`)
    const reader = readerFromEnv(env, { heartbeatIntervalMs: 200 })
    readers.push(reader)
    reader.start().catch(() => {})
    await waitFor(() => reader.stats.durableLsn !== null, 30_000, "reader streaming")
    await source.query(`INSERT INTO design (design_name, file_location, file_name, created_at, last_updated) VALUES ('After', '/b', 'b.json', '2024-12-31 23:59:59.001', '2024-12-31 23:59:59.001')`)
    await source.query(`SELECT pg_logical_emit_message(false, 'totes-heartbeat', 'not json at all')`)
    await source.query(`UPDATE design SET file_location = '/c' WHERE design_name = 'After'`)
    await waitDurable(reader, source)
    expect(reader.error).toBeUndefined()

    const events = (await readWholeStream(env)).flatMap((r) => (r.record.kind === "change" ? [r.record as ChangeEvent] : []))
    const byName = (name: string, op: string) => events.find((e) => e.op === op && e.after?.design_name === name)!
    expect(byName("Before", "r").after).toMatchObject({ created_at: "2024-02-03T04:05:06.789" })
    expect(byName("After", "c").after).toMatchObject({ created_at: "2024-12-31T23:59:59.001" })
    expect(byName("After", "u").after).toMatchObject({ file_location: "/c" })
    expect(byName("After", "c").source.committedAt).toMatch(/Z$/)
    await source.end()
  })
})
