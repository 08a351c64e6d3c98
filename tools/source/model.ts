/**
 * The shape of synthetic totesys rows, shared by the generator and the simulator: how one
 * row of each table is drawn, with the distributions measured on the real snapshots
 * (../shared/totesys-data): sales quantity 1,000–100,000 at 2.00–4.00, purchases 1–999 at
 * 1.00–999.99, uniform staff/counterparty/currency/location, delivery 0–7 and payment 0–6 days
 * after the order (rounded uniform, so the ends are half as likely), orders at a random minute
 * of 08:00–18:59 with the seconds ≈ 10 (the real job's cron jitter), amounts exact in cents.
 */
import { SOURCE_COLUMNS, type TotesysTable } from "../../contracts/totesys.ts"
import type { Random } from "./random.ts"
import { BUSINESS_OPEN_MS, DAY_MS, formatDate, formatTimestamp, MINUTE_MS } from "./sim-time.ts"
import {
  APOSTROPHE_LAST_NAMES,
  CITY_PREFIXES,
  CITY_SUFFIXES,
  COMPANY_SUFFIXES,
  COUNTRIES,
  CURRENCY_CODES,
  DEPARTMENTS,
  DESIGN_MATERIALS,
  DISTRICTS,
  EMAIL_DOMAIN,
  FILE_LOCATIONS,
  FILE_TAG_ALPHABET,
  FIRST_NAMES,
  ITEM_CODE_ALPHABET,
  LAST_NAMES,
  NAME_PREFIXES,
  NAME_SUFFIXES,
  PAYMENT_TYPE_NAMES,
  REAL_CITIES,
  STREET_SUFFIXES,
  UNICODE_CITIES,
  UNICODE_FIRST_NAMES,
  UNICODE_LAST_NAMES
} from "./vocab.ts"

// ---------------------------------------------------------------------------------------------
// Rows (in memory: timestamps as epoch ms, money as integer cents)

export interface AddressRow {
  address_id: number
  address_line_1: string
  address_line_2: string | null
  district: string | null
  city: string
  postal_code: string
  country: string
  phone: string
  created_at: number
  last_updated: number
}
export interface CounterpartyRow {
  counterparty_id: number
  counterparty_legal_name: string
  legal_address_id: number
  commercial_contact: string | null
  delivery_contact: string | null
  created_at: number
  last_updated: number
}
export interface CurrencyRow {
  currency_id: number
  currency_code: string
  created_at: number
  last_updated: number
}
export interface DepartmentRow {
  department_id: number
  department_name: string
  location: string | null
  manager: string | null
  created_at: number
  last_updated: number
}
export interface DesignRow {
  design_id: number
  created_at: number
  design_name: string
  file_location: string
  file_name: string
  last_updated: number
}
export interface PaymentTypeRow {
  payment_type_id: number
  payment_type_name: string
  created_at: number
  last_updated: number
}
export interface StaffRow {
  staff_id: number
  first_name: string
  last_name: string
  department_id: number
  email_address: string
  created_at: number
  last_updated: number
}
export interface PurchaseOrderRow {
  purchase_order_id: number
  created_at: number
  last_updated: number
  staff_id: number
  counterparty_id: number
  item_code: string
  item_quantity: number
  item_unit_price: number
  currency_id: number
  agreed_delivery_date: string
  agreed_payment_date: string
  agreed_delivery_location_id: number
}
export interface SalesOrderRow {
  sales_order_id: number
  created_at: number
  last_updated: number
  design_id: number
  staff_id: number
  counterparty_id: number
  units_sold: number
  unit_price: number
  currency_id: number
  agreed_delivery_date: string
  agreed_payment_date: string
  agreed_delivery_location_id: number
}
export interface TransactionRow {
  transaction_id: number
  transaction_type: "SALE" | "PURCHASE"
  sales_order_id: number | null
  purchase_order_id: number | null
  created_at: number
  last_updated: number
}
export interface PaymentRow {
  payment_id: number
  created_at: number
  last_updated: number
  transaction_id: number
  counterparty_id: number
  payment_amount: number
  currency_id: number
  payment_type_id: number
  paid: boolean
  payment_date: string
  company_ac_number: number
  counterparty_ac_number: number
}

export interface TotesysRows {
  address: Array<AddressRow>
  counterparty: Array<CounterpartyRow>
  currency: Array<CurrencyRow>
  department: Array<DepartmentRow>
  design: Array<DesignRow>
  payment_type: Array<PaymentTypeRow>
  staff: Array<StaffRow>
  purchase_order: Array<PurchaseOrderRow>
  sales_order: Array<SalesOrderRow>
  transaction: Array<TransactionRow>
  payment: Array<PaymentRow>
}

/** Physical column order of every table (as in schema.sql). */
export const COLUMNS = SOURCE_COLUMNS

const TIMESTAMP_COLUMNS = new Set(["created_at", "last_updated"])
const MONEY_COLUMNS = new Set(["unit_price", "item_unit_price", "payment_amount"])

/** Cents → 'units.cc' (numeric(10,2) text, exact). */
export const money = (cents: number): string => {
  const sign = cents < 0 ? "-" : ""
  const abs = Math.abs(cents)
  return `${sign}${Math.floor(abs / 100)}.${String(abs % 100).padStart(2, "0")}`
}

/** A row's values in physical column order, as SQL parameters (timestamps and money as text). */
export const sqlValues = (table: TotesysTable, row: object): Array<unknown> =>
  COLUMNS[table].map((column) => {
    const value = (row as Record<string, unknown>)[column]
    if (value === null || value === undefined) return null
    if (TIMESTAMP_COLUMNS.has(column)) return formatTimestamp(value as number)
    if (MONEY_COLUMNS.has(column)) return money(value as number)
    return value
  })

// ---------------------------------------------------------------------------------------------
// Names, addresses, companies

export interface NameOptions {
  /** Probability that a part of the name is drawn from the non-ASCII lists. */
  readonly unicode?: number
}

export const firstName = (rng: Random, options: NameOptions = {}): string =>
  rng.chance(options.unicode ?? 0.03) ? rng.pick(UNICODE_FIRST_NAMES) : rng.pick(FIRST_NAMES)

export const lastName = (rng: Random, options: NameOptions = {}): string =>
  rng.chance(options.unicode ?? 0.03) ? rng.pick(UNICODE_LAST_NAMES) : rng.pick(LAST_NAMES)

/** 'Micheal Toy', sometimes 'Mrs. Lucy Runolfsdottir' or 'Jake Welch DVM' (as faker's contacts). */
export const contactName = (rng: Random, options: NameOptions = {}): string => {
  const r = rng.next()
  const base = `${firstName(rng, options)} ${lastName(rng, options)}`
  if (r < 0.1) return `${rng.pick(NAME_PREFIXES)} ${base}`
  if (r < 0.2) return `${base} ${rng.pick(NAME_SUFFIXES)}`
  return base
}

const ASCII_FOLD: Record<string, string> = { ø: "o", Ø: "o", ł: "l", Ł: "l", æ: "ae", Æ: "ae", ß: "ss", đ: "d", Đ: "d" }

/** 'first.last@terrifictotes.com', lower case, accents folded, apostrophes kept (as the real `irving.o'keefe@`). */
export const emailAddress = (first: string, last: string, domain: string = EMAIL_DOMAIN): string => {
  const local = `${first}.${last}`
    .normalize("NFD")
    .replace(/[\u0300-\u036f]/g, "")
    .replace(/[øØłŁæÆßđĐ]/g, (c) => ASCII_FOLD[c] ?? c)
    .replace(/\s+/g, "")
    .toLowerCase()
  return `${local}@${domain}`
}

/** '6826 Herzog Via' */
export const streetLine = (rng: Random): string =>
  `${rng.digits(rng.int(3, 5))} ${rng.chance(0.5) ? lastName(rng, { unicode: 0 }) : firstName(rng, { unicode: 0 })} ${rng.pick(STREET_SUFFIXES)}`

/** 'Tremaine Circles' */
export const secondLine = (rng: Random): string => `${firstName(rng, { unicode: 0 })} ${rng.pick(STREET_SUFFIXES)}`

export const cityName = (rng: Random): string => {
  const r = rng.next()
  if (r < 0.3) return rng.pick(REAL_CITIES)
  const stem = rng.chance(0.5) ? lastName(rng, { unicode: 0 }) : firstName(rng, { unicode: 0 })
  if (r < 0.6) return `${rng.pick(CITY_PREFIXES)} ${stem}`
  return `${stem}${rng.pick(CITY_SUFFIXES)}`
}

export const postalCode = (rng: Random): string => (rng.chance(0.5) ? rng.digits(5) : `${rng.digits(5)}-${rng.digits(4)}`)

/** '1803 637401' */
export const phoneNumber = (rng: Random): string => `${rng.digits(4)} ${rng.digits(6)}`

export type CompanyPattern = "comma" | "dash" | "suffix"

/** 'Leannon, Predovic and Morar' | 'Grant - Lakin' | 'Kohler Inc' */
export const companyName = (rng: Random, pattern: CompanyPattern, options: NameOptions = {}): string => {
  switch (pattern) {
    case "comma":
      return `${lastName(rng, options)}, ${lastName(rng, options)} and ${lastName(rng, options)}`
    case "dash":
      return `${lastName(rng, options)} - ${lastName(rng, options)}`
    case "suffix":
      return `${lastName(rng, options)} ${rng.pick(COMPANY_SUFFIXES)}`
  }
}

export const itemCode = (rng: Random): string => rng.chars(ITEM_CODE_ALPHABET, 7)

export const accountNumber = (rng: Random): number => rng.int(10_000_000, 99_999_999)

// ---------------------------------------------------------------------------------------------
// The static dimensions (address 30, counterparty 20, currency 3, department 8, payment_type 4, staff 20)

export interface StaticDims {
  address: Array<AddressRow>
  counterparty: Array<CounterpartyRow>
  currency: Array<CurrencyRow>
  department: Array<DepartmentRow>
  payment_type: Array<PaymentTypeRow>
  staff: Array<StaffRow>
}

export const STATIC_COUNTS = { address: 30, counterparty: 20, currency: 3, department: 8, payment_type: 4, staff: 20 } as const
/** As in the real data: `address_line_2` NULL in 20 of 30 rows, `district` in 14 of 30. */
export const ADDRESS_LINE_2_NULLS = 20
export const DISTRICT_NULLS = 14

/**
 * The static dimensions, drawn from `rng`: quirks always present (department 4 in 'Leds', one
 * staff member with an apostrophe in the surname, 9 of 20 company names with commas, some
 * non-ASCII letters in a staff name, a company name, a contact and a city). `at` is the
 * creation instant of address/currency/department/payment_type; counterparty and staff follow
 * 1.6 s later, as in the real load.
 */
export const drawStaticDims = (rng: Random, at: number): StaticDims => {
  const later = at + 1_601
  const line2Null = new Set(rng.shuffle([...Array(STATIC_COUNTS.address).keys()]).slice(0, ADDRESS_LINE_2_NULLS))
  const districtNull = new Set(rng.shuffle([...Array(STATIC_COUNTS.address).keys()]).slice(0, DISTRICT_NULLS))
  const unicodeCity = rng.int(0, STATIC_COUNTS.address - 1)
  const address: Array<AddressRow> = []
  for (let i = 0; i < STATIC_COUNTS.address; i++) {
    address.push({
      address_id: i + 1,
      address_line_1: streetLine(rng),
      address_line_2: line2Null.has(i) ? null : secondLine(rng),
      district: districtNull.has(i) ? null : rng.pick(DISTRICTS),
      city: i === unicodeCity ? rng.pick(UNICODE_CITIES) : cityName(rng),
      postal_code: postalCode(rng),
      country: rng.pick(COUNTRIES),
      phone: phoneNumber(rng),
      created_at: at,
      last_updated: at
    })
  }
  // Real proportions of company name styles: 9 with commas, 4 with a dash, 7 with a suffix.
  const patterns = rng.shuffle<CompanyPattern>([...Array(9).fill("comma"), ...Array(4).fill("dash"), ...Array(7).fill("suffix")])
  const unicodeCompany = patterns.indexOf("comma")
  const unicodeContact = rng.int(0, STATIC_COUNTS.counterparty - 1)
  const counterparty: Array<CounterpartyRow> = patterns.map((pattern, i) => ({
    counterparty_id: i + 1,
    counterparty_legal_name: i === unicodeCompany ? `${rng.pick(UNICODE_LAST_NAMES)}, ${companyName(rng, "dash", { unicode: 0 }).replace(" - ", " and ")}` : companyName(rng, pattern, { unicode: 0 }),
    legal_address_id: rng.int(1, STATIC_COUNTS.address),
    commercial_contact: contactName(rng, { unicode: i === unicodeContact ? 1 : 0.02 }),
    delivery_contact: contactName(rng, { unicode: 0.02 }),
    created_at: later,
    last_updated: later
  }))
  const currency: Array<CurrencyRow> = CURRENCY_CODES.map((code, i) => ({ currency_id: i + 1, currency_code: code, created_at: at, last_updated: at }))
  const department: Array<DepartmentRow> = DEPARTMENTS.map((d, i) => ({
    department_id: i + 1,
    department_name: d.name,
    location: d.location,
    manager: `${firstName(rng, { unicode: 0 })} ${lastName(rng, { unicode: 0 })}`,
    created_at: at,
    last_updated: at
  }))
  const payment_type: Array<PaymentTypeRow> = PAYMENT_TYPE_NAMES.map((name, i) => ({
    payment_type_id: i + 1,
    payment_type_name: name,
    created_at: at,
    last_updated: at
  }))
  const positions = rng.shuffle([...Array(STATIC_COUNTS.staff).keys()])
  const apostrophe = positions[0]!
  const unicodeStaff = positions[1]!
  const staff: Array<StaffRow> = []
  for (let i = 0; i < STATIC_COUNTS.staff; i++) {
    const first = i === unicodeStaff ? rng.pick(UNICODE_FIRST_NAMES) : firstName(rng, { unicode: 0 })
    const last = i === apostrophe ? rng.pick(APOSTROPHE_LAST_NAMES) : i === unicodeStaff ? rng.pick(UNICODE_LAST_NAMES) : lastName(rng, { unicode: 0 })
    staff.push({
      staff_id: i + 1,
      first_name: first,
      last_name: last,
      department_id: rng.int(1, DEPARTMENTS.length),
      email_address: emailAddress(first, last),
      created_at: later,
      last_updated: later
    })
  }
  return { address, counterparty, currency, department, payment_type, staff }
}

// ---------------------------------------------------------------------------------------------
// Designs and orders

/** 'bronze-20221024-4dds.json': the material, a date 3–730 days before creation, 4 random characters. */
export const drawDesign = (rng: Random, at: number): Omit<DesignRow, "design_id"> => {
  const material = rng.pick(DESIGN_MATERIALS)
  const fileDate = formatDate(at - rng.int(3, 730) * DAY_MS).replace(/-/g, "")
  return {
    created_at: at,
    design_name: material,
    file_location: rng.pick(FILE_LOCATIONS),
    file_name: `${material.toLowerCase()}-${fileDate}-${rng.chars(FILE_TAG_ALPHABET, 4)}.json`,
    last_updated: at
  }
}

/** Ids the order draws refer to. */
export interface References {
  readonly addressIds: ReadonlyArray<number>
  readonly counterpartyIds: ReadonlyArray<number>
  readonly currencyIds: ReadonlyArray<number>
  readonly staffIds: ReadonlyArray<number>
  readonly designIds: ReadonlyArray<number>
}

/** Days from the order to the agreed delivery: round(U(0,7)). */
export const deliveryOffsetDays = (rng: Random): number => Math.round(rng.next() * 7)
/** Days from the order to the agreed payment: round(U(0,6)). */
export const paymentOffsetDays = (rng: Random): number => Math.round(rng.next() * 6)

export const dateAfter = (at: number, days: number): string => formatDate(at + days * DAY_MS)

export const drawSalesOrder = (rng: Random, refs: References, at: number): Omit<SalesOrderRow, "sales_order_id"> => ({
  created_at: at,
  last_updated: at,
  design_id: rng.pick(refs.designIds),
  staff_id: rng.pick(refs.staffIds),
  counterparty_id: rng.pick(refs.counterpartyIds),
  units_sold: rng.int(1_000, 100_000),
  unit_price: rng.int(200, 400),
  currency_id: rng.pick(refs.currencyIds),
  agreed_delivery_date: dateAfter(at, deliveryOffsetDays(rng)),
  agreed_payment_date: dateAfter(at, paymentOffsetDays(rng)),
  agreed_delivery_location_id: rng.pick(refs.addressIds)
})

export const drawPurchaseOrder = (rng: Random, refs: References, at: number): Omit<PurchaseOrderRow, "purchase_order_id"> => ({
  created_at: at,
  last_updated: at,
  staff_id: rng.pick(refs.staffIds),
  counterparty_id: rng.pick(refs.counterpartyIds),
  item_code: itemCode(rng),
  item_quantity: rng.int(1, 999),
  item_unit_price: rng.int(100, 99_999),
  currency_id: rng.pick(refs.currencyIds),
  agreed_delivery_date: dateAfter(at, deliveryOffsetDays(rng)),
  agreed_payment_date: dateAfter(at, paymentOffsetDays(rng)),
  agreed_delivery_location_id: rng.pick(refs.addressIds)
})

export const SALES_RECEIPT = 1
export const PURCHASE_PAYMENT = 3

/** The payment an order makes in the same instant (amount = quantity × price, exact in cents). */
export const paymentFor = (
  rng: Random,
  order: Omit<SalesOrderRow, "sales_order_id"> | Omit<PurchaseOrderRow, "purchase_order_id">
): Omit<PaymentRow, "payment_id" | "transaction_id"> => {
  const sale = "units_sold" in order
  return {
    created_at: order.created_at,
    last_updated: order.created_at,
    counterparty_id: order.counterparty_id,
    payment_amount: sale ? order.units_sold * order.unit_price : order.item_quantity * order.item_unit_price,
    currency_id: order.currency_id,
    payment_type_id: sale ? SALES_RECEIPT : PURCHASE_PAYMENT,
    paid: false,
    payment_date: order.agreed_payment_date,
    company_ac_number: accountNumber(rng),
    counterparty_ac_number: accountNumber(rng)
  }
}

/**
 * Milliseconds into the minute at which the real application inserts: about 10 s (cron with
 * ±0.3 s jitter), now and then a few seconds late.
 */
export const insertSecondOffset = (rng: Random): number => {
  const base = Math.round(10_000 + rng.normal() * 180)
  const clipped = Math.min(10_550, Math.max(9_550, base))
  return rng.chance(0.02) ? clipped + rng.int(1_000, 3_500) : clipped
}

/** A random insert instant in the business hours of `day` (start-of-day ms). */
export const businessInstant = (rng: Random, day: number): number =>
  day + BUSINESS_OPEN_MS + rng.int(0, 11 * 60 - 1) * MINUTE_MS + insertSecondOffset(rng)

/** The job's instant on `day`: 07:55:11.6–11.95. */
export const paymentJobInstant = (rng: Random, day: number): number => day + 7 * 3_600_000 + 55 * 60_000 + 11_600 + rng.int(0, 350)
