/**
 * The development commands when something goes wrong: a bad snapshot folder loaded with
 * `--replace` changes nothing and names the file and line; a simulator whose connection is cut
 * stops cleanly and reports exactly what it committed (checked against an audit trigger).
 */
import { copyFileSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { describe, expect, it } from "vitest"
import { TOTESYS_TABLES } from "../../contracts/totesys.ts"
import { generateTotesys } from "../../tools/source/generate.ts"
import { simulate } from "../../tools/source/simulate.ts"
import { CsvLoadError, initSourceSchema, loadCsvSnapshot } from "../../tools/source/totesys-db.ts"
import { runTotes, spawnTotes, waitFor } from "../support/processes.ts"
import { connect, freshDatabase, SNAPSHOT_FEB, stackEnv } from "../support/stack.ts"
import { startTcpProxy, viaProxy } from "../support/tcp-proxy.ts"

/** A copy of the February snapshot (in the system temp folder) with one file changed. */
const brokenSnapshot = (file: string, edit: (text: string) => string) => {
  const dir = mkdtempSync(join(tmpdir(), "totes-broken-"))
  for (const name of readdirSync(SNAPSHOT_FEB)) copyFileSync(join(SNAPSHOT_FEB, name), join(dir, name))
  writeFileSync(join(dir, file), edit(readFileSync(join(dir, file), "utf8")))
  return dir
}

const counts = async (url: string) => {
  const client = await connect(url)
  try {
    const present = (await client.query("SELECT to_regclass('public.payment') IS NOT NULL AS p")).rows[0].p as boolean
    if (!present) return null
    // One query at a time on one client (pg 9 refuses overlapping ones).
    const counted: Array<readonly [string, number]> = []
    for (const t of TOTESYS_TABLES) counted.push([t, Number((await client.query(`SELECT count(*) AS n FROM "${t}"`)).rows[0].n)])
    return Object.fromEntries(counted)
  } finally {
    await client.end()
  }
}

describe("source load --replace", () => {
  it("with a bad row, names the file and line and leaves the loaded source as it was", async () => {
    const url = await freshDatabase("load")
    const client = await connect(url)
    await initSourceSchema(client)
    await loadCsvSnapshot(client, SNAPSHOT_FEB)
    const before = await counts(url)
    // line 6 of payment.csv (the header is line 1): a created_at that is no timestamp
    const dir = brokenSnapshot("payment.csv", (text) => {
      const lines = text.split("\n")
      const fields = lines[5]!.split(",")
      fields[1] = "not-a-date"
      lines[5] = fields.join(",")
      return lines.join("\n")
    })
    const error = await loadCsvSnapshot(client, dir, () => {}, { replace: true }).catch((e: unknown) => e)
    expect(error).toBeInstanceOf(CsvLoadError)
    expect((error as Error).message).toBe('payment.csv line 6: invalid input syntax for type timestamp: "not-a-date" (column created_at)')
    expect(await counts(url)).toEqual(before)
    await client.end()
  })

  it("with an empty file, says so before touching the database; the CLI prints one line and exits 1", async () => {
    const url = await freshDatabase("load")
    const client = await connect(url)
    await initSourceSchema(client)
    await loadCsvSnapshot(client, SNAPSHOT_FEB)
    const before = await counts(url)
    await client.end()
    const dir = brokenSnapshot("currency.csv", () => "")
    const { code, output } = await runTotes(["source", "load", dir, "--replace"], { ...stackEnv(), SOURCE_DATABASE_URL: url, TOTES_METRICS: "off" })
    expect(code).toBe(1)
    expect(output.trim()).toBe(
      "totes source load: currency.csv: the file is empty or its first line is blank; expected a header row with the table's column names; nothing was loaded (one transaction: the source is as it was)"
    )
    expect(await counts(url)).toEqual(before)
  })

  it("with an unknown column, names it and the table's columns", async () => {
    const client = await connect(await freshDatabase("load"))
    const dir = brokenSnapshot("currency.csv", (text) => text.replace("currency_code", "currency_kode"))
    await expect(loadCsvSnapshot(client, dir, () => {}, { replace: true })).rejects.toThrow(
      "currency.csv line 1: unknown column(s) currency_kode; currency has currency_id, currency_code, created_at, last_updated"
    )
    // nothing was created either: the schema is part of the same transaction
    expect((await client.query("SELECT to_regclass('public.payment') IS NULL AS absent")).rows[0].absent).toBe(true)
    await client.end()
  })
})

describe("source simulate", () => {
  const prepare = async () => {
    const url = await freshDatabase("sim")
    const admin = await connect(url)
    await generateTotesys(admin, { seed: "lost", days: 10 })
    // an independent count of committed row changes
    await admin.query(`CREATE TABLE audit_count (n bigint NOT NULL); INSERT INTO audit_count VALUES (0);
      CREATE FUNCTION count_row() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN UPDATE audit_count SET n = n + 1; RETURN NULL; END $$;`)
    for (const table of TOTESYS_TABLES) await admin.query(`CREATE TRIGGER audit AFTER INSERT OR UPDATE OR DELETE ON "${table}" FOR EACH ROW EXECUTE FUNCTION count_row()`)
    const proxy = await startTcpProxy(Number(new URL(url).port))
    const audited = async () => Number((await admin.query("SELECT n FROM audit_count")).rows[0].n)
    return { url, admin, proxy, audited }
  }

  it("stops on a lost connection and reports exactly what it committed", async () => {
    const { url, admin, proxy, audited } = await prepare()
    const client = await connect(viaProxy(url, proxy))
    client.on("error", () => {}) // after the run: the cut connection's late 'error' event
    let committed = 0
    const run = simulate(client, { seed: "lost", rate: 40, onCommit: () => void committed++ })
    await waitFor(() => committed >= 20, 30_000, "20 committed transactions")
    proxy.down()
    const report = await run
    expect(report.stoppedBy).toBe("connection-lost")
    expect(report.error).toMatch(/Connection terminated|ECONNRESET|not queryable/)
    expect(report.transactions).toBe(committed)
    const changes = await audited()
    if (report.lastCommitInDoubt) expect(changes).toBeGreaterThanOrEqual(report.rowChanges)
    else expect(changes).toBe(report.rowChanges)
    await client.end().catch(() => {})
    await proxy.close()
    await admin.end()
  })

  it("as a CLI: prints its report, one line saying the connection was lost, exit 1, no crash", async () => {
    const { url, admin, proxy, audited } = await prepare()
    const sim = spawnTotes(["source", "simulate", "--rate", "40"], { ...stackEnv(), SOURCE_DATABASE_URL: viaProxy(url, proxy), TOTES_METRICS: "off" })
    await waitFor(async () => (await audited()) > 20, 60_000, `the simulator writing:\n${sim.output()}`)
    proxy.down()
    expect(await sim.exited, sim.output()).toBe(1)
    const lines = sim.output().trim().split("\n")
    expect(lines[0]).toMatch(/^\d+ transactions, \d+ row changes in [\d.]+ s \(stopped by a lost connection\)$/)
    expect(lines.at(-1)).toMatch(/^totes source simulate: the connection to the source was lost \(.+\); the report above is what was committed/)
    expect(sim.output()).not.toMatch(/^\s+at |Unhandled 'error'/m)
    await proxy.close()
    await admin.end()
  })
})
