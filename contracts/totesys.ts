/** The source tables this pipeline captures by default, parents before children. */
export const TOTESYS_TABLES = [
  "address",
  "counterparty",
  "currency",
  "department",
  "design",
  "payment_type",
  "staff",
  "purchase_order",
  "sales_order",
  "transaction",
  "payment"
] as const

export type TotesysTable = (typeof TOTESYS_TABLES)[number]

/** Primary-key column of each source table. */
export const PRIMARY_KEYS: Record<TotesysTable, string> = {
  address: "address_id",
  counterparty: "counterparty_id",
  currency: "currency_id",
  department: "department_id",
  design: "design_id",
  payment_type: "payment_type_id",
  staff: "staff_id",
  purchase_order: "purchase_order_id",
  sales_order: "sales_order_id",
  transaction: "transaction_id",
  payment: "payment_id"
}

export const isTotesysTable = (name: string): name is TotesysTable =>
  (TOTESYS_TABLES as ReadonlyArray<string>).includes(name)
