/** What relation messages reveal about a table's schema, and whether the warehouse can absorb it. */
import { describe, expect, it } from "vitest"
import { describeChange, SchemaWatch } from "../../services/reader/schema-watch.ts"

const design = (columns: Array<[string, number]>) => ({ table: "design", columns })
const BASE: Array<[string, number]> = [["design_id", 23], ["created_at", 1114], ["design_name", 25], ["file_location", 25], ["file_name", 25], ["last_updated", 1114]]

describe("SchemaWatch", () => {
  it("says nothing about the first sight of a table the warehouse can build on, nor about an unchanged one", () => {
    const watch = new SchemaWatch()
    expect(watch.observe(design(BASE))).toBeUndefined()
    expect(watch.observe(design(BASE))).toBeUndefined()
  })

  it("names added, dropped (or renamed) and retyped columns, and which of them the warehouse uses", () => {
    const watch = new SchemaWatch()
    watch.observe(design(BASE))
    const renamed = watch.observe(design(BASE.map(([name, type]) => (name === "design_name" ? ["title", type] : [name, type]))))!
    expect(renamed).toEqual({ table: "design", added: ["title"], dropped: ["design_name"], retyped: [], breaksWarehouse: ["design_name"], firstSight: false })
    expect(describeChange(renamed)).toBe("design: added title; dropped or renamed design_name (the warehouse uses design_name: the table will pause until resumed)")
    const retyped = watch.observe(design(BASE.map(([name, type]) => (name === "design_id" ? [name, 20] : name === "design_name" ? ["title", type] : [name, type]))))!
    expect(retyped).toMatchObject({ retyped: ["design_id"], breaksWarehouse: [] })
    expect(describeChange(retyped)).toBe("design: changed the type of design_id (the warehouse can absorb it)")
  })

  it("on first sight, reports used columns that are already gone", () => {
    const watch = new SchemaWatch()
    const change = watch.observe(design(BASE.filter(([name]) => name !== "file_name")))!
    expect(change).toEqual({ table: "design", added: [], dropped: ["file_name"], retyped: [], breaksWarehouse: ["file_name"], firstSight: true })
  })
})
