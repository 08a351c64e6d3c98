/**
 * `totes status` while DynamoDB and S3 are down: it still shows what the source and the warehouse
 * say, names each unreachable dependency on one line with what it therefore cannot tell, and
 * exits 0 (a status that fails during an outage is no use to the person handling it).
 */
import { createServer } from "node:net"
import type { AddressInfo } from "node:net"
import { describe, expect, it } from "vitest"
import { runTotes } from "../support/processes.ts"
import { isolatedPipelineEnv } from "../support/stack.ts"

/** A port nothing listens on: bound, noted, closed. */
const closedPort = () =>
  new Promise<number>((resolve) => {
    const probe = createServer().listen(0, "127.0.0.1", () => {
      const { port } = probe.address() as AddressInfo
      probe.close(() => resolve(port))
    })
  })

describe("totes status during an outage", () => {
  it("shows the source and warehouse, and names DynamoDB and S3 as unavailable with what is unknown", async () => {
    const env = await isolatedPipelineEnv({ shards: 1 })
    const migrated = await runTotes(["warehouse", "migrate"], env)
    expect(migrated.code, migrated.output).toBe(0)
    const down = { ...env, AWS_ENDPOINT_URL_DYNAMODB: `http://127.0.0.1:${await closedPort()}`, AWS_ENDPOINT_URL_S3: `http://127.0.0.1:${await closedPort()}` }
    const { code, output } = await runTotes(["status"], down, 120_000)
    expect(code, output).toBe(0)
    const lines = output.trim().split("\n")
    expect(lines.filter((l) => l.startsWith("UNAVAILABLE"))).toEqual([
      expect.stringMatching(/^UNAVAILABLE DynamoDB: .*ECONNREFUSED.* · unknown: reader checkpoint, shard checkpoints, schema changes, repair, snapshot progress$/),
      expect.stringMatching(/^UNAVAILABLE S3: .* · unknown: lake watermark$/)
    ])
    expect(lines.some((l) => /^source {5}WAL at [0-9A-F]+\/[0-9A-F]+$/.test(l))).toBe(true)
    expect(lines.some((l) => l.startsWith("reader     checkpoint none"))).toBe(true)
    expect(output).not.toMatch(/\n\s+at /) // no stack trace
  }, 180_000)
})
