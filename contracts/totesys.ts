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

/** Columns of each source table in physical order (totesys-schema.md §1). */
export const SOURCE_COLUMNS = {
  address: ["address_id", "address_line_1", "address_line_2", "district", "city", "postal_code", "country", "phone", "created_at", "last_updated"],
  counterparty: ["counterparty_id", "counterparty_legal_name", "legal_address_id", "commercial_contact", "delivery_contact", "created_at", "last_updated"],
  currency: ["currency_id", "currency_code", "created_at", "last_updated"],
  department: ["department_id", "department_name", "location", "manager", "created_at", "last_updated"],
  design: ["design_id", "created_at", "design_name", "file_location", "file_name", "last_updated"],
  payment_type: ["payment_type_id", "payment_type_name", "created_at", "last_updated"],
  staff: ["staff_id", "first_name", "last_name", "department_id", "email_address", "created_at", "last_updated"],
  purchase_order: [
    "purchase_order_id", "created_at", "last_updated", "staff_id", "counterparty_id", "item_code", "item_quantity",
    "item_unit_price", "currency_id", "agreed_delivery_date", "agreed_payment_date", "agreed_delivery_location_id"
  ],
  sales_order: [
    "sales_order_id", "created_at", "last_updated", "design_id", "staff_id", "counterparty_id", "units_sold", "unit_price",
    "currency_id", "agreed_delivery_date", "agreed_payment_date", "agreed_delivery_location_id"
  ],
  transaction: ["transaction_id", "transaction_type", "sales_order_id", "purchase_order_id", "created_at", "last_updated"],
  payment: [
    "payment_id", "created_at", "last_updated", "transaction_id", "counterparty_id", "payment_amount", "currency_id",
    "payment_type_id", "paid", "payment_date", "company_ac_number", "counterparty_ac_number"
  ]
} as const satisfies Record<TotesysTable, ReadonlyArray<string>>
