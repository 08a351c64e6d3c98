import { describe, expect, it } from "vitest"
import { FailoverSlot, PublicationName, readConfig, reveal, SlotName, SourceDatabaseUrl, Tables, WarehouseSchema } from "../../services/shared/config.ts"

describe("configuration", () => {
  it("uses the documented defaults", () => {
    expect(readConfig(SlotName, {})).toBe("totes_cdc")
    expect(readConfig(PublicationName, {})).toBe("totes_cdc")
    expect(readConfig(WarehouseSchema, {})).toBe("public")
    expect(readConfig(Tables, {})).toHaveLength(11)
  })

  it("fails fast naming a missing required variable", () => {
    expect(() => readConfig(SourceDatabaseUrl, {})).toThrow(/SOURCE_DATABASE_URL/)
  })

  it("rejects identifiers that could inject SQL, naming the variable", () => {
    expect(() => readConfig(SlotName, { TOTES_SLOT: 'x"; DROP TABLE payment; --' })).toThrow(/TOTES_SLOT/)
  })

  it("keeps secrets redacted until revealed", () => {
    const url = readConfig(SourceDatabaseUrl, { SOURCE_DATABASE_URL: "postgres://u:secret@h/db" })
    expect(String(url)).not.toContain("secret")
    expect(reveal(url)).toBe("postgres://u:secret@h/db")
  })

  it("reads TOTES_FAILOVER_SLOT as a boolean, off by default, naming the variable when invalid", () => {
    expect(readConfig(FailoverSlot, {})).toBe(false)
    expect(readConfig(FailoverSlot, { TOTES_FAILOVER_SLOT: "true" })).toBe(true)
    expect(readConfig(FailoverSlot, { TOTES_FAILOVER_SLOT: "false" })).toBe(false)
    expect(() => readConfig(FailoverSlot, { TOTES_FAILOVER_SLOT: "maybe" })).toThrow(/TOTES_FAILOVER_SLOT/)
  })

  it("splits TOTES_TABLES", () => {
    expect(readConfig(Tables, { TOTES_TABLES: "payment, sales_order" })).toEqual(["payment", "sales_order"])
  })
})
