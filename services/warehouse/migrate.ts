/**
 * Warehouse migrations: the numbered SQL files in ./migrations, run in order, each once.
 *
 *   await migrateWarehouse(client, { schema: "public", pipelineSchema: "totes" })
 *
 * `schema` holds the star schema (dims, facts, views); `pipelineSchema` the pipeline's own state
 * (mirror, shard positions, the migrations table). The files name them `{{schema}}` and
 * `{{pipeline}}`; both are validated identifiers and substituted quoted.
 *
 * Idempotent and safe to run from several processes: everything happens in one transaction
 * under an advisory lock, and `<pipeline>.schema_migrations` records what ran. After the files,
 * the ISO 4217 names are synchronised from the npm package `currency-codes` (a no-op when unchanged).
 */
import { existsSync, readdirSync, readFileSync } from "node:fs"
import { fileURLToPath } from "node:url"
import { data as iso4217 } from "currency-codes"
import type pg from "pg"

export interface WarehouseSchemas {
  /** Schema of the star schema. Default "public". */
  readonly schema?: string
  /** Schema of the pipeline's own tables. Default "totes". */
  readonly pipelineSchema?: string
}

export interface MigrationReport {
  /** Versions applied by this call (empty when the warehouse was up to date). */
  readonly applied: ReadonlyArray<string>
}

const MIGRATIONS_DIR = new URL("./migrations/", import.meta.url)
const IDENTIFIER = /^[a-z_][a-z0-9_]{0,62}$/
/** Advisory lock class for migrations (apply uses another). */
const MIGRATE_LOCK = 74_010

/** A schema name as a quoted identifier; anything but a plain lower-case identifier is refused. */
export const quoteIdentifier = (name: string): string => {
  if (!IDENTIFIER.test(name)) throw new Error(`not a valid schema name: ${JSON.stringify(name)} (expected [a-z_][a-z0-9_]*)`)
  return `"${name}"`
}

export const resolveSchemas = (options: WarehouseSchemas = {}) => {
  const schema = options.schema ?? "public"
  const pipelineSchema = options.pipelineSchema ?? "totes"
  if (schema === pipelineSchema) throw new Error(`the warehouse and pipeline schemas must differ (both ${schema})`)
  return { schema, pipelineSchema, s: quoteIdentifier(schema), p: quoteIdentifier(pipelineSchema) }
}

export interface Migration {
  readonly version: string
  readonly name: string
  readonly sql: string
}

/** The migration files in order: `NNN_name.sql`. */
export const listMigrations = (): ReadonlyArray<Migration> => {
  if (!existsSync(MIGRATIONS_DIR)) {
    // A bundle (the Lambda package, the CLI build) must ship the migrations beside the module that reads them.
    throw new Error(`the warehouse migrations are not at ${fileURLToPath(MIGRATIONS_DIR)}: the package must include services/warehouse/migrations there`)
  }
  return readdirSync(MIGRATIONS_DIR)
    .filter((file) => /^\d{3}_[a-z0-9_]+\.sql$/.test(file))
    .sort()
    .map((file) => ({
      version: file.slice(0, 3),
      name: file.slice(4, -4),
      sql: readFileSync(new URL(file, MIGRATIONS_DIR), "utf8")
    }))
}

export const renderMigration = (sql: string, schemas: { s: string; p: string }): string =>
  sql.replaceAll("{{schema}}", schemas.s).replaceAll("{{pipeline}}", schemas.p)

export const migrateWarehouse = async (client: pg.ClientBase, options: WarehouseSchemas = {}): Promise<MigrationReport> => {
  const { schema, pipelineSchema, s, p } = resolveSchemas(options)
  const applied: Array<string> = []
  await client.query("BEGIN")
  try {
    await client.query("SELECT pg_advisory_xact_lock($1, hashtext($2))", [MIGRATE_LOCK, pipelineSchema])
    await client.query(`CREATE SCHEMA IF NOT EXISTS ${p}`)
    await client.query(
      `CREATE TABLE IF NOT EXISTS ${p}.schema_migrations (
         version text PRIMARY KEY,
         name text NOT NULL,
         warehouse_schema text NOT NULL,
         applied_at timestamptz NOT NULL DEFAULT now()
       )`
    )
    const { rows } = await client.query<{ version: string; warehouse_schema: string }>(
      `SELECT version, warehouse_schema FROM ${p}.schema_migrations`
    )
    // The pipeline state belongs to one star schema: refuse to pair it with another.
    const other = rows.find((row) => row.warehouse_schema !== schema)
    if (other) {
      throw new Error(`pipeline schema ${pipelineSchema} already serves warehouse schema ${other.warehouse_schema}, not ${schema}`)
    }
    const done = new Set(rows.map((row) => row.version))
    for (const migration of listMigrations()) {
      if (done.has(migration.version)) continue
      await client.query(renderMigration(migration.sql, { s, p }))
      await client.query(`INSERT INTO ${p}.schema_migrations (version, name, warehouse_schema) VALUES ($1, $2, $3)`, [
        migration.version,
        migration.name,
        schema
      ])
      applied.push(migration.version)
    }
    await syncCurrencyNames(client, p)
    await client.query("COMMIT")
  } catch (error) {
    await client.query("ROLLBACK")
    throw error
  }
  return { applied }
}

/** Upserts the ISO 4217 code → name table from the installed package; writes nothing when unchanged. */
const syncCurrencyNames = async (client: pg.ClientBase, p: string) => {
  const names = Object.fromEntries(iso4217.map((record) => [record.code, record.currency]))
  await client.query(
    `INSERT INTO ${p}.iso_4217 (code, name)
     SELECT key, value FROM jsonb_each_text($1::jsonb)
     ON CONFLICT (code) DO UPDATE SET name = excluded.name WHERE iso_4217.name IS DISTINCT FROM excluded.name`,
    [JSON.stringify(names)]
  )
}
