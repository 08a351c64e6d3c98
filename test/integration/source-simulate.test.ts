/**
 * The workload simulator against a real PostgreSQL. What it reports is compared with an
 * independent observation: a trigger-based audit table (created only in the test database) that
 * records every inserted, updated and deleted row with its transaction id and old/new values.
 */
import type pg from "pg"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { PRIMARY_KEYS, TOTESYS_TABLES, type TotesysTable } from "../../contracts/totesys.ts"
import { checksumTotesys } from "../../tools/source/checksum.ts"
import { generateTotesys } from "../../tools/source/generate.ts"
import { inBusinessHours, toInstant } from "../../tools/source/sim-time.ts"
import { MIX_KINDS, REAL_MIX, simulate, type ChangeLogEntry, type Mix, type SimulationReport } from "../../tools/source/simulate.ts"
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

/** Test-only audit: one row per changed row, in firing order, with the writing transaction's id. */
const installAudit = async (client: pg.ClientBase) => {
  await client.query(`
    CREATE TABLE audit_log (
      id bigserial PRIMARY KEY,
      txid xid8 NOT NULL DEFAULT pg_current_xact_id(),
      tbl text NOT NULL,
      op text NOT NULL,
      key bigint NOT NULL,
      old_row jsonb,
      new_row jsonb
    );
    CREATE FUNCTION audit_row() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
      IF TG_OP = 'DELETE' THEN
        INSERT INTO audit_log (tbl, op, key, old_row) VALUES (TG_TABLE_NAME, 'delete', (to_jsonb(OLD) ->> TG_ARGV[0])::bigint, to_jsonb(OLD));
        RETURN OLD;
      ELSIF TG_OP = 'UPDATE' THEN
        INSERT INTO audit_log (tbl, op, key, old_row, new_row) VALUES (TG_TABLE_NAME, 'update', (to_jsonb(NEW) ->> TG_ARGV[0])::bigint, to_jsonb(OLD), to_jsonb(NEW));
        RETURN NEW;
      ELSE
        INSERT INTO audit_log (tbl, op, key, new_row) VALUES (TG_TABLE_NAME, 'insert', (to_jsonb(NEW) ->> TG_ARGV[0])::bigint, to_jsonb(NEW));
        RETURN NEW;
      END IF;
    END $$;`)
  for (const table of TOTESYS_TABLES) {
    await client.query(`CREATE TRIGGER audit AFTER INSERT OR UPDATE OR DELETE ON "${table}" FOR EACH ROW EXECUTE FUNCTION audit_row('${PRIMARY_KEYS[table]}')`)
  }
}

interface AuditRow {
  id: number
  txid: string
  tbl: TotesysTable
  op: "insert" | "update" | "delete"
  key: number
  changed: Array<string> | null
  old_lu: string | null
  new_lu: string | null
  new_row: Record<string, unknown> | null
}

const readAudit = async (client: pg.ClientBase): Promise<Array<AuditRow>> => {
  const { rows } = await client.query(`
    SELECT id::int, txid::text, tbl, op, key::int, new_row,
           CASE WHEN op = 'update' THEN ARRAY(SELECT n.key FROM jsonb_each(new_row) n WHERE n.value IS DISTINCT FROM old_row -> n.key ORDER BY n.key) END AS changed,
           to_char((old_row ->> 'last_updated')::timestamp, 'YYYY-MM-DD HH24:MI:SS.MS') AS old_lu,
           to_char((new_row ->> 'last_updated')::timestamp, 'YYYY-MM-DD HH24:MI:SS.MS') AS new_lu
      FROM audit_log ORDER BY id`)
  return rows as Array<AuditRow>
}

const rowCounts = async (client: pg.ClientBase): Promise<Record<TotesysTable, number>> => {
  const { rows } = await client.query(TOTESYS_TABLES.map((t) => `SELECT '${t}' AS t, count(*)::int AS n FROM "${t}"`).join(" UNION ALL "))
  return Object.fromEntries(rows.map((r) => [r.t, r.n])) as Record<TotesysTable, number>
}

const groupBy = <T, K>(items: ReadonlyArray<T>, key: (item: T) => K): Map<K, Array<T>> => {
  const groups = new Map<K, Array<T>>()
  for (const item of items) groups.set(key(item), [...(groups.get(key(item)) ?? []), item])
  return groups
}

const signature = (e: { txid: string; table?: string; tbl?: string; op: string; key: number }) => `${e.txid}|${e.table ?? e.tbl}|${e.op}|${e.key}`

/** Every kind with some weight, orders a bit more often so that deletes and edits find rows. */
const EVERYTHING: Mix = Object.fromEntries(MIX_KINDS.map((k) => [k, k === "sale" ? 4 : k === "purchase" ? 2 : 1]))

describe("simulate: a seeded run with every kind of change", () => {
  let db: pg.Client
  let before: Record<TotesysTable, number>
  let after: Record<TotesysTable, number>
  let report: SimulationReport
  let log: ReadonlyArray<ChangeLogEntry>
  let audit: Array<AuditRow>
  let committed: Array<number>

  beforeAll(async () => {
    db = await open("sim")
    await generateTotesys(db, { seed: "sim-base", days: 30 })
    await installAudit(db)
    before = await rowCounts(db)
    committed = []
    report = await simulate(db, {
      seed: "run-1",
      maxTransactions: 700,
      rate: Infinity,
      mix: EVERYTHING,
      clock: { msPerTransaction: 15 * 60_000 },
      log: true,
      onCommit: (tx) => committed.push(tx.changes.length)
    })
    log = report.log!
    after = await rowCounts(db)
    audit = await readAudit(db)
  })

  it("stops after the requested number of transactions and did every kind, the payment job included", () => {
    expect(report.stoppedBy).toBe("maxTransactions")
    expect(report.transactions).toBe(700)
    expect(committed).toHaveLength(700)
    expect(report.rowChanges).toBe(log.length)
    expect(committed.reduce((a, b) => a + b, 0)).toBe(log.length)
    for (const kind of [...MIX_KINDS, "payment_job" as const]) expect(report.kinds[kind], kind).toBeGreaterThan(0)
    expect(Object.values(report.kinds).reduce((a, b) => a + b, 0)).toBe(700)
    for (const table of TOTESYS_TABLES.filter((t) => t !== "currency" && t !== "payment_type")) {
      const counts = report.tables[table]
      expect(counts.insert + counts.update + counts.delete, table).toBeGreaterThan(0)
    }
    for (const op of ["insert", "update", "delete"] as const) expect(report.tables.payment[op]).toBeGreaterThan(0)
  })

  it("reports per table and operation exactly what the audit triggers saw", () => {
    const seen = Object.fromEntries(TOTESYS_TABLES.map((t) => [t, { insert: 0, update: 0, delete: 0 }])) as SimulationReport["tables"]
    for (const row of audit) seen[row.tbl][row.op]++
    expect(report.tables).toEqual(seen)
  })

  it("logs every changed row with its transaction id, and nothing else", () => {
    expect(log.map(signature).sort()).toEqual(audit.map(signature).sort())
    // Transactions: one txid per seq, distinct, and every audited transaction is in the log.
    const txidBySeq = new Map<number, string>()
    for (const entry of log) {
      expect(entry.xid).toBe(Number(entry.txid) % 2 ** 32)
      expect(txidBySeq.get(entry.seq) ?? entry.txid).toBe(entry.txid)
      txidBySeq.set(entry.seq, entry.txid)
    }
    expect(new Set(txidBySeq.values()).size).toBe(txidBySeq.size)
    expect(new Set(audit.map((a) => a.txid))).toEqual(new Set(txidBySeq.values()))
  })

  it("changed the row counts by inserts minus deletes", () => {
    for (const table of TOTESYS_TABLES) {
      expect(after[table] - before[table], table).toBe(report.tables[table].insert - report.tables[table].delete)
    }
  })

  it("leaves last_updated alone on in-place edits, and changes exactly the logged column", () => {
    const byKey = new Map(audit.map((a) => [signature(a), a]))
    const edits = log.filter((e) => e.kind.startsWith("edit_"))
    expect(edits.length).toBeGreaterThan(100)
    for (const edit of edits) {
      const seen = byKey.get(signature(edit))!
      expect(edit.op).toBe("update")
      expect(edit.columns).toHaveLength(1)
      expect(seen.changed).toEqual(edit.columns)
      expect(seen.new_lu).toBe(seen.old_lu)
    }
    const allowed: Record<string, Array<string>> = {
      sales_order: ["staff_id", "design_id", "agreed_delivery_date", "agreed_delivery_location_id"],
      purchase_order: ["item_code", "staff_id", "agreed_delivery_date", "agreed_delivery_location_id"],
      design: ["file_location"]
    }
    for (const edit of edits) expect(allowed[edit.table]).toContain(edit.columns![0])
    // Every in-place column the real database edits was edited.
    const columns = new Set(edits.map((e) => `${e.table}.${e.columns![0]}`))
    expect(columns.size).toBe(9)
  })

  it("updates dimension rows with last_updated set to the transaction's instant", () => {
    const byKey = new Map(audit.map((a) => [signature(a), a]))
    const updates = log.filter((e) => e.kind.startsWith("update_"))
    expect(updates.length).toBeGreaterThan(100)
    for (const update of updates) {
      const seen = byKey.get(signature(update))!
      expect([...seen.changed!].sort()).toEqual([...update.columns!].sort())
      expect(update.columns).toContain("last_updated")
      expect(seen.new_lu).toBe(update.at)
    }
    expect(new Set(updates.map((u) => u.table))).toEqual(new Set(["address", "department", "counterparty", "staff"]))
  })

  it("runs the 07:55 job: payments due that day become paid with last_updated = the job's instant", () => {
    const byKey = new Map(audit.map((a) => [signature(a), a]))
    const jobs = log.filter((e) => e.kind === "payment_job")
    expect(jobs.length).toBeGreaterThan(50)
    for (const job of jobs) {
      const seen = byKey.get(signature(job))!
      expect(seen.changed).toEqual(["last_updated", "paid"])
      expect(seen.new_row!.paid).toBe(true)
      expect(seen.new_lu).toBe(job.at)
      expect(job.at.slice(11, 16)).toBe("07:55")
      expect(seen.new_row!.payment_date).toBe(job.at.slice(0, 10))
    }
  })

  it("deletes respecting the foreign keys: payment, then transaction, then order — or the order alone", async () => {
    const deletes = log.filter((e) => e.kind === "delete_order")
    const byTx = groupBy(deletes, (e) => e.txid)
    expect(byTx.size).toBe(report.kinds.delete_order)
    for (const [txid, entries] of byTx) {
      expect(entries.map((e) => e.table)).toHaveLength(3)
      const order = audit.filter((a) => a.txid === txid).map((a) => `${a.op} ${a.tbl}`)
      expect(order[0]).toBe("delete payment")
      expect(order[1]).toBe("delete transaction")
      expect(order[2]).toMatch(/^delete (sales|purchase)_order$/)
    }
    const orphaned = log.filter((e) => e.kind === "delete_order_only" && e.table === "transaction")
    expect(orphaned.length).toBeGreaterThan(0)
    for (const entry of orphaned) {
      const seen = audit.find((a) => signature(a) === signature(entry))!
      expect(seen.changed).toEqual(entry.columns)
      expect(seen.new_row![entry.columns![0]!]).toBeNull()
    }
    // Everything deleted is gone; every foreign key still holds.
    for (const entry of log.filter((e) => e.op === "delete")) {
      const { rows } = await db.query(`SELECT 1 FROM "${entry.table}" WHERE "${PRIMARY_KEYS[entry.table]}" = $1`, [entry.key])
      expect(rows, `${entry.table} ${entry.key}`).toHaveLength(0)
    }
    const orphans = await db.query(`
      SELECT (SELECT count(*) FROM payment p WHERE NOT EXISTS (SELECT 1 FROM "transaction" t WHERE t.transaction_id = p.transaction_id))::int AS payments,
             (SELECT count(*) FROM "transaction" t WHERE t.sales_order_id IS NOT NULL AND NOT EXISTS (SELECT 1 FROM sales_order s WHERE s.sales_order_id = t.sales_order_id))::int AS sales,
             (SELECT count(*) FROM "transaction" t WHERE t.purchase_order_id IS NOT NULL AND NOT EXISTS (SELECT 1 FROM purchase_order o WHERE o.purchase_order_id = t.purchase_order_id))::int AS purchases`)
    expect(orphans.rows[0]).toEqual({ payments: 0, sales: 0, purchases: 0 })
  })

  it("inserts orders like the real application: one transaction and one matching payment in the same instant", async () => {
    const { rows } = await db.query(`
      SELECT count(*)::int AS orders,
             count(*) FILTER (WHERE p.payment_amount <> coalesce(s.units_sold * s.unit_price, o.item_quantity * o.item_unit_price)
                                OR p.currency_id <> coalesce(s.currency_id, o.currency_id)
                                OR p.counterparty_id <> coalesce(s.counterparty_id, o.counterparty_id)
                                OR p.payment_date <> coalesce(s.agreed_payment_date, o.agreed_payment_date)
                                OR p.payment_type_id <> CASE t.transaction_type WHEN 'SALE' THEN 1 ELSE 3 END
                                OR p.created_at <> t.created_at OR t.created_at <> coalesce(s.created_at, o.created_at))::int AS mismatched,
             count(*) FILTER (WHERE extract(isodow FROM t.created_at) > 5 OR extract(hour FROM t.created_at) NOT BETWEEN 8 AND 18)::int AS outside_hours
        FROM payment p JOIN "transaction" t USING (transaction_id)
        LEFT JOIN sales_order s USING (sales_order_id) LEFT JOIN purchase_order o USING (purchase_order_id)
       WHERE t.created_at > timestamp '2024-11-15 15:00' AND (s.sales_order_id IS NOT NULL OR o.purchase_order_id IS NOT NULL)`)
    expect(rows[0].orders).toBeGreaterThan(200)
    expect(rows[0]).toMatchObject({ mismatched: 0, outside_hours: 0 })
    // Multi-order transactions wrote several orders of both kinds at once.
    const batches = groupBy(log.filter((e) => e.kind === "order_batch" && e.op === "insert" && e.table.endsWith("_order")), (e) => e.txid)
    expect([...batches.values()].some((entries) => entries.length >= 2 && new Set(entries.map((e) => e.table)).size === 2)).toBe(true)
  })

  it("advances a simulated clock: monotonic, inside business hours, far faster than real time", () => {
    let previous = ""
    let previousSeq = 0
    for (const entry of log) {
      if (entry.seq !== previousSeq) {
        expect(entry.at > previous).toBe(true)
        previous = entry.at
        previousSeq = entry.seq
      }
      if (entry.kind !== "payment_job") expect(inBusinessHours(toInstant(entry.at)), entry.at).toBe(true)
    }
    const simulatedMs = toInstant(report.clock.end!) - toInstant(report.clock.start!)
    expect(simulatedMs).toBeGreaterThan(7 * 24 * 3_600_000)
    expect(report.clock.start! > "2024-11-15 14:00").toBe(true) // just after the generated history
  })
})

const prepared = async (prefix: string) => {
  const db = await open(prefix)
  await generateTotesys(db, { seed: "repro", days: 15 })
  return db
}

const strip = (log: ReadonlyArray<ChangeLogEntry>) => log.map(({ txid: _txid, xid: _xid, ...rest }) => rest)

describe("simulate: reproducibility and stopping", () => {
  it("writes the same rows for the same seed at any pace, and others for another seed", async () => {
    const [a, b, c] = await Promise.all([prepared("sim_a"), prepared("sim_b"), prepared("sim_c")])
    const options = { maxTransactions: 250, mix: EVERYTHING, log: true, clock: { msPerTransaction: 20 * 60_000 } }
    const ra = await simulate(a, { ...options, seed: "same", rate: Infinity })
    const rb = await simulate(b, { ...options, seed: "same", rate: 1_000 })
    const rc = await simulate(c, { ...options, seed: "other", rate: Infinity })
    const [ca, cb, cc] = await Promise.all([checksumTotesys(a), checksumTotesys(b), checksumTotesys(c)])
    expect(cb).toEqual(ca)
    expect(cc.checksum).not.toBe(ca.checksum)
    expect(strip(rb.log!)).toEqual(strip(ra.log!))
    expect(rb.tables).toEqual(ra.tables)
    expect(rc.tables).not.toEqual(ra.tables)
    expect(rb.wallMs).toBeGreaterThanOrEqual(200) // paced at 1,000 tx/s
  })

  it("stops after a duration, on an abort signal, or after N row changes", async () => {
    const db = await prepared("sim_stop")
    const timed = await simulate(db, { seed: 1, rate: 50, durationMs: 600, mix: REAL_MIX })
    expect(timed.stoppedBy).toBe("duration")
    expect(timed.wallMs).toBeGreaterThanOrEqual(590)
    expect(timed.wallMs).toBeLessThan(2_000)
    expect(timed.transactions).toBeGreaterThanOrEqual(10)
    expect(timed.transactions).toBeLessThanOrEqual(32)

    const controller = new AbortController()
    setTimeout(() => controller.abort(), 300)
    const aborted = await simulate(db, { seed: 2, rate: 100, signal: controller.signal })
    expect(aborted.stoppedBy).toBe("signal")
    expect(aborted.transactions).toBeGreaterThan(5)
    expect(aborted.wallMs).toBeLessThan(1_500)

    const sizes: Array<number> = []
    const limited = await simulate(db, { seed: 3, rate: Infinity, maxChanges: 50, onCommit: (tx) => sizes.push(tx.changes.length) })
    expect(limited.stoppedBy).toBe("maxChanges")
    expect(limited.rowChanges).toBeGreaterThanOrEqual(50)
    expect(limited.rowChanges - sizes.at(-1)!).toBeLessThan(50)
  })

  it("can stamp rows with the real current time instead of a simulated one", async () => {
    const db = await prepared("sim_wall")
    const started = Date.now()
    const report = await simulate(db, { seed: 4, rate: Infinity, maxTransactions: 5, mix: { sale: 1 }, clock: "wall", log: true })
    const ended = Date.now()
    expect(report.kinds).toEqual({ sale: 5 })
    for (const entry of report.log!) {
      expect(toInstant(entry.at)).toBeGreaterThanOrEqual(started)
      expect(toInstant(entry.at)).toBeLessThanOrEqual(ended + 5)
    }
  })

  it("replays the real behaviour on top of the real February snapshot", async () => {
    const db = await open("sim_real")
    await initSourceSchema(db)
    await loadCsvSnapshot(db, SNAPSHOT_FEB)
    await installAudit(db)
    const before = await rowCounts(db)
    const report = await simulate(db, { seed: "feb", rate: Infinity, maxTransactions: 300, mix: REAL_MIX, log: true })
    const after = await rowCounts(db)
    for (const table of TOTESYS_TABLES) expect(after[table] - before[table], table).toBe(report.tables[table].insert - report.tables[table].delete)
    expect(report.log!.map(signature).sort()).toEqual((await readAudit(db)).map(signature).sort())
    expect(report.clock.start! > "2024-02-23 11:11:10.072").toBe(true)
    expect(report.tables.payment.delete + report.tables.sales_order.delete).toBe(0)
    expect(report.tables.sales_order.insert / report.tables.purchase_order.insert).toBeGreaterThan(1.5)
    // New ids follow the snapshot's, from the sequences.
    const { rows } = await db.query("SELECT min(sales_order_id)::int AS min FROM sales_order WHERE created_at > '2024-02-23 11:11:10.072'")
    expect(rows[0].min).toBe(6942)
  })
})
