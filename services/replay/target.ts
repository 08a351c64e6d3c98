/**
 * The warehouse a replay writes to: is it empty, does it hold data, migrate it.
 * A replay only writes into an empty warehouse (it migrates it itself), into one it has already
 * started on (resume), or, with catch-up, into one that holds data: the position guard makes
 * re-applying what is there harmless, but a mistyped URL should not silently mix two histories.
 */
import type pg from "pg"
import { migrateWarehouse, resolveSchemas, type WarehouseSchemas } from "../warehouse/migrate.ts"

export interface TargetState {
  readonly migrated: boolean
  /** Rows in the mirror, the facts, truncations and skipped events (0 = empty). */
  readonly rows: number
}

const exists = async (client: pg.ClientBase, qualified: string) =>
  (await client.query("SELECT to_regclass($1) IS NOT NULL AS present", [qualified])).rows[0].present as boolean

export const inspectTarget = async (client: pg.ClientBase, schemas: WarehouseSchemas = {}): Promise<TargetState> => {
  const { s, p } = resolveSchemas(schemas)
  if (!(await exists(client, `${p}.schema_migrations`))) return { migrated: false, rows: 0 }
  let rows = 0
  for (const table of [`${p}.mirror`, `${p}.truncation`, `${p}.skipped_event`, `${s}.fact_sales_order`, `${s}.fact_purchase_order`, `${s}.fact_payment`]) {
    if (!(await exists(client, table))) continue
    // Whether there is any row, not how many: bounded work on a large warehouse.
    const { rows: found } = await client.query(`SELECT count(*)::int AS n FROM (SELECT 1 FROM ${table} LIMIT 1) q`)
    rows += found[0].n as number
  }
  return { migrated: true, rows }
}

export class TargetNotEmptyError extends Error {
  override readonly name = "TargetNotEmptyError"
}

/** Migrates the target; refuses one that holds data unless `allowData` (catch-up or a resumed run). */
export const prepareTarget = async (
  client: pg.ClientBase,
  options: WarehouseSchemas & { readonly allowData: boolean; readonly describe: string }
): Promise<TargetState> => {
  const state = await inspectTarget(client, options)
  if (state.rows > 0 && !options.allowData) {
    throw new TargetNotEmptyError(
      `the target warehouse ${options.describe} already holds data: replay writes into an empty warehouse. ` +
        `To apply the lake on top of what it holds (safe: every row is position-guarded), pass --catch-up; ` +
        `to rebuild, point --target at a new empty database.`
    )
  }
  await migrateWarehouse(client, options)
  return state
}

/** A URL without its password, for messages and for naming the target in the checkpoint. */
export const describeUrl = (url: string): string => {
  try {
    const parsed = new URL(url)
    parsed.password = ""
    parsed.search = ""
    return parsed.toString()
  } catch {
    return "<unparseable URL>"
  }
}
