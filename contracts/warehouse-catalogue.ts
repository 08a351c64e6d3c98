/**
 * What the warehouse needs from each source table: the columns the star schema is built from and
 * the kind of value each must hold (totesys-schema.md §2). The consumer checks every change
 * against it, so a schema change that breaks a column the warehouse uses pauses that table
 * instead of writing NULLs or failing row by row; changes to other columns flow on.
 */
import type { TotesysTable } from "./totesys.ts"

/**
 * - `int`: a 32-bit integer (ids, quantities); a numeric value with only zero decimals fits
 * - `money`: numeric(10,2): at most 8 integer digits and 2 decimals (trailing zeros do not count)
 * - `text`: any text (numbers and booleans fit: the warehouse stores their text)
 * - `timestamp`: a timestamp without zone, ISO text (`2024-02-23T11:11:10.072`)
 * - `date`: a date as text `YYYY-MM-DD` (the source keeps some dates as text)
 * - `bool`: true or false
 */
export type ColumnKind = "int" | "money" | "text" | "timestamp" | "date" | "bool"

export const USED_SOURCE_COLUMNS = {
  address: {
    address_id: "int", address_line_1: "text", address_line_2: "text", district: "text", city: "text", postal_code: "text", country: "text", phone: "text"
  },
  counterparty: { counterparty_id: "int", counterparty_legal_name: "text", legal_address_id: "int" },
  currency: { currency_id: "int", currency_code: "text" },
  department: { department_id: "int", department_name: "text", location: "text" },
  design: { design_id: "int", design_name: "text", file_location: "text", file_name: "text" },
  payment_type: { payment_type_id: "int", payment_type_name: "text" },
  staff: { staff_id: "int", first_name: "text", last_name: "text", department_id: "int", email_address: "text" },
  transaction: { transaction_id: "int", transaction_type: "text", sales_order_id: "int", purchase_order_id: "int" },
  sales_order: {
    sales_order_id: "int", created_at: "timestamp", last_updated: "timestamp", design_id: "int", staff_id: "int", counterparty_id: "int",
    units_sold: "int", unit_price: "money", currency_id: "int", agreed_delivery_date: "date", agreed_payment_date: "date", agreed_delivery_location_id: "int"
  },
  purchase_order: {
    purchase_order_id: "int", created_at: "timestamp", last_updated: "timestamp", staff_id: "int", counterparty_id: "int", item_code: "text",
    item_quantity: "int", item_unit_price: "money", currency_id: "int", agreed_delivery_date: "date", agreed_payment_date: "date", agreed_delivery_location_id: "int"
  },
  payment: {
    payment_id: "int", created_at: "timestamp", last_updated: "timestamp", transaction_id: "int", counterparty_id: "int", payment_amount: "money",
    currency_id: "int", payment_type_id: "int", paid: "bool", payment_date: "date"
  }
} as const satisfies Record<TotesysTable, Readonly<Record<string, ColumnKind>>>

export type UsedColumn<T extends TotesysTable> = keyof (typeof USED_SOURCE_COLUMNS)[T] & string

/** The used columns of a table (empty for a table the warehouse does not know). */
export const usedColumns = (table: string): Readonly<Record<string, ColumnKind>> =>
  (USED_SOURCE_COLUMNS as Record<string, Readonly<Record<string, ColumnKind>>>)[table] ?? {}
