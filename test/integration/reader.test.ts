import { describe, expect, it } from "vitest"
import type { ChangeEvent } from "../../contracts/change-event.ts"
import { compareLsn } from "../../contracts/lsn.ts"
import { readerFromEnv } from "../../services/reader/main.ts"
import { initSourceSchema } from "../../tools/source/totesys-db.ts"
import { readWholeStream } from "../support/kinesis.ts"
import { connect, isolatedPipelineEnv } from "../support/stack.ts"
import { stoppedAfterEach, waitDurable } from "../support/readers.ts"

const readers = stoppedAfterEach()

const startReader = (env: Record<string, string>) => {
  const reader = readerFromEnv(env, { heartbeatIntervalMs: 200, statusIntervalMs: 500 })
  readers.push(reader)
  const running = reader.start()
  running.catch(() => {})
  return { reader, running }
}


const BASE = `
  INSERT INTO address (address_line_1, address_line_2, district, city, postal_code, country, phone, last_updated)
    VALUES ('1 Main St', NULL, 'Avon', 'Leeds', 'LS1', 'UK', '0113', '2024-01-01 10:00:00.123');
  INSERT INTO department (department_name, location, manager, last_updated) VALUES ('Sales', 'Leds', 'Ann', '2024-01-01 10:00:00');
  INSERT INTO currency (currency_code, last_updated) VALUES ('GBP', '2024-01-01 10:00:00');
  INSERT INTO payment_type (payment_type_name, last_updated) VALUES ('SALES_RECEIPT', '2024-01-01 10:00:00');
`

describe("reader", () => {
  it("snapshots existing rows, then streams every change exactly as committed", async () => {
    const env = await isolatedPipelineEnv({ shards: 2 })
    const source = await connect(env.SOURCE_DATABASE_URL!)
    await initSourceSchema(source)
    await source.query(BASE)
    const { reader } = startReader(env)
    await waitDurable(reader, source)

    await source.query("BEGIN")
    await source.query(
      `INSERT INTO staff (first_name, last_name, department_id, email_address, last_updated) VALUES ($1, $2, 1, $3, '2024-02-02 09:08:07.654')`,
      ["Irving", "O'Keefe", "irving.o'keefe@terrifictotes.com"]
    )
    await source.query(`INSERT INTO counterparty (counterparty_legal_name, legal_address_id, commercial_contact, last_updated) VALUES ('Frami, Yundt and Macejkovic', 1, 'Zoë Ünïcødé 🚀', '2024-02-02 09:08:07')`)
    await source.query("COMMIT")
    await source.query(`UPDATE address SET phone = '0114', district = NULL WHERE address_id = 1`)
    await source.query(`UPDATE department SET location = 'Leeds' WHERE department_id = 1`)
    await source.query(`INSERT INTO design (design_name, file_location, file_name, last_updated) VALUES ('Wooden', '/usr', 'w.json', '2024-02-02 09:00:00'), ('Bronze', '/private', 'b.json', '2024-02-02 09:00:01')`)
    await source.query(`DELETE FROM design WHERE design_name = 'Bronze'`)
    await source.query(
      `INSERT INTO sales_order (design_id, staff_id, counterparty_id, units_sold, unit_price, currency_id, agreed_delivery_date, agreed_payment_date, agreed_delivery_location_id, last_updated)
       VALUES (1, 1, 1, 84754, 12345678.91, 1, '2024-03-01', '2024-03-02', 1, '2024-02-02 09:08:07.001')`
    )
    await source.query("TRUNCATE payment")
    await waitDurable(reader, source)
    await reader.stop()

    const records = await readWholeStream(env)
    const changes = records.map((r) => r.record).filter((r): r is ChangeEvent => r.kind === "change")
    const heartbeats = records.filter((r) => r.record.kind === "heartbeat")
    expect(new Set(heartbeats.map((h) => h.shardId)).size).toBe(2)

    const snapshot = changes.filter((e) => e.op === "r")
    expect(snapshot.map((e) => e.source.table).sort()).toEqual(["address", "currency", "department", "payment_type"])
    expect(snapshot.find((e) => e.source.table === "address")!.after).toEqual({
      address_id: 1,
      address_line_1: "1 Main St",
      address_line_2: null,
      district: "Avon",
      city: "Leeds",
      postal_code: "LS1",
      country: "UK",
      phone: "0113",
      created_at: expect.stringMatching(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,3})?$/),
      last_updated: "2024-01-01T10:00:00.123"
    })

    const streamed = changes.filter((e) => e.op !== "r").sort((a, b) => compareLsn(a.source.commitLsn, b.source.commitLsn) || a.source.index - b.source.index)
    expect(streamed.map((e) => `${e.source.table}:${e.op}`)).toEqual([
      "staff:c",
      "counterparty:c",
      "address:u",
      "department:u",
      "design:c",
      "design:c",
      "design:d",
      "sales_order:c",
      "payment:t"
    ])
    // ids: <commit LSN>:<index>, unique; the two rows of one transaction share the LSN.
    expect(new Set(streamed.map((e) => e.id)).size).toBe(streamed.length)
    expect(streamed[0]!.source.commitLsn).toBe(streamed[1]!.source.commitLsn)
    expect(streamed.slice(0, 2).map((e) => e.source.index)).toEqual([0, 1])
    const staff = streamed[0]!
    expect(staff.after).toMatchObject({ first_name: "Irving", last_name: "O'Keefe", last_updated: "2024-02-02T09:08:07.654", department_id: 1 })
    expect(streamed[1]!.after!.commercial_contact).toBe("Zoë Ünïcødé 🚀")
    expect(streamed[2]!.after).toMatchObject({ phone: "0114", district: null, address_line_2: null })
    expect(streamed[6]!.key).toEqual({ design_id: 2 })
    expect(streamed[7]!.after).toMatchObject({ unit_price: "12345678.91", units_sold: 84754, agreed_delivery_date: "2024-03-01", last_updated: "2024-02-02T09:08:07.001" })
    expect(streamed[8]!.key).toBeNull()
    expect(streamed[0]!.source.committedAt).toMatch(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z$/)
    await source.end()
  })
})
