/**
 * In AWS the consumer Lambda has no database URL in its environment: it reads the warehouse URL
 * from Secrets Manager (TOTES_WAREHOUSE_SECRET_ARN) once per cold start. The real SDK client talks
 * to a minimal Secrets Manager endpoint (the AWS JSON 1.1 protocol) that serves the URL of a real
 * warehouse on the local stack.
 */
import { createServer } from "node:http"
import type { AddressInfo } from "node:net"
import { createServer as createTcpServer } from "node:net"
import { afterAll, describe, expect, it, vi } from "vitest"
import { warehouseUrlFromEnvOrSecret } from "../../services/shared/warehouse-url.ts"
import { connect, freshDatabase, stackEnv } from "../support/stack.ts"

/** A port nothing listens on: bound, noted, closed. */
const closedPort = () =>
  new Promise<number>((resolve) => {
    const probe = createTcpServer().listen(0, "127.0.0.1", () => {
      const { port } = probe.address() as AddressInfo
      probe.close(() => resolve(port))
    })
  })

const ARN = "arn:aws:secretsmanager:eu-west-2:111122223333:secret:WarehouseUrlSecret-AbC123"

describe("the consumer Lambda's warehouse URL", () => {
  const requests: Array<{ target: string; secretId: string }> = []
  let secretValue = ""
  const server = createServer((req, res) => {
    let body = ""
    req.on("data", (d) => (body += d))
    req.on("end", () => {
      const { SecretId } = JSON.parse(body) as { SecretId: string }
      requests.push({ target: String(req.headers["x-amz-target"]), secretId: SecretId })
      res.writeHead(200, { "content-type": "application/x-amz-json-1.1" })
      res.end(JSON.stringify({ ARN, Name: "WarehouseUrlSecret", VersionId: "v1", SecretString: secretValue, CreatedDate: 1 }))
    })
  })
  afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())))

  it("is read from its secret at cold start, once, and nothing else tells the handler where the warehouse is", async () => {
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve))
    const warehouseUrl = await freshDatabase("wh")
    secretValue = warehouseUrl
    const env = stackEnv()
    for (const [key, value] of Object.entries(env)) process.env[key] = value
    delete process.env.WAREHOUSE_DATABASE_URL
    delete process.env.SOURCE_DATABASE_URL
    process.env.TOTES_WAREHOUSE_SECRET_ARN = ARN
    process.env.AWS_ENDPOINT_URL_SECRETS_MANAGER = `http://127.0.0.1:${(server.address() as AddressInfo).port}`

    const { handler } = await import("../../services/consumer/handler.ts")
    expect(await handler({ Records: [] })).toEqual({ batchItemFailures: [] })
    expect(await handler({ Records: [] })).toEqual({ batchItemFailures: [] })
    expect(requests).toEqual([{ target: "secretsmanager.GetSecretValue", secretId: ARN }])

    // the cold start migrated the warehouse the secret names
    const warehouse = await connect(warehouseUrl)
    const { rows } = await warehouse.query("SELECT count(*)::int AS n FROM information_schema.tables WHERE table_name IN ('dim_staff', 'fact_sales_order')")
    expect(rows[0].n).toBe(2)
    await warehouse.end()
  })

  it("a container whose first invocation cannot reach the warehouse tries again at the next; shutting down closes its pool", async () => {
    const warehouseUrl = await freshDatabase("wh2")
    const unreachable = new URL(warehouseUrl)
    unreachable.port = String(await closedPort())
    secretValue = unreachable.toString()
    vi.resetModules() // a new container: a fresh module, so a fresh runtime
    const { handler, disposeConsumerRuntime } = await import("../../services/consumer/handler.ts")
    await expect(handler({ Records: [] })).rejects.toThrow(/^cannot connect to the warehouse database \(127.0.0.1:[0-9]+\/wh2_[a-z0-9_]+ as [a-z]+\): /)
    secretValue = warehouseUrl
    expect(await handler({ Records: [] })).toEqual({ batchItemFailures: [] })
    expect(await handler({ Records: [] })).toEqual({ batchItemFailures: [] })

    const warehouse = await connect(warehouseUrl)
    const consumerConnections = async () =>
      (await warehouse.query("SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = current_database() AND application_name = 'totes-consumer' AND pid <> pg_backend_pid()")).rows[0].n
    expect(await consumerConnections()).toBeGreaterThan(0)
    await disposeConsumerRuntime()
    await expect.poll(consumerConnections, { timeout: 5_000 }).toBe(0)
    await warehouse.end()
  })

  it("refuses a secret that does not hold a PostgreSQL URL, naming the variable and never the value", async () => {
    secretValue = "mysql://admin:hunter2@db/warehouse"
    const env = { ...process.env, WAREHOUSE_DATABASE_URL: "" }
    await expect(warehouseUrlFromEnvOrSecret(env)).rejects.toThrow(
      "TOTES_WAREHOUSE_SECRET_ARN: the secret's value is not accepted: expected a postgres:// or postgresql:// URL (e.g. postgres://user@host:5432/database); the value is a mysql: URL"
    )
  })
})
