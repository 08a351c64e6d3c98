/**
 * The consumer Lambda's package, built as SST builds it (esbuild bundle at the handler's own path,
 * plus infra/consumer-package.ts's copyFiles), holds no development tooling and no development
 * dependency, and runs on its own: a Node process in the package folder, with no node_modules
 * anywhere above it, migrates a fresh warehouse and applies a change event handed to the handler.
 */
import { execFileSync } from "node:child_process"
import { cpSync, mkdtempSync, readFileSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { dirname, join } from "node:path"
import * as esbuild from "esbuild"
import { afterAll, describe, expect, it } from "vitest"
import { CONSUMER_COPY_FILES, CONSUMER_HANDLER } from "../../infra/consumer-package.ts"
import { toLambdaRecord } from "../../services/consumer/poller.ts"
import { changeEvent } from "../fixtures/events.ts"
import { connect, freshDatabase, stackEnv } from "../support/stack.ts"

const ROOT = new URL("../..", import.meta.url).pathname
const pkg = JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8")) as { dependencies: Record<string, string>; devDependencies: Record<string, string> }

const packageOf = (path: string) => {
  const inside = path.slice(path.lastIndexOf("node_modules/") + "node_modules/".length)
  return inside.startsWith("@") ? inside.split("/").slice(0, 2).join("/") : inside.split("/")[0]!
}

describe("the consumer Lambda package", () => {
  const dir = mkdtempSync(join(tmpdir(), "totes-lambda-"))
  afterAll(() => rmSync(dir, { recursive: true, force: true }))

  it("bundles production code only and runs on its own: migrates the warehouse and applies an event", async () => {
    const entry = CONSUMER_HANDLER.replace(/\.[^.]+$/, "") // services/consumer/handler
    const built = await esbuild.build({
      absWorkingDir: ROOT,
      entryPoints: [`${entry}.ts`],
      outfile: join(dir, `${entry}.mjs`),
      bundle: true,
      platform: "node",
      format: "esm",
      target: "node22",
      mainFields: ["module", "main"],
      banner: { js: 'import { createRequire as topLevelCreateRequire } from "module"; const require = topLevelCreateRequire(import.meta.url);' },
      metafile: true,
      logLevel: "silent"
    })
    for (const { from, to } of CONSUMER_COPY_FILES) cpSync(join(ROOT, from), join(dir, to), { recursive: true })

    const inputs = Object.keys(built.metafile.inputs)
    expect(inputs.filter((path) => /^(tools|test|bench|scripts|infra)\//.test(path))).toEqual([])
    const bundledPackages = new Set(inputs.filter((path) => path.includes("node_modules/")).map(packageOf))
    const devOnly = Object.keys(pkg.devDependencies).filter((name) => !(name in pkg.dependencies))
    expect(devOnly.filter((name) => bundledPackages.has(name))).toEqual([])
    // The consumer reaches S3 (claim checks, dead letters) and Secrets Manager; not the reader's Kinesis or Firehose clients.
    expect([...bundledPackages].filter((name) => /^@aws-sdk\/client-/.test(name)).sort()).toEqual(["@aws-sdk/client-s3", "@aws-sdk/client-secrets-manager"])

    const warehouseUrl = await freshDatabase("lambda")
    const env: Record<string, string> = { ...stackEnv(), WAREHOUSE_DATABASE_URL: warehouseUrl, PATH: process.env.PATH ?? "" }
    const event = {
      Records: [
        toLambdaRecord(env.TOTES_STREAM!, "eu-west-2", "shardId-000000000000", {
          SequenceNumber: "1",
          PartitionKey: "design:1",
          Data: Buffer.from(
            JSON.stringify(
              changeEvent("c", "design", { commitLsn: "0/5000", index: 0, committedAt: "2024-03-01T10:00:00.000Z" }, {
                after: { design_id: 1, created_at: "2024-03-01T10:00:00.000", design_name: "Packaged", file_location: "/usr", file_name: "p.json", last_updated: "2024-03-01T10:00:00.000" }
              })
            )
          )
        })
      ]
    }
    const script = `const { handler } = await import(${JSON.stringify(`./${entry}.mjs`)});
      const chunks = []; for await (const c of process.stdin) chunks.push(c);
      console.log(JSON.stringify(await handler(JSON.parse(Buffer.concat(chunks).toString()))));
      process.exit(0)`
    const output = execFileSync(process.execPath, ["--input-type=module", "-e", script], { cwd: dir, env, input: JSON.stringify(event), encoding: "utf8", timeout: 60_000 })
    expect(JSON.parse(output.trim().split("\n").pop()!)).toEqual({ batchItemFailures: [] })
    expect(dirname(join(dir, entry))).toBe(join(dir, "services/consumer"))

    const warehouse = await connect(warehouseUrl)
    expect((await warehouse.query("SELECT design_id, design_name FROM dim_design")).rows).toEqual([{ design_id: 1, design_name: "Packaged" }])
    await warehouse.end()
  }, 120_000)
})
