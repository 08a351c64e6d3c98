/**
 * The star schema, defined once (totesys-schema.md §2, the warehouse contract): every dimension and
 * fact, its natural key, the diagram's columns in order with their types, what each fact column
 * references and which source table feeds it. Projection, apply, verify, the migrations test and
 * the tests' independent derivation read their table and column lists from here; the derivation
 * rules (which source value becomes which column) stay with each of them.
 *
 *   STAR_SCHEMA.dim_staff.columns          { staff_id: "integer", first_name: "varchar", … }
 *   diagramColumns("fact_payment")         ["payment_id", "created_date", …]   (record id left out)
 *   FACT_TABLES / DIM_TABLES               the table names, in contract order
 */
import type { TotesysTable } from "./totesys.ts"

/** PostgreSQL types as information_schema spells them (with precision where the contract fixes it). */
export type WarehouseType = "integer" | "varchar" | "numeric" | "numeric(10,2)" | "date" | "time(3)" | "boolean"

interface DimensionSpec {
  readonly kind: "dimension"
  readonly key: string
  /** The diagram's columns in order, the key first. */
  readonly columns: Readonly<Record<string, WarehouseType>>
}

interface FactSpec {
  readonly kind: "fact"
  /** The serial id of one history row. */
  readonly recordId: string
  /** The source row's key: a fact holds one row per committed change of it. */
  readonly key: string
  readonly source: TotesysTable
  /** The diagram's columns in order, the record id first, then the key. */
  readonly columns: Readonly<Record<string, WarehouseType>>
  /** Columns that name a dimension row (dates reference dim_date). */
  readonly references: Readonly<Record<string, `dim_${string}`>>
}

export const STAR_SCHEMA = {
  dim_date: {
    kind: "dimension",
    key: "date_id",
    columns: {
      date_id: "date", year: "integer", month: "integer", day: "integer", day_of_week: "integer", day_name: "varchar", month_name: "varchar",
      quarter: "integer"
    }
  },
  dim_staff: {
    kind: "dimension",
    key: "staff_id",
    columns: { staff_id: "integer", first_name: "varchar", last_name: "varchar", department_name: "varchar", location: "varchar", email_address: "varchar" }
  },
  dim_location: {
    kind: "dimension",
    key: "location_id",
    columns: {
      location_id: "integer", address_line_1: "varchar", address_line_2: "varchar", district: "varchar", city: "varchar", postal_code: "varchar",
      country: "varchar", phone: "varchar"
    }
  },
  dim_currency: { kind: "dimension", key: "currency_id", columns: { currency_id: "integer", currency_code: "varchar", currency_name: "varchar" } },
  dim_design: {
    kind: "dimension",
    key: "design_id",
    columns: { design_id: "integer", design_name: "varchar", file_location: "varchar", file_name: "varchar" }
  },
  dim_counterparty: {
    kind: "dimension",
    key: "counterparty_id",
    columns: {
      counterparty_id: "integer", counterparty_legal_name: "varchar", counterparty_legal_address_line_1: "varchar",
      counterparty_legal_address_line_2: "varchar", counterparty_legal_district: "varchar", counterparty_legal_city: "varchar",
      counterparty_legal_postal_code: "varchar", counterparty_legal_country: "varchar", counterparty_legal_phone_number: "varchar"
    }
  },
  dim_payment_type: { kind: "dimension", key: "payment_type_id", columns: { payment_type_id: "integer", payment_type_name: "varchar" } },
  dim_transaction: {
    kind: "dimension",
    key: "transaction_id",
    columns: { transaction_id: "integer", transaction_type: "varchar", sales_order_id: "integer", purchase_order_id: "integer" }
  },
  fact_sales_order: {
    kind: "fact",
    recordId: "sales_record_id",
    key: "sales_order_id",
    source: "sales_order",
    columns: {
      sales_record_id: "integer", sales_order_id: "integer", created_date: "date", created_time: "time(3)", last_updated_date: "date",
      last_updated_time: "time(3)", sales_staff_id: "integer", counterparty_id: "integer", units_sold: "integer", unit_price: "numeric(10,2)",
      currency_id: "integer", design_id: "integer", agreed_payment_date: "date", agreed_delivery_date: "date", agreed_delivery_location_id: "integer"
    },
    references: {
      created_date: "dim_date", last_updated_date: "dim_date", sales_staff_id: "dim_staff", counterparty_id: "dim_counterparty",
      currency_id: "dim_currency", design_id: "dim_design", agreed_payment_date: "dim_date", agreed_delivery_date: "dim_date",
      agreed_delivery_location_id: "dim_location"
    }
  },
  fact_purchase_order: {
    kind: "fact",
    recordId: "purchase_record_id",
    key: "purchase_order_id",
    source: "purchase_order",
    columns: {
      purchase_record_id: "integer", purchase_order_id: "integer", created_date: "date", created_time: "time(3)", last_updated_date: "date",
      last_updated_time: "time(3)", staff_id: "integer", counterparty_id: "integer", item_code: "varchar", item_quantity: "integer",
      item_unit_price: "numeric", currency_id: "integer", agreed_delivery_date: "date", agreed_payment_date: "date", agreed_delivery_location_id: "integer"
    },
    references: {
      created_date: "dim_date", last_updated_date: "dim_date", staff_id: "dim_staff", counterparty_id: "dim_counterparty", currency_id: "dim_currency",
      agreed_delivery_date: "dim_date", agreed_payment_date: "dim_date", agreed_delivery_location_id: "dim_location"
    }
  },
  fact_payment: {
    kind: "fact",
    recordId: "payment_record_id",
    key: "payment_id",
    source: "payment",
    columns: {
      payment_record_id: "integer", payment_id: "integer", created_date: "date", created_time: "time(3)", last_updated_date: "date",
      last_updated_time: "time(3)", transaction_id: "integer", counterparty_id: "integer", payment_amount: "numeric", currency_id: "integer",
      payment_type_id: "integer", paid: "boolean", payment_date: "date"
    },
    references: {
      created_date: "dim_date", last_updated_date: "dim_date", transaction_id: "dim_transaction", counterparty_id: "dim_counterparty",
      currency_id: "dim_currency", payment_type_id: "dim_payment_type", payment_date: "dim_date"
    }
  }
} as const satisfies Record<string, DimensionSpec | FactSpec>

export type StarTable = keyof typeof STAR_SCHEMA
export type FactName = { [T in StarTable]: (typeof STAR_SCHEMA)[T]["kind"] extends "fact" ? T : never }[StarTable]
/** The dimensions built from source rows (dim_date is generated, not derived from a source table). */
export type DimensionName = Exclude<{ [T in StarTable]: (typeof STAR_SCHEMA)[T]["kind"] extends "dimension" ? T : never }[StarTable], "dim_date">

/** A table's diagram columns (record id included for facts). */
export type StarColumn<T extends StarTable> = keyof (typeof STAR_SCHEMA)[T]["columns"] & string

const TABLES = Object.keys(STAR_SCHEMA) as ReadonlyArray<StarTable>

export const DIMENSION_NAMES = TABLES.filter((t): t is DimensionName => STAR_SCHEMA[t].kind === "dimension" && t !== "dim_date")
export const FACT_NAMES = TABLES.filter((t): t is FactName => STAR_SCHEMA[t].kind === "fact")

/** The diagram's columns of a table in order, a fact's record id left out (it is the warehouse's own). */
export const diagramColumns = (table: StarTable): ReadonlyArray<string> => {
  const spec: DimensionSpec | FactSpec = STAR_SCHEMA[table]
  const names = Object.keys(spec.columns)
  return spec.kind === "fact" ? names.filter((name) => name !== spec.recordId) : names
}

/** A dimension's columns after its key, in order: what its derivation computes. */
export const dimensionAttributes = (table: DimensionName): ReadonlyArray<string> => diagramColumns(table).filter((c) => c !== STAR_SCHEMA[table].key)

/** A fact's columns after its record id and key, in order: what one change of the source row becomes. */
export const factAttributes = (table: FactName): ReadonlyArray<string> => diagramColumns(table).filter((c) => c !== STAR_SCHEMA[table].key)
