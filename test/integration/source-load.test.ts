/** Both real snapshots load into the real schema with every constraint on, with the README's row counts. */
import { describe, expect, it } from "vitest"
import { initSourceSchema, loadCsvSnapshot } from "../../tools/source/totesys-db.ts"
import { connect, freshDatabase, SNAPSHOT_FEB, SNAPSHOT_NOV } from "../support/stack.ts"

// ../shared/totesys-data/README.md
const FEB = { address: 30, counterparty: 20, currency: 3, department: 8, design: 324, payment: 9899, payment_type: 4, purchase_order: 2958, sales_order: 6941, staff: 20, transaction: 9899 }
const NOV = { address: 30, counterparty: 20, currency: 3, department: 8, design: 473, payment: 15836, payment_type: 4, purchase_order: 4649, sales_order: 11187, staff: 20, transaction: 15836 }

describe("snapshot loader", () => {
  it.each([
    ["2024-02-23", SNAPSHOT_FEB, FEB],
    ["2024-11-15", SNAPSHOT_NOV, NOV]
  ])("loads snapshot %s with every constraint on and the documented row counts", async (_name, dir, expected) => {
    const client = await connect(await freshDatabase("load"))
    await initSourceSchema(client)
    const reports = await loadCsvSnapshot(client, dir)
    expect(Object.fromEntries(reports.map((r) => [r.table, r.rows]))).toEqual(expected)
    // Counted again by the database, constraints validated, sequences continue after the max id.
    for (const [table, rows] of Object.entries(expected)) {
      expect(Number((await client.query(`SELECT count(*) AS n FROM "${table}"`)).rows[0].n)).toBe(rows)
    }
    const invalid = await client.query("SELECT conname FROM pg_constraint WHERE connamespace = 'public'::regnamespace AND NOT convalidated")
    expect(invalid.rows).toEqual([])
    const fkCount = Number((await client.query("SELECT count(*) AS n FROM pg_constraint WHERE connamespace = 'public'::regnamespace AND contype = 'f'")).rows[0].n)
    expect(fkCount).toBe(17)
    const next = await client.query(`INSERT INTO currency (currency_code, last_updated) VALUES ('CHF', now()) RETURNING currency_id`)
    expect(next.rows[0].currency_id).toBe(4)
    await client.end()
  })

  it("refuses a folder that lacks a table's CSV, naming it", async () => {
    const client = await connect(await freshDatabase("load"))
    await initSourceSchema(client)
    await expect(loadCsvSnapshot(client, "/nonexistent")).rejects.toThrow(/lacks address\.csv/)
    await client.end()
  })
})
