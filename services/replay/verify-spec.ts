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
import type { WarehouseSchemas } from "../warehouse/migrate.ts"
import { resolveSchemas } from "../warehouse/migrate.ts"

export interface VerifySpec {
  readonly table: string
  readonly key: string
  readonly columns: ReadonlyArray<string>
  /** SELECT k, r FROM … over the source (parameter $1: ISO 4217 code → name as jsonb). */
  readonly source: string
  /** SELECT k, r, lsn FROM … over the warehouse. */
  readonly warehouse: (schemas: WarehouseSchemas) => string
  /** SELECT k, lsn for the keys in $1::bigint[], live or not. */
  readonly positions: (schemas: WarehouseSchemas) => string
}

const row = (expressions: ReadonlyArray<string>) => `jsonb_build_array(${expressions.map((e) => `(${e})::text`).join(", ")})::text`

const dim = (table: string, key: string, columns: ReadonlyArray<string>, sourceKey: string, sourceExpressions: ReadonlyArray<string>, from: string): VerifySpec => ({
  table,
  key,
  columns,
  source: `SELECT (${sourceKey})::bigint AS k, ${row(sourceExpressions)} AS r FROM ${from}`,
  warehouse: (schemas) => {
    const { s } = resolveSchemas(schemas)
    return `SELECT ${key}::bigint AS k, ${row(columns)} AS r, source_lsn AS lsn FROM ${s}.${table} WHERE NOT is_deleted`
  },
  positions: (schemas) => {
    const { s } = resolveSchemas(schemas)
    return `SELECT ${key}::bigint AS k, source_lsn AS lsn FROM ${s}.${table} WHERE ${key} = ANY($1::bigint[])`
  }
})

const fact = (table: string, key: string, columns: ReadonlyArray<string>, sourceExpressions: ReadonlyArray<string>, from: string): VerifySpec => ({
  table,
  key,
  columns,
  source: `SELECT ${key}::bigint AS k, ${row(sourceExpressions)} AS r FROM ${from}`,
  warehouse: (schemas) => {
    const { s } = resolveSchemas(schemas)
    return `SELECT ${key}::bigint AS k, ${row(columns)} AS r, source_lsn AS lsn FROM ${s}.${table}_current`
  },
  positions: (schemas) => {
    const { s } = resolveSchemas(schemas)
    return `SELECT DISTINCT ON (${key}) ${key}::bigint AS k, source_lsn AS lsn FROM ${s}.${table}
            WHERE ${key} = ANY($1::bigint[]) ORDER BY ${key}, source_lsn DESC, source_seq DESC`
  }
})

const timestampParts = (column: string) => [`${column}::date`, `${column}::time(3)`]

export const VERIFY_SPECS: ReadonlyArray<VerifySpec> = [
  dim(
    "dim_staff",
    "staff_id",
    ["first_name", "last_name", "department_name", "location", "email_address"],
    "s.staff_id",
    ["s.first_name", "s.last_name", "d.department_name", "d.location", "s.email_address"],
    `public.staff s LEFT JOIN public.department d ON d.department_id = s.department_id`
  ),
  dim(
    "dim_location",
    "location_id",
    ["address_line_1", "address_line_2", "district", "city", "postal_code", "country", "phone"],
    "address_id",
    ["address_line_1", "address_line_2", "district", "city", "postal_code", "country", "phone"],
    `public.address`
  ),
  dim(
    "dim_currency",
    "currency_id",
    ["currency_code", "currency_name"],
    "currency_id",
    // ISO 4217 name; an unknown code keeps the code.
    ["currency_code", "COALESCE($1::jsonb ->> upper(currency_code), currency_code)"],
    `public.currency`
  ),
  dim("dim_design", "design_id", ["design_name", "file_location", "file_name"], "design_id", ["design_name", "file_location", "file_name"], `public.design`),
  dim(
    "dim_counterparty",
    "counterparty_id",
    [
      "counterparty_legal_name",
      "counterparty_legal_address_line_1",
      "counterparty_legal_address_line_2",
      "counterparty_legal_district",
      "counterparty_legal_city",
      "counterparty_legal_postal_code",
      "counterparty_legal_country",
      "counterparty_legal_phone_number"
    ],
    "c.counterparty_id",
    ["c.counterparty_legal_name", "a.address_line_1", "a.address_line_2", "a.district", "a.city", "a.postal_code", "a.country", "a.phone"],
    `public.counterparty c LEFT JOIN public.address a ON a.address_id = c.legal_address_id`
  ),
  dim("dim_payment_type", "payment_type_id", ["payment_type_name"], "payment_type_id", ["payment_type_name::text"], `public.payment_type`),
  dim(
    "dim_transaction",
    "transaction_id",
    ["transaction_type", "sales_order_id", "purchase_order_id"],
    "transaction_id",
    ["transaction_type::text", "sales_order_id", "purchase_order_id"],
    `public."transaction"`
  ),
  fact(
    "fact_sales_order",
    "sales_order_id",
    [
      "created_date", "created_time", "last_updated_date", "last_updated_time", "sales_staff_id", "counterparty_id", "units_sold",
      "unit_price", "currency_id", "design_id", "agreed_payment_date", "agreed_delivery_date", "agreed_delivery_location_id"
    ],
    [
      ...timestampParts("created_at"), ...timestampParts("last_updated"), "staff_id", "counterparty_id", "units_sold", "unit_price",
      "currency_id", "design_id", "agreed_payment_date::date", "agreed_delivery_date::date", "agreed_delivery_location_id"
    ],
    `public.sales_order`
  ),
  fact(
    "fact_purchase_order",
    "purchase_order_id",
    [
      "created_date", "created_time", "last_updated_date", "last_updated_time", "staff_id", "counterparty_id", "item_code", "item_quantity",
      "item_unit_price", "currency_id", "agreed_delivery_date", "agreed_payment_date", "agreed_delivery_location_id"
    ],
    [
      ...timestampParts("created_at"), ...timestampParts("last_updated"), "staff_id", "counterparty_id", "item_code", "item_quantity",
      "item_unit_price", "currency_id", "agreed_delivery_date::date", "agreed_payment_date::date", "agreed_delivery_location_id"
    ],
    `public.purchase_order`
  ),
  fact(
    "fact_payment",
    "payment_id",
    [
      "created_date", "created_time", "last_updated_date", "last_updated_time", "transaction_id", "counterparty_id", "payment_amount",
      "currency_id", "payment_type_id", "paid", "payment_date"
    ],
    [
      ...timestampParts("created_at"), ...timestampParts("last_updated"), "transaction_id", "counterparty_id", "payment_amount",
      "currency_id", "payment_type_id", "paid", "payment_date::date"
    ],
    `public.payment`
  )
]

export const VERIFY_TABLES = VERIFY_SPECS.map((spec) => spec.table)
