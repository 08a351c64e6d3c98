/**
 * A small, fast, seeded workload over the totesys tables for reader tests: inserts, updates,
 * deletes, multi-row and multi-table transactions. (The full simulator lives in tools/source.)
 */
import type pg from "pg"

const rng = (seed: number) => () => {
  seed = (seed + 0x6d2b79f5) | 0
  let t = Math.imul(seed ^ (seed >>> 15), 1 | seed)
  t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296
}

export const seedDimensions = async (client: pg.ClientBase) => {
  await client.query(`
    INSERT INTO address (address_line_1, city, postal_code, country, phone, last_updated)
      SELECT 'Line ' || g, 'City ' || g, 'PC' || g, 'UK', '0100 ' || g, now() FROM generate_series(1, 5) g;
    INSERT INTO department (department_name, location, last_updated) SELECT 'Dept ' || g, 'Leeds', now() FROM generate_series(1, 3) g;
    INSERT INTO currency (currency_code, last_updated) VALUES ('GBP', now()), ('USD', now()), ('EUR', now());
    INSERT INTO payment_type (payment_type_name, last_updated) VALUES ('SALES_RECEIPT', now()), ('SALES_REFUND', now()), ('PURCHASE_PAYMENT', now()), ('PURCHASE_REFUND', now());
    INSERT INTO staff (first_name, last_name, department_id, email_address, last_updated) SELECT 'First' || g, 'O''Last' || g, 1 + g % 3, 'x' || g || '@t.com', now() FROM generate_series(1, 5) g;
    INSERT INTO counterparty (counterparty_legal_name, legal_address_id, last_updated) SELECT 'Name, ' || g, 1 + g % 5, now() FROM generate_series(1, 4) g;
    INSERT INTO design (design_name, file_location, file_name, last_updated) SELECT 'Design ' || g, '/usr', 'd' || g || '.json', now() FROM generate_series(1, 5) g;`)
}

/** Runs `transactions` random transactions; returns how many committed. */
export const runMiniWorkload = async (client: pg.ClientBase, options: { seed: number; transactions: number; signal?: AbortSignal }) => {
  const random = rng(options.seed)
  const pick = (n: number) => 1 + Math.floor(random() * n)
  let committed = 0
  for (let i = 0; i < options.transactions && !options.signal?.aborted; i++) {
    const kind = random()
    await client.query("BEGIN")
    if (kind < 0.5) {
      // An order with its transaction and payment (multi-table).
      const so = await client.query(
        `INSERT INTO sales_order (design_id, staff_id, counterparty_id, units_sold, unit_price, currency_id, agreed_delivery_date, agreed_payment_date, agreed_delivery_location_id, last_updated)
         VALUES ($1, $2, $3, $4, $5, $6, '2024-03-01', '2024-03-05', $7, now()) RETURNING sales_order_id`,
        [pick(5), pick(5), pick(4), pick(1000), (random() * 100).toFixed(2), pick(3), pick(5)]
      )
      const tx = await client.query(`INSERT INTO "transaction" (transaction_type, sales_order_id, last_updated) VALUES ('SALE', $1, now()) RETURNING transaction_id`, [so.rows[0].sales_order_id])
      await client.query(
        `INSERT INTO payment (transaction_id, counterparty_id, payment_amount, currency_id, payment_type_id, paid, payment_date, company_ac_number, counterparty_ac_number, last_updated)
         VALUES ($1, 1, 10.00, 1, 1, false, '2024-03-05', 1, 2, now())`,
        [tx.rows[0].transaction_id]
      )
    } else if (kind < 0.7) {
      await client.query(`UPDATE payment SET paid = true, last_updated = now() WHERE payment_id IN (SELECT payment_id FROM payment WHERE NOT paid ORDER BY payment_id LIMIT 3)`)
    } else if (kind < 0.8) {
      await client.query(`UPDATE sales_order SET staff_id = $1 WHERE sales_order_id = (SELECT max(sales_order_id) FROM sales_order)`, [pick(5)])
    } else if (kind < 0.9) {
      await client.query(`UPDATE address SET phone = $1, last_updated = now() WHERE address_id = $2`, [`0${pick(99999)}`, pick(5)])
    } else {
      // Delete a whole order: payment, transaction, sales order (FK order).
      const victim = await client.query(`SELECT t.transaction_id, t.sales_order_id FROM "transaction" t JOIN payment p USING (transaction_id) WHERE t.sales_order_id IS NOT NULL ORDER BY t.transaction_id LIMIT 1`)
      if (victim.rows[0]) {
        await client.query(`DELETE FROM payment WHERE transaction_id = $1`, [victim.rows[0].transaction_id])
        await client.query(`DELETE FROM "transaction" WHERE transaction_id = $1`, [victim.rows[0].transaction_id])
        await client.query(`DELETE FROM sales_order WHERE sales_order_id = $1`, [victim.rows[0].sales_order_id])
      }
    }
    await client.query("COMMIT")
    committed++
  }
  return committed
}
