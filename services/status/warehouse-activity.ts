/**
 * How fast the warehouse takes changes, read from the warehouse alone (no metrics service): for a
 * console watching a stage, where the components' EMF lines go to CloudWatch. Read-only, cheap
 * enough to call every second.
 *
 * - applied changes: a counter of the rows the consumer wrote to the pipeline's mirror of source
 *   rows, from PostgreSQL's statistics (`pg_stat_user_tables`, flushed by the writing sessions
 *   about every second; safe with shards applying in parallel). Every table counts; a change the
 *   position guard refuses writes nothing, and several changes of one row applied in one
 *   transaction write it once (so this is at most the number of events applied, at least the
 *   number of rows they changed); an apply transaction that rolled back still counts. Only the
 *   difference between two samples means something.
 * - commit → warehouse latency of the fact rows that appeared since the previous sample
 *   (`applied_at` is the apply transaction's start, so this is slightly less than the consumer's
 *   `EndToEndLatency`); snapshot rows are left out. Shards apply in parallel, so a fact row whose
 *   transaction commits after one with a higher id can be missed: a sample, not a census.
 */
import type pg from "pg"

export interface WarehouseActivitySample {
  readonly at: number
  /** Row changes applied to the mirror since the server's statistics were reset; null when the warehouse is not migrated. */
  readonly appliedChanges: number | null
  /** Commit → warehouse latencies (ms) of the fact rows that appeared since the previous sample. */
  readonly latenciesMs: ReadonlyArray<number>
}

export interface WarehouseActivitySampler {
  /** Reads through the given connection (a console reconnects after an outage; the sampler keeps its place). */
  readonly sample: (warehouse: pg.ClientBase) => Promise<WarehouseActivitySample>
}

/** The append-only fact tables and their serial keys. */
const FACTS = [
  ["fact_sales_order", "sales_record_id"],
  ["fact_purchase_order", "purchase_record_id"],
  ["fact_payment", "payment_record_id"]
] as const

const identifier = (name: string) => `"${name.replace(/"/g, '""')}"`

const undefinedTable = (error: unknown) => (error as { code?: string })?.code === "42P01" || (error as { code?: string })?.code === "3F000"

export const makeWarehouseActivitySampler = (
  options: { schema?: string; pipelineSchema?: string; maxRowsPerTable?: number; now?: () => number } = {}
): WarehouseActivitySampler => {
  const schema = options.schema ?? "public"
  const pipelineSchema = options.pipelineSchema ?? "totes"
  const maxRows = options.maxRowsPerTable ?? 2_000
  const now = options.now ?? Date.now
  /** The highest fact id seen per table; unset until the first sample (which reads no history). */
  const seen = new Map<string, number>()

  const appliedChanges = async (warehouse: pg.ClientBase) => {
    const { rows } = await warehouse.query(
      "SELECT (n_tup_ins + n_tup_upd + n_tup_del)::float8 AS n FROM pg_stat_user_tables WHERE schemaname = $1 AND relname = 'mirror'",
      [pipelineSchema]
    )
    return rows.length === 0 ? null : Number(rows[0].n)
  }

  const newFactLatencies = async (warehouse: pg.ClientBase, table: string, key: string): Promise<Array<number>> => {
    const from = `${identifier(schema)}.${identifier(table)}`
    try {
      const after = seen.get(table)
      if (after === undefined) {
        const { rows } = await warehouse.query(`SELECT coalesce(max(${key}), 0)::float8 AS id FROM ${from}`)
        seen.set(table, Number(rows[0].id))
        return []
      }
      // The newest rows first: after a long pause the sample is the latest, not the oldest.
      const { rows } = await warehouse.query(
        `SELECT ${key}::float8 AS id, change_op, extract(epoch FROM applied_at - source_committed_at)::float8 * 1000 AS ms
         FROM ${from} WHERE ${key} > $1 ORDER BY ${key} DESC LIMIT $2`,
        [after, maxRows]
      )
      if (rows.length > 0) seen.set(table, Number(rows[0].id))
      return rows.filter((r) => r.change_op !== "r").map((r) => Math.max(0, Number(r.ms)))
    } catch (error) {
      if (undefinedTable(error)) return []
      throw error
    }
  }

  return {
    sample: async (warehouse) => {
      const at = now()
      const applied = await appliedChanges(warehouse)
      const latencies: Array<number> = []
      for (const [table, key] of FACTS) latencies.push(...(await newFactLatencies(warehouse, table, key)))
      return { at, appliedChanges: applied, latenciesMs: latencies }
    }
  }
}
