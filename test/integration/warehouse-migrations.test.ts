import type pg from "pg"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { readReplayPosition, recordReplayPosition } from "../../services/warehouse/freshness.ts"
import { migrateWarehouse } from "../../services/warehouse/migrate.ts"
import { connect, freshDatabase } from "../support/stack.ts"
import { STAR_SCHEMA } from "../../contracts/star-schema.ts"

// The warehouse contract (totesys-schema.md §2) as the catalogue defines it: the diagram's columns in order.
const DIAGRAM: Record<string, Array<[string, string]>> = Object.fromEntries(
  Object.entries(STAR_SCHEMA).map(([table, spec]) => [table, Object.entries(spec.columns) as Array<[string, string]>])
)

/** Every fact column's reference as the catalogue declares it, as "table.column -> dimension", sorted. */
const CATALOGUE_REFERENCES = Object.entries(STAR_SCHEMA)
  .flatMap(([table, spec]) => ("references" in spec ? Object.entries(spec.references).map(([column, dim]) => `${table}.${column} -> ${dim}`) : []))
  .sort()

const DIM_METADATA: Array<[string, string]> = [["source_lsn", "pg_lsn"], ["is_deleted", "boolean"], ["updated_at", "timestamptz"]]
const FACT_METADATA: Array<[string, string]> = [
  ["change_op", "text"], ["event_id", "text"], ["source_lsn", "pg_lsn"], ["source_committed_at", "timestamptz"], ["applied_at", "timestamptz"]
]

/** Columns of a table or view, in order, with a short type name built from information_schema. */
const columnsOf = async (client: pg.ClientBase, schema: string, table: string): Promise<Array<[string, string]>> => {
  const { rows } = await client.query(
    `SELECT column_name, data_type, udt_name, numeric_precision, numeric_scale, datetime_precision
     FROM information_schema.columns WHERE table_schema = $1 AND table_name = $2 ORDER BY ordinal_position`,
    [schema, table]
  )
  return rows.map((r) => {
    const type =
      r.data_type === "character varying" ? "varchar"
      : r.data_type === "numeric" && r.numeric_precision !== null ? `numeric(${r.numeric_precision},${r.numeric_scale})`
      : r.data_type === "time without time zone" ? `time(${r.datetime_precision})`
      : r.data_type === "timestamp with time zone" ? "timestamptz"
      : r.data_type === "USER-DEFINED" ? r.udt_name
      : r.data_type
    return [r.column_name, type]
  })
}

describe("warehouse migrations", () => {
  let url: string
  let client: pg.Client

  beforeAll(async () => {
    url = await freshDatabase("whmig")
    client = await connect(url)
    expect((await migrateWarehouse(client, { schema: "public", pipelineSchema: "totes" })).applied).toEqual(["001", "002", "003", "004", "005", "006"])
  })
  afterAll(async () => {
    await client.end()
  })

  it("creates every dimension with the diagram's columns and types, then the dimension metadata", async () => {
    for (const table of Object.keys(DIAGRAM).filter((t) => t.startsWith("dim_"))) {
      const expected = table === "dim_date" ? DIAGRAM[table]! : [...DIAGRAM[table]!, ...DIM_METADATA]
      expect(await columnsOf(client, "public", table), table).toEqual(expected)
    }
  })

  it("creates every fact with the diagram's columns and types, ending with the decided metadata", async () => {
    for (const table of Object.keys(DIAGRAM).filter((t) => t.startsWith("fact_"))) {
      const columns = await columnsOf(client, "public", table)
      const diagram = DIAGRAM[table]!
      expect(columns.slice(0, diagram.length), table).toEqual(diagram)
      expect(columns.slice(-FACT_METADATA.length), table).toEqual(FACT_METADATA)
      // the one extra column: the index within the transaction, to order two changes of one commit
      expect(columns.slice(diagram.length, -FACT_METADATA.length), table).toEqual([["source_seq", "integer"]])
      expect(await columnsOf(client, "public", `${table}_current`), `${table}_current`).toEqual(columns)
    }
  })

  it("makes the record ids serial and event_id unique", async () => {
    const { rows } = await client.query(
      `SELECT table_name, column_default FROM information_schema.columns
       WHERE table_schema = 'public' AND column_name IN ('sales_record_id', 'purchase_record_id', 'payment_record_id')
         AND table_name NOT LIKE '%\\_current' ORDER BY 1`
    )
    expect(rows.map((r) => [r.table_name, String(r.column_default).startsWith("nextval(")])).toEqual([
      ["fact_payment", true],
      ["fact_purchase_order", true],
      ["fact_sales_order", true]
    ])
    const unique = await client.query(
      `SELECT tc.table_name FROM information_schema.table_constraints tc
       JOIN information_schema.constraint_column_usage cu USING (constraint_schema, constraint_name)
       WHERE tc.table_schema = 'public' AND tc.constraint_type = 'UNIQUE' AND cu.column_name = 'event_id' ORDER BY 1`
    )
    expect(unique.rows.map((r) => r.table_name)).toEqual(["fact_payment", "fact_purchase_order", "fact_sales_order"])
  })

  it("declares the foreign keys from facts to dimensions", async () => {
    const { rows } = await client.query(
      `SELECT kcu.table_name, kcu.column_name, ccu.table_name AS references
       FROM information_schema.table_constraints tc
       JOIN information_schema.key_column_usage kcu USING (constraint_schema, constraint_name)
       JOIN information_schema.constraint_column_usage ccu USING (constraint_schema, constraint_name)
       WHERE tc.table_schema = 'public' AND tc.constraint_type = 'FOREIGN KEY'
       ORDER BY 1, 2`
    )
    expect(rows.map((r) => `${r.table_name}.${r.column_name} -> ${r.references}`)).toEqual(CATALOGUE_REFERENCES)
    expect(CATALOGUE_REFERENCES).toHaveLength(24)
  })

  it("keys every dimension by the catalogue's key", async () => {
    const { rows } = await client.query(
      `SELECT tc.table_name, string_agg(kcu.column_name, ',') AS key
       FROM information_schema.table_constraints tc
       JOIN information_schema.key_column_usage kcu USING (constraint_schema, constraint_name)
       WHERE tc.table_schema = 'public' AND tc.constraint_type = 'PRIMARY KEY' AND tc.table_name LIKE 'dim\\_%'
       GROUP BY 1 ORDER BY 1`
    )
    const expected = Object.entries(STAR_SCHEMA).filter(([, spec]) => spec.kind === "dimension").map(([table, spec]) => ({ table_name: table, key: spec.key }))
    expect(rows).toEqual(expected.sort((a, b) => a.table_name.localeCompare(b.table_name)))
  })

  it("keeps those foreign keys as documentation, NOT ENFORCED (apply order keeps references whole, not a trigger per row)", async () => {
    const { rows } = await client.query(
      `SELECT count(*)::int AS total, count(*) FILTER (WHERE NOT conenforced)::int AS not_enforced,
              count(*) FILTER (WHERE EXISTS (SELECT 1 FROM pg_trigger t WHERE t.tgconstraint = c.oid))::int AS with_triggers
       FROM pg_constraint c WHERE c.contype = 'f' AND c.connamespace = 'public'::regnamespace`
    )
    expect(rows[0]).toEqual({ total: 24, not_enforced: 24, with_triggers: 0 }) // the catalogue's 24 references
    // A fact row whose dimension row is missing is accepted by the table: apply, not the database, writes the references first.
    await client.query("BEGIN")
    await client.query(
      `INSERT INTO fact_payment (payment_id, created_date, transaction_id, source_seq, change_op, event_id, source_lsn, source_committed_at)
       VALUES (1, '1999-01-01', 424242, 0, 'c', 'fk-probe', '0/1', now())`
    )
    await client.query("ROLLBACK")
  })

  it("creates pipeline_freshness with one row of NULLs before any heartbeat or replay", async () => {
    expect(await columnsOf(client, "public", "pipeline_freshness")).toEqual([
      ["consistent_through_lsn", "pg_lsn"],
      ["consistent_through_at", "timestamptz"],
      ["consistent_through_source", "text"],
      ["paused_tables", "ARRAY"]
    ])
    const { rows } = await client.query("SELECT * FROM pipeline_freshness")
    expect(rows).toEqual([{ consistent_through_lsn: null, consistent_through_at: null, consistent_through_source: null, paused_tables: [] }])
  })

  it("pipeline_freshness: the live shards' minimum heartbeat when there are shards, otherwise the replay's position", async () => {
    const url = await freshDatabase("whmig")
    const c = await connect(url)
    try {
      await migrateWarehouse(c, {})
      const read = async () => (await c.query("SELECT consistent_through_lsn::text AS lsn, consistent_through_source AS source FROM pipeline_freshness")).rows[0]
      await recordReplayPosition(c, {}, { lsn: "0/300", committedAt: "2026-11-20T10:00:00.123456Z", name: "r" })
      expect(await read()).toEqual({ lsn: "0/300", source: "replay" })
      expect(await readReplayPosition(c)).toEqual({ lsn: "0/300", committedAt: "2026-11-20T10:00:00.123456Z" })
      // Only forward.
      await recordReplayPosition(c, {}, { lsn: "0/200", committedAt: null, name: "older" })
      expect(await read()).toEqual({ lsn: "0/300", source: "replay" })
      // A live shard without a heartbeat yet: the stream decides, and knows nothing yet.
      await c.query("INSERT INTO totes.shard_position (stream, shard_id) VALUES ('s', 'shard-1')")
      expect(await read()).toEqual({ lsn: null, source: "stream" })
      await c.query("UPDATE totes.shard_position SET heartbeat_lsn = '0/100', heartbeat_committed_at = now()")
      expect(await read()).toEqual({ lsn: "0/100", source: "stream" })
      await c.query("UPDATE totes.shard_position SET ended = true")
      expect(await read()).toEqual({ lsn: "0/300", source: "replay" })
    } finally {
      await c.end()
    }
  })

  it("keeps the pipeline's own tables in the pipeline schema, with ISO 4217 names", async () => {
    const { rows } = await client.query(
      `SELECT table_name FROM information_schema.tables WHERE table_schema = 'totes' AND table_type = 'BASE TABLE' ORDER BY 1`
    )
    expect(rows.map((r) => r.table_name)).toEqual(["column_decision", "iso_4217", "mirror", "parked_event", "paused_table", "replay_position", "schema_migrations", "shard_position", "skipped_event", "truncation"])
    const names = await client.query(`SELECT code, name FROM totes.iso_4217 WHERE code IN ('GBP', 'USD', 'EUR') ORDER BY code`)
    expect(names.rows).toEqual([
      { code: "EUR", name: "Euro" },
      { code: "GBP", name: "Pound Sterling" },
      { code: "USD", name: "US Dollar" }
    ])
  })

  it("is a no-op the second time, also when two processes migrate at once", async () => {
    const before = await client.query("SELECT version, applied_at FROM totes.schema_migrations ORDER BY version")
    expect((await migrateWarehouse(client, {})).applied).toEqual([])
    const after = await client.query("SELECT version, applied_at FROM totes.schema_migrations ORDER BY version")
    expect(after.rows).toEqual(before.rows)

    const fresh = await freshDatabase("whmig")
    const [a, b] = [await connect(fresh), await connect(fresh)]
    try {
      const reports = await Promise.all([migrateWarehouse(a, {}), migrateWarehouse(b, {})])
      expect(reports.map((r) => r.applied.length).sort()).toEqual([0, 6])
    } finally {
      await a.end()
      await b.end()
    }
  })

  it("honours other schema names and refuses unsafe ones", async () => {
    expect((await migrateWarehouse(client, { schema: "star", pipelineSchema: "pipe" })).applied).toEqual(["001", "002", "003", "004", "005", "006"])
    expect((await columnsOf(client, "star", "dim_currency")).map(([name]) => name)).toEqual([
      "currency_id", "currency_code", "currency_name", "source_lsn", "is_deleted", "updated_at"
    ])
    const { rows } = await client.query(`SELECT count(*)::int AS n FROM information_schema.tables WHERE table_schema = 'pipe' AND table_name = 'mirror'`)
    expect(rows[0].n).toBe(1)
    await expect(migrateWarehouse(client, { schema: 'public"; DROP TABLE x; --', pipelineSchema: "p2" })).rejects.toThrow(/not a valid schema name/)
    await expect(migrateWarehouse(client, { schema: "other", pipelineSchema: "totes" })).rejects.toThrow(/already serves warehouse schema public/)
  })
})
