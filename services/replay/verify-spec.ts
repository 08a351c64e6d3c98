/**
 * What verify compares, per warehouse table: the same row derived twice, independently.
 *
 *   source     SQL over the totesys tables applying the contract's derivation rules
 *              (totesys-schema.md §2), written here again rather than taken from the warehouse
 *   warehouse  the live dimension rows (is_deleted false) / the fact's *_current view
 *
 * Both sides yield `k` (the natural key) and `r`, the diagram columns as a jsonb array of their
 * text forms, so that a type or formatting difference is a difference too. The warehouse side also
 * yields `lsn`, the source position its row reflects; `positions` gives it for keys that have no
 * live row (deleted dimension rows, facts whose latest change is a delete).
 */
import {
  dimensionAttributes,
  factAttributes,
  STAR_SCHEMA,
  type DimensionName,
  type FactName,
  type StarColumn,
  type StarTable
} from "../../contracts/star-schema.ts"
import type { WarehouseSchemas } from "../warehouse/migrate.ts"
import { resolveSchemas } from "../warehouse/migrate.ts"

export interface VerifySpec {
  readonly table: string
  /** The source tables the source side reads (a schema change in one of them concerns this table). */
  readonly sourceTables: ReadonlyArray<string>
  readonly key: string
  readonly columns: ReadonlyArray<string>
  /** SELECT k, r FROM … over the source (parameter $1: ISO 4217 code → name as jsonb). */
  readonly source: string
  /** SELECT k, r, lsn FROM … over the warehouse. */
  readonly warehouse: (schemas: WarehouseSchemas) => string
  /** SELECT k, lsn for the keys in $1::bigint[], live or not. */
  readonly positions: (schemas: WarehouseSchemas) => string
  /** The same comparison as the operator's schema-change decisions read the source (see withDecisions). */
  readonly adapt: (decisions: Decisions) => VerifySpec
}

export type Decisions = ReadonlyMap<string, { readonly renamed: Readonly<Record<string, string>>; readonly missingAccepted: ReadonlyArray<string> }>

/** Columns accepted as gone: a compared column whose source expression reads one of them is compared as NULL on both sides. */
const goneColumns = (decisions: Decisions) => new Set([...decisions.values()].flatMap((d) => d.missingAccepted))
const readsGone = (expression: string, gone: ReadonlySet<string>) => [...gone].some((column) => new RegExp(`(^|[^a-z_])${column}([^a-z_]|$)`).test(expression))

/**
 * The compared row: each column's text, numbers by their value (trim_scale: 84755.00 = 84755), so
 * that a widened source type (integer → numeric) is not a difference while a changed value is.
 */
const row = (expressions: ReadonlyArray<string>, numeric: ReadonlyArray<boolean> = []) =>
  `jsonb_build_array(${expressions.map((e, i) => (numeric[i] ? `trim_scale((${e})::numeric)::text` : `(${e})::text`)).join(", ")})::text`

/** Warehouse columns compared by numeric value. */
const NUMERIC = new Set(["units_sold", "unit_price", "item_quantity", "item_unit_price", "payment_amount"])
const numericFlags = (columns: ReadonlyArray<string>) => columns.map((c) => NUMERIC.has(c))

/** The `public.<table>` references of a source query. */
const tablesOf = (from: string): Array<string> => [...from.matchAll(/public\."?([a-z_]+)"?/g)].map((m) => m[1]!)

/**
 * The source query as the operator's decisions for schema changes read it (the same decisions the
 * consumer applies): a renamed column read under its warehouse name, a dropped one accepted as NULL.
 */
export const withDecisions = (sql: string, decisions: Decisions): string =>
  sql.replace(/public\."?([a-z_]+)"?/g, (reference, table: string) => {
    const d = decisions.get(table)
    if (!d || (Object.keys(d.renamed).length === 0 && d.missingAccepted.length === 0)) return reference
    const extra = [
      ...Object.entries(d.renamed).map(([column, source]) => `x."${source}" AS "${column}"`),
      ...d.missingAccepted.map((column) => `NULL AS "${column}"`)
    ]
    return `(SELECT x.*, ${extra.join(", ")} FROM ${reference} x)`
  })

const dim = (
  table: string,
  key: string,
  columns: ReadonlyArray<string>,
  sourceKey: string,
  sourceExpressions: ReadonlyArray<string>,
  from: string,
  decisions: Decisions = new Map()
): VerifySpec => {
  const gone = goneColumns(decisions)
  const source = sourceExpressions.map((e) => (readsGone(e, gone) ? "NULL" : e))
  const target = columns.map((c, i) => (source[i] === "NULL" && sourceExpressions[i] !== "NULL" ? "NULL" : c))
  return {
  table,
  sourceTables: tablesOf(from),
  key,
  columns,
  source: `SELECT (${sourceKey})::bigint AS k, ${row(source, numericFlags(columns))} AS r FROM ${withDecisions(from, decisions)}`,
  warehouse: (schemas) => {
    const { s } = resolveSchemas(schemas)
    return `SELECT ${key}::bigint AS k, ${row(target, numericFlags(columns))} AS r, source_lsn AS lsn FROM ${s}.${table} WHERE NOT is_deleted`
  },
  adapt: (next) => dim(table, key, columns, sourceKey, sourceExpressions, from, next),
  positions: (schemas) => {
    const { s } = resolveSchemas(schemas)
    return `SELECT ${key}::bigint AS k, source_lsn AS lsn FROM ${s}.${table} WHERE ${key} = ANY($1::bigint[])`
  }
  }
}

const fact = (
  table: string,
  key: string,
  columns: ReadonlyArray<string>,
  sourceExpressions: ReadonlyArray<string>,
  from: string,
  decisions: Decisions = new Map()
): VerifySpec => {
  const gone = goneColumns(decisions)
  const source = sourceExpressions.map((e) => (readsGone(e, gone) ? "NULL" : e))
  const target = columns.map((c, i) => (source[i] === "NULL" && sourceExpressions[i] !== "NULL" ? "NULL" : c))
  return {
  table,
  sourceTables: tablesOf(from),
  key,
  columns,
  source: `SELECT ${key}::bigint AS k, ${row(source, numericFlags(columns))} AS r FROM ${withDecisions(from, decisions)}`,
  warehouse: (schemas) => {
    const { s } = resolveSchemas(schemas)
    return `SELECT ${key}::bigint AS k, ${row(target, numericFlags(columns))} AS r, source_lsn AS lsn FROM ${s}.${table}_current`
  },
  adapt: (next) => fact(table, key, columns, sourceExpressions, from, next),
  positions: (schemas) => {
    const { s } = resolveSchemas(schemas)
    return `SELECT DISTINCT ON (${key}) ${key}::bigint AS k, source_lsn AS lsn FROM ${s}.${table}
            WHERE ${key} = ANY($1::bigint[]) ORDER BY ${key}, source_lsn DESC, source_seq DESC`
  }
  }
}

/** The four columns every fact derives from the source row's created_at and last_updated. */
const createdAndUpdated = () => ({
  created_date: "created_at::date",
  created_time: "created_at::time(3)",
  last_updated_date: "last_updated::date",
  last_updated_time: "last_updated::time(3)"
})

/** A derivation: for each of the table's columns after its key (the catalogue's), the source expression. */
type Derivation<T extends DimensionName | FactName> = Record<Exclude<StarColumn<T>, (typeof STAR_SCHEMA)[T]["key"] | RecordId<T>>, string>
type RecordId<T extends StarTable> = (typeof STAR_SCHEMA)[T] extends { readonly recordId: infer R } ? R : never

/** A dimension's spec from its source key expression and derivation, columns in the catalogue's order. */
const dimension = <T extends DimensionName>(table: T, sourceKey: string, derivation: Derivation<T>, from: string): VerifySpec => {
  const columns = dimensionAttributes(table)
  return dim(table, STAR_SCHEMA[table].key, columns, sourceKey, columns.map((c) => (derivation as Record<string, string>)[c]!), from)
}

/** A fact's spec (its current rows) from its derivation, columns in the catalogue's order. */
const factOf = <T extends FactName>(table: T, derivation: Derivation<T>): VerifySpec => {
  const columns = factAttributes(table)
  const key = STAR_SCHEMA[table].key
  return fact(table, key, columns, columns.map((c) => (derivation as Record<string, string>)[c]!), `public.${STAR_SCHEMA[table].source}`)
}

export const VERIFY_SPECS: ReadonlyArray<VerifySpec> = [
  dimension(
    "dim_staff",
    "s.staff_id",
    { first_name: "s.first_name", last_name: "s.last_name", department_name: "d.department_name", location: "d.location", email_address: "s.email_address" },
    `public.staff s LEFT JOIN public.department d ON d.department_id = s.department_id`
  ),
  dimension(
    "dim_location",
    "address_id",
    {
      address_line_1: "address_line_1", address_line_2: "address_line_2", district: "district", city: "city", postal_code: "postal_code",
      country: "country", phone: "phone"
    },
    `public.address`
  ),
  dimension(
    "dim_currency",
    "currency_id",
    // ISO 4217 name; an unknown code keeps the code.
    { currency_code: "currency_code", currency_name: "COALESCE($1::jsonb ->> upper(currency_code), currency_code)" },
    `public.currency`
  ),
  dimension("dim_design", "design_id", { design_name: "design_name", file_location: "file_location", file_name: "file_name" }, `public.design`),
  dimension(
    "dim_counterparty",
    "c.counterparty_id",
    {
      counterparty_legal_name: "c.counterparty_legal_name",
      counterparty_legal_address_line_1: "a.address_line_1",
      counterparty_legal_address_line_2: "a.address_line_2",
      counterparty_legal_district: "a.district",
      counterparty_legal_city: "a.city",
      counterparty_legal_postal_code: "a.postal_code",
      counterparty_legal_country: "a.country",
      counterparty_legal_phone_number: "a.phone"
    },
    `public.counterparty c LEFT JOIN public.address a ON a.address_id = c.legal_address_id`
  ),
  dimension("dim_payment_type", "payment_type_id", { payment_type_name: "payment_type_name::text" }, `public.payment_type`),
  dimension(
    "dim_transaction",
    "transaction_id",
    { transaction_type: "transaction_type::text", sales_order_id: "sales_order_id", purchase_order_id: "purchase_order_id" },
    `public."transaction"`
  ),
  factOf("fact_sales_order", {
    ...createdAndUpdated(),
    sales_staff_id: "staff_id",
    counterparty_id: "counterparty_id",
    units_sold: "units_sold",
    unit_price: "unit_price",
    currency_id: "currency_id",
    design_id: "design_id",
    agreed_payment_date: "agreed_payment_date::date",
    agreed_delivery_date: "agreed_delivery_date::date",
    agreed_delivery_location_id: "agreed_delivery_location_id"
  }),
  factOf("fact_purchase_order", {
    ...createdAndUpdated(),
    staff_id: "staff_id",
    counterparty_id: "counterparty_id",
    item_code: "item_code",
    item_quantity: "item_quantity",
    item_unit_price: "item_unit_price",
    currency_id: "currency_id",
    agreed_delivery_date: "agreed_delivery_date::date",
    agreed_payment_date: "agreed_payment_date::date",
    agreed_delivery_location_id: "agreed_delivery_location_id"
  }),
  factOf("fact_payment", {
    ...createdAndUpdated(),
    transaction_id: "transaction_id",
    counterparty_id: "counterparty_id",
    payment_amount: "payment_amount",
    currency_id: "currency_id",
    payment_type_id: "payment_type_id",
    paid: "paid",
    payment_date: "payment_date::date"
  })
]

export const VERIFY_TABLES = VERIFY_SPECS.map((spec) => spec.table)
