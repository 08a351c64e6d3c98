/**
 * Merges one initial-snapshot chunk (a SnapshotChunk record and its rows, COPY text format) into
 * the warehouse set-wise, with exactly the result the chunk's op "r" change events give through
 * apply.ts:
 *
 *   COPY the rows into a temporary table, typed so that `to_jsonb` of a staged row is the row's
 *   image by the reader's value rules (contracts/pg-text-values.ts) → in a short transaction, the
 *   dates and placeholder dimensions the fact rows will reference → in one transaction, the mirror
 *   under the same position guard (a row the warehouse already holds at a newer position is left
 *   alone), the dimensions the rows feed, recomputed, one fact row per row ('r', unique by event
 *   id, so a chunk merged twice adds nothing) and the truncation rows re-derived if the table was
 *   ever truncated.
 *
 * What the set-wise path does not decide itself it hands back ("RowPath"): a table that is paused
 * or has operator decisions, a column whose type or values would need the schema check's
 * normalisation or a pause, a key that is not the table's integer key. The caller then applies the
 * chunk's rows as change events (apply.ts), which handles all of that.
 *
 * `client` must not be pipelined (COPY), and not be inside a transaction.
 */
import type { Writable } from "node:stream"
import { pipeline } from "node:stream/promises"
import type pg from "pg"
import { from as copyFrom } from "pg-copy-streams"
import type { ChunkColumn, SnapshotChunk } from "../../contracts/change-event.ts"
import { PgType } from "../../contracts/pg-text-values.ts"
import { dimensionAttributes, STAR_SCHEMA } from "../../contracts/star-schema.ts"
import { isTotesysTable, PRIMARY_KEYS, type TotesysTable } from "../../contracts/totesys.ts"
import { usedColumns, type ColumnKind } from "../../contracts/warehouse-catalogue.ts"
import { APPLY_LOCK, DIMENSION_KEY_LOCK } from "./apply.ts"
import { resolveSchemas, type WarehouseSchemas } from "./migrate.ts"
import { DIM_DEPENDENCIES, DIM_TABLES, FACT_COLUMNS, FACT_DATE_COLUMNS, FACT_KEYS, FACT_REFERENCES, FACT_SOURCES, type FactTable } from "./projection.ts"

export type ChunkMerge =
  | { readonly _tag: "Merged"; readonly rows: number; readonly mirrorRows: number; readonly factRows: number; readonly dimensionRows: number }
  | { readonly _tag: "RowPath"; readonly reason: string }

/** How a fact column comes from the source row's image (projection.ts FACT_MAPPINGS, in SQL). */
type Derivation = readonly [from: string, how: "value" | "date-of" | "time-of" | "text-date"]

const TIMESTAMPS = {
  created_date: ["created_at", "date-of"],
  created_time: ["created_at", "time-of"],
  last_updated_date: ["last_updated", "date-of"],
  last_updated_time: ["last_updated", "time-of"]
} as const satisfies Record<string, Derivation>

/** Every diagram column of each fact but its record id; a unit test holds these to projection.ts's mapping. */
export const FACT_DERIVATIONS: Readonly<Record<FactTable, Readonly<Record<string, Derivation>>>> = {
  fact_sales_order: {
    sales_order_id: ["sales_order_id", "value"],
    ...TIMESTAMPS,
    sales_staff_id: ["staff_id", "value"],
    counterparty_id: ["counterparty_id", "value"],
    units_sold: ["units_sold", "value"],
    unit_price: ["unit_price", "value"],
    currency_id: ["currency_id", "value"],
    design_id: ["design_id", "value"],
    agreed_payment_date: ["agreed_payment_date", "text-date"],
    agreed_delivery_date: ["agreed_delivery_date", "text-date"],
    agreed_delivery_location_id: ["agreed_delivery_location_id", "value"]
  },
  fact_purchase_order: {
    purchase_order_id: ["purchase_order_id", "value"],
    ...TIMESTAMPS,
    staff_id: ["staff_id", "value"],
    counterparty_id: ["counterparty_id", "value"],
    item_code: ["item_code", "value"],
    item_quantity: ["item_quantity", "value"],
    item_unit_price: ["item_unit_price", "value"],
    currency_id: ["currency_id", "value"],
    agreed_delivery_date: ["agreed_delivery_date", "text-date"],
    agreed_payment_date: ["agreed_payment_date", "text-date"],
    agreed_delivery_location_id: ["agreed_delivery_location_id", "value"]
  },
  fact_payment: {
    payment_id: ["payment_id", "value"],
    ...TIMESTAMPS,
    transaction_id: ["transaction_id", "value"],
    counterparty_id: ["counterparty_id", "value"],
    payment_amount: ["payment_amount", "value"],
    currency_id: ["currency_id", "value"],
    payment_type_id: ["payment_type_id", "value"],
    paid: ["paid", "value"],
    payment_date: ["payment_date", "text-date"]
  }
}

const literal = (text: string) => `'${text.replace(/'/g, "''")}'`
const ident = (name: string) => `"${name.replace(/"/g, '""')}"`

/**
 * SQL of a fact column from the staged row `t`, cast to the fact column's type. The row path
 * casts the image's JSON value (the same text, see stagingType) with the type's input function;
 * a cast from the staged type gives the same value.
 */
const derive = ([from, how]: Derivation, type: string): string => {
  const column = `t.${ident(from)}`
  switch (how) {
    case "value":
      return `${column}::${type}`
    case "date-of":
      return `${column}::date::${type}`
    case "time-of":
      return `${column}::time::${type}`
    case "text-date":
      return `${column}::date::${type}`
  }
}

const DATE_TEXT = "^\\d{4}-\\d{2}-\\d{2}$"
/** numeric(10,2) as the schema check takes it: at most 8 integer digits and 2 decimals (trailing zeros aside). */
const MONEY_TEXT = "^-?0*\\d{1,8}(\\.\\d{1,2}0*)?$"

/**
 * Pure: why the chunk cannot take the set-wise path, or the SQL check its rows must pass (a used
 * column whose values the schema check would test: none may fail it).
 */
export const setWiseCheck = (pointer: SnapshotChunk): { readonly reason: string } | { readonly valueChecks: ReadonlyArray<string> } => {
  const table = pointer.source.table
  if (!isTotesysTable(table)) return { reason: `${table} is not a table of the star schema` }
  if (pointer.keyColumns.length !== 1 || pointer.keyColumns[0] !== PRIMARY_KEYS[table]) return { reason: `key ${pointer.keyColumns.join(", ")} is not ${PRIMARY_KEYS[table]}` }
  const index = new Map(pointer.columns.map((c, i) => [c.name, i]))
  const key = pointer.columns[index.get(PRIMARY_KEYS[table]) ?? -1]
  if (!key || (key.typeOid !== PgType.int4 && key.typeOid !== PgType.int2)) return { reason: `key ${PRIMARY_KEYS[table]} is not an integer column` }
  const checks: Array<string> = []
  for (const [name, kind] of Object.entries(usedColumns(table))) {
    const i = index.get(name)
    if (i === undefined) return { reason: `column ${name} is missing` }
    const fits = typeFits(kind, pointer.columns[i]!)
    if (fits === false) return { reason: `column ${name} is ${pointer.columns[i]!.typeName}, not what the warehouse's ${kind} column takes as it is` }
    if (fits !== true) checks.push(`t.${ident(name)}::text !~ ${literal(fits)}`)
  }
  return { valueChecks: checks }
}

/** true: every value of the type fits as it is; a regex: values must match it; false: not set-wise. */
const typeFits = (kind: ColumnKind, column: ChunkColumn): boolean | string => {
  switch (kind) {
    case "int":
      return column.typeOid === PgType.int4 || column.typeOid === PgType.int2
    case "money":
      return column.typeOid === PgType.numeric ? MONEY_TEXT : false
    case "text":
      return column.category === "S" || column.category === "E"
    case "timestamp":
      // A finite timestamp of years 1–9999 always prints in the schema check's form (unsupportedValues checks the range).
      return column.typeOid === PgType.timestamp
    case "date":
      return column.typeOid === PgType.date || column.category === "S" ? DATE_TEXT : false
    case "bool":
      return column.typeOid === PgType.bool
  }
}

/**
 * How a column is staged so that `to_jsonb` of the staged row gives decodeValue's value: integers,
 * booleans and timestamps typed (JSON number, boolean, ISO text with "T" and PostgreSQL's digits),
 * everything decodeValue keeps as text (numeric, int8, date, text, enums…) as text. The types
 * decodeValue converts otherwise are staged as text and overridden (jsonOverride).
 */
const stagingType = (column: ChunkColumn): string => {
  switch (column.typeOid) {
    case PgType.int2:
      return "smallint"
    case PgType.int4:
      return "integer"
    case PgType.bool:
      return "boolean"
    case PgType.timestamp:
      return "timestamp"
    default:
      return "text"
  }
}

/** SQL of the lossless JSON value of a column staged as text whose value is not its text (decodeValue's rules); undefined: to_jsonb is right. */
const jsonOverride = (column: ChunkColumn): string | undefined => {
  const c = `t.${ident(column.name)}`
  switch (column.typeOid) {
    case PgType.oid:
      return `${c}::bigint`
    case PgType.float4:
    case PgType.float8:
      return `CASE WHEN ${c} IN ('NaN', 'Infinity', '-Infinity') THEN to_jsonb(${c}) ELSE to_jsonb(${c}::float8) END`
    case PgType.json:
    case PgType.jsonb:
      return `${c}::jsonb`
    case PgType.bytea:
      return `translate(encode(decode(substr(${c}, 3), 'hex'), 'base64'), E'\\n', '')`
    case PgType.timestamptz:
      return `CASE WHEN ${c} ~ '^\\d{4}-\\d{2}-\\d{2} \\d{2}:\\d{2}:\\d{2}(\\.\\d+)?[+-]\\d{2}(:\\d{2}){0,2}$' AND (${c}::timestamptz AT TIME ZONE 'UTC') < '10000-01-01'
         THEN to_char(${c}::timestamptz AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS') || coalesce(substring(${c} from '\\.\\d+'), '') || 'Z' ELSE ${c} END`
    default:
      return undefined
  }
}

/** Values whose staged form would not give decodeValue's: not set-wise (bytea in the escape format; timestamps PostgreSQL prints as JSON otherwise). */
const unsupportedValues = (columns: ReadonlyArray<ChunkColumn>): Array<string> =>
  columns.flatMap((column) => {
    const c = `t.${ident(column.name)}`
    if (column.typeOid === PgType.bytea) return [`left(${c}, 2) <> '\\x'`]
    if (column.typeOid === PgType.timestamp) return [`NOT isfinite(${c})`, `${c} < '0001-01-01'`, `${c} >= '10000-01-01'`]
    return []
  })

/** The image: the staged row as JSON, with the overridden columns (jsonb_build_object takes at most 100 arguments). */
const imageSql = (columns: ReadonlyArray<ChunkColumn>): string => {
  const pairs = columns.flatMap((column) => {
    const value = jsonOverride(column)
    return value === undefined ? [] : [`${literal(column.name)}, ${value}`]
  })
  const parts = ["to_jsonb(t)"]
  for (let start = 0; start < pairs.length; start += 40) parts.push(`jsonb_build_object(${pairs.slice(start, start + 40).join(", ")})`)
  return parts.join(" || ")
}

const DIMENSION_COLUMNS = (dim: keyof typeof STAR_SCHEMA) => [...dimensionAttributes(dim as never), "source_lsn", "is_deleted"]

const factOf = (table: TotesysTable): FactTable | undefined => (Object.keys(FACT_SOURCES) as Array<FactTable>).find((fact) => FACT_SOURCES[fact] === table)

/** Merges the chunk (see the module comment); `copyText` is its rows as COPY wrote them. */
export const mergeSnapshotChunk = async (
  client: pg.ClientBase,
  pointer: SnapshotChunk,
  copyText: Uint8Array,
  options: WarehouseSchemas = {}
): Promise<ChunkMerge> => {
  try {
    return await merge(client, pointer, copyText, options)
  } finally {
    await client.query("DROP TABLE IF EXISTS pg_temp.totes_chunk").catch(() => {})
  }
}

const merge = async (client: pg.ClientBase, pointer: SnapshotChunk, copyText: Uint8Array, options: WarehouseSchemas): Promise<ChunkMerge> => {
  const check = setWiseCheck(pointer)
  if ("reason" in check) return { _tag: "RowPath", reason: check.reason }
  const { s, p, pipelineSchema } = resolveSchemas(options)
  const table = pointer.source.table as TotesysTable
  const fact = factOf(table)
  const lsn = pointer.source.commitLsn
  const lock = fact ? "SELECT pg_advisory_xact_lock_shared($1, hashtext($2))" : "SELECT pg_advisory_xact_lock($1, hashtext($2))"
  const key = `t.${ident(PRIMARY_KEYS[table])}`
  const eventId = `${literal(`${lsn}:snapshot:${table}:`)} || ${key}`
  const decided = async () =>
    (
      await client.query(
        `SELECT EXISTS (SELECT 1 FROM ${p}.paused_table WHERE table_name = $1) OR EXISTS (SELECT 1 FROM ${p}.column_decision WHERE table_name = $1) AS decided,
                EXISTS (SELECT 1 FROM ${p}.truncation WHERE table_name = $1) AS truncated`,
        [table]
      )
    ).rows[0] as { decided: boolean; truncated: boolean }
  // Staged for the session, read by the two transactions below; dropped when done.
  await client.query("DROP TABLE IF EXISTS pg_temp.totes_chunk")
  await client.query(`CREATE TEMP TABLE totes_chunk (${pointer.columns.map((c) => `${ident(c.name)} ${stagingType(c)}`).join(", ")})`)
  await pipeline(
    (async function* () {
      yield copyText
    })(),
    client.query(copyFrom("COPY totes_chunk FROM STDIN")) as unknown as Writable
  )
  const failing = [...check.valueChecks, ...unsupportedValues(pointer.columns)]
  if (failing.length > 0) {
    const bad = await client.query(`SELECT EXISTS (SELECT 1 FROM totes_chunk t WHERE ${failing.join(" OR ")}) AS bad`)
    if (bad.rows[0].bad) return { _tag: "RowPath", reason: "a value needs the schema check" }
  }
  if ((await decided()).decided) return { _tag: "RowPath", reason: `${table} is paused or has schema decisions` }

  let factTypes = new Map<string, string>()
  if (fact) {
    factTypes = new Map(
      (
        await client.query(
          `SELECT attname, format_type(atttypid, atttypmod) AS type FROM pg_attribute WHERE attrelid = $1::regclass AND attnum > 0 AND NOT attisdropped`,
          [`${s}.${fact}`]
        )
      ).rows.map((r) => [r.attname as string, r.type as string])
    )
    // Every date and dimension key a fact row references exists before it (apply.ts's order). In a
    // short transaction of their own: rows other chunks need too are not held until a long merge ends.
    const derivations = FACT_DERIVATIONS[fact]
    const dates = FACT_DATE_COLUMNS[fact].map((column) => derive(derivations[column]!, "date"))
    await inTransaction(client, async () => {
      await client.query(lock, [APPLY_LOCK, pipelineSchema])
      await client.query(
        `SELECT ${p}.extend_dim_date(first, last) FROM (
           SELECT LEAST(${dates.map((d) => `min(${d})`).join(", ")}) AS first, GREATEST(${dates.map((d) => `max(${d})`).join(", ")}) AS last FROM totes_chunk t
         ) x WHERE first IS NOT NULL`
      )
      const references = new Map<string, Array<string>>()
      for (const [column, dim] of FACT_REFERENCES[fact]) references.set(dim, [...(references.get(dim) ?? []), derive(derivations[column]!, "integer")])
      const referenced = DIM_TABLES.filter((d) => references.has(d))
      const keysOf = (dim: string) => references.get(dim)!.map((k) => `SELECT DISTINCT ${k} AS k FROM totes_chunk t`).join(" UNION ")
      // The placeholders' dimension keys first, shared, in apply.ts's one global order (dimensionKeyLocks):
      // a batch recomputing one of those rows takes turns with this transaction instead of deadlocking.
      await client.query(
        `SELECT count(*) FROM (
           SELECT pg_advisory_xact_lock_shared(l.c, l.k) FROM (
             SELECT c, k FROM (${referenced.map((dim) => `SELECT ${DIMENSION_KEY_LOCK + DIM_TABLES.indexOf(dim)} AS c, k FROM (${keysOf(dim)}) r WHERE k IS NOT NULL`).join(" UNION ALL ")}) keys
             ORDER BY c, k OFFSET 0
           ) l
         ) taken`
      )
      for (const dim of referenced) {
        const dimKey = STAR_SCHEMA[dim].key
        await client.query(`INSERT INTO ${s}.${dim} (${dimKey}) SELECT k FROM (${keysOf(dim)}) r WHERE k IS NOT NULL ORDER BY k ON CONFLICT (${dimKey}) DO NOTHING`)
      }
    })
  }

  await client.query("BEGIN")
  try {
    // A fact table's rows touch only their own mirror rows and facts (shared lock, like an ordinary
    // batch); any other table feeds dimensions read across rows: alone (apply.ts, needsExclusiveApply).
    await client.query(lock, [APPLY_LOCK, pipelineSchema])
    const state = await decided()
    if (state.decided) return await rowPath(client, `${table} is paused or has schema decisions`)
    const mirror = await client.query(
      `INSERT INTO ${p}.mirror AS m (table_name, key_id, image, source_lsn, source_seq, deleted, event_id)
       SELECT $1, ${key}, ${imageSql(pointer.columns)}, $2::pg_lsn, -1, false, ${eventId} FROM totes_chunk t ORDER BY ${key}
       ON CONFLICT (table_name, key_id) DO UPDATE
       SET image = excluded.image, source_lsn = excluded.source_lsn, source_seq = excluded.source_seq,
           deleted = excluded.deleted, event_id = excluded.event_id, updated_at = now()
       WHERE (excluded.source_lsn, excluded.source_seq) > (m.source_lsn, m.source_seq)`,
      [table, lsn]
    )
    const rows = (await client.query("SELECT count(*)::int AS n FROM totes_chunk")).rows[0].n as number

    let dimensionRows = 0
    for (const { dim, via } of DIM_DEPENDENCIES[table]) {
      const dimKey = STAR_SCHEMA[dim].key
      const tracked = DIMENSION_COLUMNS(dim)
      const result = await client.query(
        `INSERT INTO ${s}.${dim} AS d (${dimKey}, ${tracked.join(", ")}, updated_at)
         SELECT v.${dimKey}, ${tracked.map((c) => `v.${c}`).join(", ")}, now()
         FROM ${p}.${dim}_source v
         WHERE v.${via === "key" ? dimKey : "parent_id"} IN (SELECT ${key} FROM totes_chunk t)
         ORDER BY v.${dimKey}
         ON CONFLICT (${dimKey}) DO UPDATE
         SET ${tracked.map((c) => `${c} = excluded.${c}`).join(", ")}, updated_at = excluded.updated_at
         WHERE (${tracked.map((c) => `d.${c}`).join(", ")}) IS DISTINCT FROM (${tracked.map((c) => `excluded.${c}`).join(", ")})`
      )
      dimensionRows += result.rowCount ?? 0
    }

    let factRows = 0
    if (fact) {
      const derivations = FACT_DERIVATIONS[fact]
      const typeOf = (column: string) => {
        const type = factTypes.get(column)
        if (!type) throw new Error(`${fact} has no column ${column}`)
        return type
      }
      const columns = [...FACT_COLUMNS[fact], "source_seq", "change_op", "event_id", "source_lsn", "source_committed_at"]
      const values = [
        ...FACT_COLUMNS[fact].map((column) => derive(column === FACT_KEYS[fact] ? [PRIMARY_KEYS[table], "value"] : derivations[column]!, typeOf(column))),
        "-1",
        "'r'",
        eventId,
        "$1::pg_lsn",
        "$2::timestamptz"
      ]
      const inserted = await client.query(
        `INSERT INTO ${s}.${fact} (${columns.join(", ")})
         SELECT ${values.join(", ")} FROM totes_chunk t
         ORDER BY ${FACT_COLUMNS[fact].length + 3}
         ON CONFLICT (event_id) DO NOTHING`,
        [lsn, pointer.source.committedAt]
      )
      factRows = inserted.rowCount ?? 0
      if (state.truncated) {
        await client.query(
          `SELECT ${p}.reconcile_truncations($1, $2, $3, $4::text[], $5::pg_lsn, -1, (SELECT array_agg(${key}::integer) FROM totes_chunk t))`,
          [fact, table, FACT_KEYS[fact], FACT_COLUMNS[fact], lsn]
        )
      }
    }
    await client.query("COMMIT")
    return { _tag: "Merged", rows, mirrorRows: mirror.rowCount ?? 0, factRows, dimensionRows }
  } catch (error) {
    await client.query("ROLLBACK").catch(() => {})
    throw error
  }
}

const inTransaction = async (client: pg.ClientBase, body: () => Promise<void>) => {
  await client.query("BEGIN")
  try {
    await body()
    await client.query("COMMIT")
  } catch (error) {
    await client.query("ROLLBACK").catch(() => {})
    throw error
  }
}

const rowPath = async (client: pg.ClientBase, reason: string): Promise<ChunkMerge> => {
  await client.query("ROLLBACK")
  return { _tag: "RowPath", reason }
}
