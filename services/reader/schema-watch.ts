/**
 * Pure: what a relation message says about a table's schema. pgoutput sends a table's relation
 * message before its first change in a session and again after every change of its columns, so
 * comparing each with the last one seen says what an ALTER TABLE did. The reader reports it (a
 * log line, the SchemaChanges metric, `totes status`); whether the warehouse can absorb it is the
 * consumer's decision (services/warehouse/schema-check.ts), which pauses a table it cannot.
 */
import { usedColumns } from "../../contracts/warehouse-catalogue.ts"

export interface RelationColumns {
  readonly table: string
  /** Column name → type OID, in the table's order. */
  readonly columns: ReadonlyArray<readonly [string, number]>
}

export interface SchemaChange {
  readonly table: string
  readonly added: ReadonlyArray<string>
  readonly dropped: ReadonlyArray<string>
  readonly retyped: ReadonlyArray<string>
  /** Dropped (or renamed away) columns the warehouse builds on: the consumer will pause the table. */
  readonly breaksWarehouse: ReadonlyArray<string>
  /** First sight of the table in this session: differences from the warehouse catalogue only. */
  readonly firstSight: boolean
}

export const describeChange = (change: SchemaChange): string => {
  const parts = [
    change.added.length > 0 ? `added ${change.added.join(", ")}` : "",
    change.dropped.length > 0 ? `dropped or renamed ${change.dropped.join(", ")}` : "",
    change.retyped.length > 0 ? `changed the type of ${change.retyped.join(", ")}` : ""
  ].filter(Boolean)
  return `${change.table}: ${parts.join("; ")}${change.breaksWarehouse.length > 0 ? ` (the warehouse uses ${change.breaksWarehouse.join(", ")}: the table will pause until resumed)` : " (the warehouse can absorb it)"}`
}

export class SchemaWatch {
  private readonly seen = new Map<string, RelationColumns>()

  /** `known`: the schemas last seen (an earlier session's record, or the catalogue at the snapshot). */
  constructor(known: Readonly<Record<string, ReadonlyArray<readonly [string, number]>>> = {}) {
    for (const [table, columns] of Object.entries(known)) this.seen.set(table, { table, columns })
  }

  /** The schemas as last seen, to record. */
  snapshot(): Record<string, ReadonlyArray<readonly [string, number]>> {
    return Object.fromEntries([...this.seen].map(([table, relation]) => [table, relation.columns]))
  }

  /** The change a relation message reveals, if any. */
  observe(relation: RelationColumns): SchemaChange | undefined {
    const previous = this.seen.get(relation.table)
    this.seen.set(relation.table, relation)
    const names = new Set(relation.columns.map(([name]) => name))
    const used = Object.keys(usedColumns(relation.table))
    if (!previous) {
      // First sight: only what the warehouse would miss is worth saying.
      const missing = used.filter((column) => !names.has(column))
      return missing.length === 0 ? undefined : { table: relation.table, added: [], dropped: missing, retyped: [], breaksWarehouse: missing, firstSight: true }
    }
    const before = new Map(previous.columns)
    const added = relation.columns.filter(([name]) => !before.has(name)).map(([name]) => name)
    const dropped = previous.columns.filter(([name]) => !names.has(name)).map(([name]) => name)
    const retyped = relation.columns.filter(([name, type]) => before.has(name) && before.get(name) !== type).map(([name]) => name)
    if (added.length === 0 && dropped.length === 0 && retyped.length === 0) return undefined
    return { table: relation.table, added, dropped, retyped, breaksWarehouse: dropped.filter((c) => used.includes(c)), firstSight: false }
  }
}
