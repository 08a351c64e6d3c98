/** `totes status` text: the dead letters line appears when the lake holds some, with the newest one's reason. */
import { describe, expect, it } from "vitest"
import { formatStatus } from "../../services/cli/commands/status.ts"
import { pipelineStatus } from "../fixtures/status.ts"

describe("totes status text", () => {
  it("counts the dead letters and gives the newest one's reason, or says nothing when there are none", () => {
    const newest = { key: "dead-letter/2026/11/27/10/shardId-000000000001-4960.json", at: "2026-11-27T10:00:00.000Z", shardId: "shardId-000000000001", sequenceNumber: "4960", subSequenceNumber: 0, reason: "undecodable: not JSON" }
    const text = formatStatus(pipelineStatus({ lakeActivity: { deadLetters: { count: 3, lookbackDays: 30, newest: [newest] } } }))
    expect(text.split("\n").filter((l) => l.startsWith("dead letters"))).toEqual([
      "dead letters 3 in the last 30 days · newest 2026-11-27T10:00:00.000Z shardId-000000000001 4960: undecodable: not JSON (read them under dead-letter/)"
    ])
    expect(formatStatus(pipelineStatus())).not.toContain("dead letters")
    expect(formatStatus(pipelineStatus({ lakeActivity: null }))).not.toContain("dead letters")
    expect(formatStatus(pipelineStatus({ lakeActivity: { error: "S3: AccessDenied" } }))).toContain("dead letters unknown: S3: AccessDenied")
  })
})
