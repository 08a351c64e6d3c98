/**
 * Outages of the consumer's and the archiver's dependencies (the warehouse, Kinesis, S3, DynamoDB),
 * 20 s each through a TCP proxy that drops and refuses every connection, while a workload writes:
 * `totes run --components consumer,archiver` waits every one out, logs exactly one line when it
 * starts and one when it ends (with duration and retries) per component that uses the dependency,
 * and the warehouse ends equal to the independent derivation with one fact row per change.
 * (The reader runs in the test process on direct connections; its own outages belong to the
 * reader's tests.) The drill itself: test/support/outage-drill.ts.
 */
import { describe, expect, it } from "vitest"
import { expectOnePairInWindow, startOutageDrill } from "../support/outage-drill.ts"

/** Which components of `totes run` use each dependency, and the variable that points at it. */
const OUTAGES = [
  { dependency: "warehouse", variable: "WAREHOUSE_DATABASE_URL", components: ["consumer"] },
  { dependency: "Kinesis", variable: "AWS_ENDPOINT_URL_KINESIS", components: ["archiver", "consumer"] },
  { dependency: "S3", variable: "AWS_ENDPOINT_URL_S3", components: ["archiver"] },
  { dependency: "DynamoDB", variable: "AWS_ENDPOINT_URL_DYNAMODB", components: ["archiver", "consumer"] }
] as const

describe("outages of the consumer's and the archiver's AWS dependencies", () => {
  it("are waited out, logged as one pair of lines each, and lose nothing", async () => {
    const drill = await startOutageDrill({
      seed: 13,
      outages: OUTAGES,
      components: ["consumer", "archiver"],
      inProcess: { consumer: false },
      runEnv: { TOTES_ARCHIVER_FLUSH_MS: "1000" }
    })
    const { reports, windows } = await drill.cutEach({ beforeMs: 120_000, afterMs: 120_000 })
    expect(drill.run.child.exitCode, drill.run.output().slice(-3000)).toBeNull() // still running: every outage was waited out

    for (const outage of OUTAGES) {
      for (const component of ["consumer", "archiver"]) {
        const lines = drill.logLines().filter((l) => l.component === component && l.dependency === outage.dependency)
        if (!(outage.components as ReadonlyArray<string>).includes(component)) {
          expect(lines.map((l) => l.level), `${component} ${outage.dependency}: ${JSON.stringify(lines)}`).toEqual([])
          continue
        }
        // the warning while the dependency was down, the end once it was back, with what happened in between
        const window = windows[outage.dependency]!
        const [, end] = expectOnePairInWindow(lines, window, `${component} ${outage.dependency}`)
        expect(end.durationMs, `${component} ${outage.dependency}`).toBeLessThanOrEqual(window.up - window.down + 5_000)
        expect(end.retries).toBeGreaterThanOrEqual(1)
      }
    }
    // never a line per attempt: everything the two components logged besides the start line
    expect(drill.logLines().filter((l) => l.component !== "cli").length).toBe(OUTAGES.reduce((n, o) => n + 2 * o.components.length, 0))

    await drill.stop()
    await drill.expectNothingLost(reports)
  }, 600_000)
})
