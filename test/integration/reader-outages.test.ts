/**
 * Outages of the reader's dependencies (the source database, Kinesis, DynamoDB), 20 s each through
 * a TCP proxy that drops and refuses every connection, while a workload writes: `totes run
 * --components reader` waits every one out (reconnecting to the source, retrying PutRecords, holding
 * the checkpoint), logs exactly one line when it starts and one when it ends, and the warehouse
 * (fed by a consumer on direct connections) ends equal to the independent derivation with one fact
 * row per change. The drill itself: test/support/outage-drill.ts.
 */
import { describe, expect, it } from "vitest"
import { expectOnePairInWindow, startOutageDrill } from "../support/outage-drill.ts"

const OUTAGES = [
  { dependency: "source database", variable: "SOURCE_DATABASE_URL", components: ["reader"] },
  { dependency: "Kinesis", variable: "AWS_ENDPOINT_URL_KINESIS", components: ["reader"] },
  { dependency: "DynamoDB", variable: "AWS_ENDPOINT_URL_DYNAMODB", components: ["reader"] }
] as const

describe("outages of the reader's dependencies", () => {
  it("are waited out, logged as one pair of lines each, and lose nothing", async () => {
    const drill = await startOutageDrill({ seed: 17, outages: OUTAGES, components: ["reader"], inProcess: { reader: false } })
    await drill.pipeline.caughtUp(180_000) // the initial snapshot is in the warehouse
    const { reports, windows } = await drill.cutEach({ beforeMs: 120_000, afterMs: 180_000 })
    expect(drill.run.child.exitCode, drill.run.output().slice(-3000)).toBeNull() // still running: every outage was waited out

    for (const outage of OUTAGES) {
      const lines = drill.logLines().filter((l) => l.component === "reader" && l.dependency === outage.dependency)
      expectOnePairInWindow(lines, windows[outage.dependency]!, outage.dependency)
    }
    // never a line per attempt: nothing else at warn or above
    const loud = drill.logLines().filter((l) => l.component === "reader" && (l.level === "warn" || l.level === "error"))
    expect(loud.map((l) => l.dependency)).toEqual(OUTAGES.map((o) => o.dependency))

    await drill.stop()
    await drill.expectNothingLost(reports)
  }, 600_000)
})
