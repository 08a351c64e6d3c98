/**
 * The synthetic generator against a real PostgreSQL with the totesys schema and every constraint
 * on: reproducible by seed (content checksum), valid, and shaped like the real database.
 */
import type pg from "pg"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { PRIMARY_KEYS, TOTESYS_TABLES } from "../../contracts/totesys.ts"
import { checksumTotesys } from "../../tools/source/checksum.ts"
import { generateTotesys, type GenerateReport } from "../../tools/source/generate.ts"
import { initSourceSchema, loadCsvSnapshot } from "../../tools/source/totesys-db.ts"
import { connect, freshDatabase, SNAPSHOT_FEB } from "../support/stack.ts"

const clients: Array<pg.Client> = []
const open = async (prefix: string) => {
  const client = await connect(await freshDatabase(prefix))
  clients.push(client)
  return client
}
afterAll(async () => {
  await Promise.all(clients.map((c) => c.end()))
})

const one = async (client: pg.ClientBase, sql: string, params: Array<unknown> = []) => (await client.query(sql, params)).rows[0]

const profile = (client: pg.ClientBase) =>
  one(
    client,
    `SELECT min(units_sold) >= 1000 AND max(units_sold) <= 100000 AS units,
            min(unit_price) >= 2 AND max(unit_price) <= 4 AS price,
            (SELECT min(item_quantity) >= 1 AND max(item_quantity) <= 999 AND min(item_unit_price) >= 1 AND max(item_unit_price) < 1000 FROM purchase_order) AS purchase,
            (SELECT bool_and(item_code ~ '^[A-Z0-9]{7}$') FROM purchase_order) AS codes,
            (SELECT bool_and(file_name ~ '^[a-z]+-[0-9]{8}-[a-z0-9]{4}\\.json$') FROM design) AS files,
            (SELECT bool_and(company_ac_number BETWEEN 10000000 AND 99999999 AND counterparty_ac_number BETWEEN 10000000 AND 99999999) FROM payment) AS accounts,
            (SELECT bool_and(email_address LIKE '%@terrifictotes.com') FROM staff) AS emails,
            (SELECT bool_and(phone ~ '^\\d{4} \\d{6}$') FROM address) AS phones
       FROM sales_order`
  )

describe("generateTotesys", () => {
  let db: pg.Client
  let report: GenerateReport

  beforeAll(async () => {
    db = await open("gen")
    report = await generateTotesys(db, { seed: "alpha" })
  })

  it("is reproducible: same seed → same checksum, another seed → another", async () => {
    const same = await open("gen_same")
    const other = await open("gen_other")
    await generateTotesys(same, { seed: "alpha" })
    await generateTotesys(other, { seed: "beta" })
    const [a, b, c] = await Promise.all([checksumTotesys(db), checksumTotesys(same), checksumTotesys(other)])
    expect(b).toEqual(a)
    expect(c.checksum).not.toBe(a.checksum)
    // Seed-independent tables are identical, the others differ.
    expect(c.tables.currency).toEqual(a.tables.currency)
    expect(c.tables.payment_type).toEqual(a.tables.payment_type)
    for (const t of ["address", "staff", "sales_order", "payment"] as const) expect(c.tables[t].md5).not.toBe(a.tables[t].md5)
    // The report matches what is there.
    for (const t of TOTESYS_TABLES) expect(a.tables[t].rows).toBe(report.rows[t])
  })

  it("is fast and sized for 60 days by default", () => {
    expect(report.start).toBe("2024-09-16 15:00:00.000")
    expect(report.until).toBe("2024-11-15 15:00:00.000")
    expect(report.rows.sales_order).toBeGreaterThan(800)
    expect(report.rows.purchase_order).toBeGreaterThan(300)
    expect(report.ms).toBeLessThan(10_000)
  })

  it("loaded with every constraint on: keys, FKs and uniques exist and are validated", async () => {
    const { rows } = await db.query(
      `SELECT contype, count(*)::int AS n, bool_and(convalidated) AS valid FROM pg_constraint
        WHERE conrelid IN (SELECT oid FROM pg_class WHERE relnamespace = 'public'::regnamespace) GROUP BY 1 ORDER BY 1`
    )
    const byType = Object.fromEntries(rows.map((r) => [r.contype, r]))
    expect(byType.p).toMatchObject({ n: 11, valid: true })
    expect(byType.f).toMatchObject({ n: 17, valid: true })
    expect(byType.u).toMatchObject({ n: 3, valid: true })
    // No orphan under any FK (the database enforces it; checked independently here).
    const { rows: fks } = await db.query(
      `SELECT c.conrelid::regclass::text AS child, a.attname AS col, c.confrelid::regclass::text AS parent, pa.attname AS pcol
         FROM pg_constraint c
         JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = c.conkey[1]
         JOIN pg_attribute pa ON pa.attrelid = c.confrelid AND pa.attnum = c.confkey[1]
        WHERE c.contype = 'f'`
    )
    for (const fk of fks) {
      const orphans = await one(db, `SELECT count(*)::int AS n FROM ${fk.child} c WHERE c."${fk.col}" IS NOT NULL AND NOT EXISTS (SELECT 1 FROM ${fk.parent} p WHERE p."${fk.pcol}" = c."${fk.col}")`)
      expect(orphans.n, `${fk.child}.${fk.col}`).toBe(0)
    }
  })

  it("resets the sequences: the application's next insert gets a fresh id", async () => {
    for (const table of TOTESYS_TABLES) {
      const key = PRIMARY_KEYS[table]
      const row = await one(db, `SELECT (SELECT max("${key}") FROM "${table}") AS max, (SELECT last_value FROM ${`public.${table}_${key}_seq`}) AS last`)
      expect(Number(row.last), table).toBe(Number(row.max))
    }
  })

  it("inserts orders only Monday–Friday 08:00–18:59 UTC, with millisecond timestamps and text dates", async () => {
    for (const table of ["sales_order", "purchase_order", "transaction", "payment"]) {
      const row = await one(
        db,
        `SELECT count(*) FILTER (WHERE extract(isodow FROM created_at) > 5 OR extract(hour FROM created_at) NOT BETWEEN 8 AND 18)::int AS outside,
                count(*) FILTER (WHERE date_trunc('milliseconds', created_at) <> created_at)::int AS sub_ms,
                count(DISTINCT extract(milliseconds FROM created_at)::int % 1000)::int AS ms_values
           FROM "${table}"`
      )
      expect(row.outside, table).toBe(0)
      expect(row.sub_ms, table).toBe(0)
      expect(row.ms_values, table).toBeGreaterThan(100) // not whole seconds
    }
    const dates = await one(
      db,
      `SELECT count(*) FILTER (WHERE agreed_delivery_date !~ '^\\d{4}-\\d{2}-\\d{2}$' OR agreed_payment_date !~ '^\\d{4}-\\d{2}-\\d{2}$')::int AS bad,
              min(agreed_payment_date::date - created_at::date) AS min_pay, max(agreed_payment_date::date - created_at::date) AS max_pay
         FROM (SELECT agreed_delivery_date, agreed_payment_date, created_at FROM sales_order UNION ALL SELECT agreed_delivery_date, agreed_payment_date, created_at FROM purchase_order) o`
    )
    expect(dates).toEqual({ bad: 0, min_pay: 0, max_pay: 6 })
    const perDay = await one(
      db,
      `SELECT avg(n)::float AS mean, min(n)::int AS min, max(n)::int AS max FROM (SELECT created_at::date, count(*) AS n FROM sales_order GROUP BY 1) d`
    )
    expect(perDay.mean).toBeGreaterThan(20)
    expect(perDay.mean).toBeLessThan(26)
    const purchasesPerDay = await one(db, `SELECT avg(n)::float AS mean FROM (SELECT created_at::date, count(*) AS n FROM purchase_order GROUP BY 1) d`)
    expect(purchasesPerDay.mean).toBeGreaterThan(7.5)
    expect(purchasesPerDay.mean).toBeLessThan(10.5)
  })

  it("gives each order exactly one transaction and one payment that match it", async () => {
    const row = await one(
      db,
      `SELECT
         (SELECT count(*) FROM sales_order s WHERE (SELECT count(*) FROM "transaction" t WHERE t.sales_order_id = s.sales_order_id) <> 1)::int AS sales_without_one,
         (SELECT count(*) FROM purchase_order o WHERE (SELECT count(*) FROM "transaction" t WHERE t.purchase_order_id = o.purchase_order_id) <> 1)::int AS purchases_without_one,
         (SELECT count(*) FROM "transaction" t WHERE NOT EXISTS (SELECT 1 FROM payment p WHERE p.transaction_id = t.transaction_id))::int AS transactions_without_payment,
         (SELECT count(*) FROM "transaction" t WHERE (t.transaction_type = 'SALE') <> (t.sales_order_id IS NOT NULL AND t.purchase_order_id IS NULL))::int AS wrong_type,
         (SELECT count(*) FROM payment p
            JOIN "transaction" t USING (transaction_id)
            LEFT JOIN sales_order s USING (sales_order_id)
            LEFT JOIN purchase_order o USING (purchase_order_id)
           WHERE p.payment_amount <> coalesce(s.units_sold * s.unit_price, o.item_quantity * o.item_unit_price)
              OR p.currency_id <> coalesce(s.currency_id, o.currency_id)
              OR p.counterparty_id <> coalesce(s.counterparty_id, o.counterparty_id)
              OR p.payment_date <> coalesce(s.agreed_payment_date, o.agreed_payment_date)
              OR p.payment_type_id <> CASE t.transaction_type WHEN 'SALE' THEN 1 ELSE 3 END
              OR p.created_at <> t.created_at OR t.created_at <> coalesce(s.created_at, o.created_at))::int AS mismatched`
    )
    expect(row).toEqual({ sales_without_one: 0, purchases_without_one: 0, transactions_without_payment: 0, wrong_type: 0, mismatched: 0 })
  })

  it("marks payments due in the past paid by the 07:55 job, and only those", async () => {
    const row = await one(
      db,
      `SELECT
         count(*) FILTER (WHERE paid)::int AS paid,
         count(*)::int AS total,
         count(*) FILTER (WHERE paid AND (last_updated::date <> payment_date::date OR last_updated::time NOT BETWEEN '07:55:11' AND '07:55:12'))::int AS paid_at_wrong_time,
         count(*) FILTER (WHERE NOT paid AND last_updated <> created_at)::int AS unpaid_touched,
         count(*) FILTER (WHERE NOT paid AND extract(isodow FROM payment_date::date) <= 5
                            AND payment_date::date + time '07:55:12' < timestamp '2024-11-15 15:00'
                            AND created_at < payment_date::date + time '07:55')::int AS missed,
         count(*) FILTER (WHERE paid AND extract(isodow FROM payment_date::date) > 5)::int AS weekend_paid,
         count(*) FILTER (WHERE last_updated < created_at)::int AS updated_before_created
       FROM payment`
    )
    expect(row).toMatchObject({ paid_at_wrong_time: 0, unpaid_touched: 0, missed: 0, weekend_paid: 0, updated_before_created: 0 })
    expect(row.paid / row.total).toBeGreaterThan(0.45)
    expect(row.paid / row.total).toBeLessThan(0.7)
  })

  it("has the real NULL rates and quirks", async () => {
    const row = await one(
      db,
      `SELECT
         (SELECT count(*) FROM address WHERE address_line_2 IS NULL)::int AS line2_null,
         (SELECT count(*) FROM address WHERE district IS NULL)::int AS district_null,
         (SELECT location FROM department WHERE department_id = 4) AS dept4,
         (SELECT count(*) FROM staff WHERE last_name LIKE '%''%' AND email_address LIKE '%''%')::int AS apostrophes,
         (SELECT count(*) FROM counterparty WHERE counterparty_legal_name LIKE '%,%')::int AS commas,
         (SELECT count(*) FROM (SELECT first_name || last_name AS t FROM staff UNION ALL SELECT counterparty_legal_name || commercial_contact || delivery_contact FROM counterparty UNION ALL SELECT city FROM address) x WHERE t ~ '[^\\x01-\\x7f]')::int AS unicode,
         (SELECT string_agg(currency_code, ',' ORDER BY currency_id) FROM currency) AS currencies,
         (SELECT string_agg(payment_type_name::text, ',' ORDER BY payment_type_id) FROM payment_type) AS payment_types`
    )
    expect(row).toMatchObject({
      line2_null: 20,
      district_null: 14,
      dept4: "Leds",
      commas: 9,
      currencies: "GBP,USD,EUR",
      payment_types: "SALES_RECEIPT,SALES_REFUND,PURCHASE_PAYMENT,PURCHASE_REFUND"
    })
    expect(row.apostrophes).toBeGreaterThanOrEqual(1)
    expect(row.unicode).toBeGreaterThanOrEqual(3)
    // Designs grow slowly.
    const designs = await one(db, "SELECT count(*)::int AS n FROM design")
    expect(designs.n).toBeGreaterThan(10 + 25)
    expect(designs.n).toBeLessThan(10 + 50)
  })

  it("has the shape of the real database: same columns, comparable value ranges", async () => {
    const real = await open("gen_real")
    await initSourceSchema(real)
    await loadCsvSnapshot(real, SNAPSHOT_FEB)
    expect(await profile(db)).toEqual(await profile(real))
    expect(await profile(db)).toEqual({ units: true, price: true, purchase: true, codes: true, files: true, accounts: true, emails: true, phones: true })
  })

  it("refuses a database that already holds rows unless told to replace it", async () => {
    const target = await open("gen_replace")
    await generateTotesys(target, { seed: "one", days: 10 })
    await expect(generateTotesys(target, { seed: "two", days: 10 })).rejects.toThrow(/already holds rows/)
    const replaced = await generateTotesys(target, { seed: "alpha", replace: true })
    expect(replaced.rows).toEqual(report.rows)
    expect((await checksumTotesys(target)).checksum).toBe((await checksumTotesys(db)).checksum)
  })

  it("makes a bigger database on request (a year) in a few seconds", async () => {
    const big = await open("gen_big")
    const started = Date.now()
    const result = await generateTotesys(big, { seed: "big", days: 365 })
    expect(Date.now() - started).toBeLessThan(15_000)
    expect(result.rows.sales_order).toBeGreaterThan(5_000)
    expect(result.rows.payment).toBe(result.rows.sales_order + result.rows.purchase_order)
  })
})
