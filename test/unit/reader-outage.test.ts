import { describe, expect, it } from "vitest"
import { OutageTracker, type OutageReport } from "../../services/reader/outage.ts"

const tracker = () => {
  const reports: Array<OutageReport> = []
  return { reports, outage: new OutageTracker("Kinesis", (r) => reports.push(r)) }
}

describe("the reader's outage tracker", () => {
  it("reports one start and one end however many attempts fail", () => {
    const { reports, outage } = tracker()
    outage.failed("socket hang up")
    outage.failed("socket hang up")
    outage.failed("timeout")
    outage.recovered()
    outage.recovered()
    expect(reports.map((r) => r.state)).toEqual(["started", "ended"])
    expect(reports[0]!.message).toBe("Kinesis unavailable, retrying with backoff: socket hang up")
    expect(reports[1]!.message).toMatch(/^Kinesis available again after \d+\.\d s \(3 attempts retried\)$/)
  })

  it("shared by several callers, ends only when the last failing caller recovers", () => {
    const { reports, outage } = tracker()
    outage.failed("down", "lane-a")
    outage.failed("down", "lane-b")
    outage.recovered("lane-a")
    expect(reports.map((r) => r.state)).toEqual(["started"])
    outage.recovered("lane-c") // a caller that never failed changes nothing
    expect(reports.map((r) => r.state)).toEqual(["started"])
    outage.recovered("lane-b")
    expect(reports.map((r) => r.state)).toEqual(["started", "ended"])
    outage.failed("down again", "lane-a")
    expect(reports.map((r) => r.state)).toEqual(["started", "ended", "started"])
  })
})
