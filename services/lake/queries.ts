/**
 * Example queries over the lake's tables: saved in AWS as Athena named queries (infra/lake-catalog.ts)
 * and run locally by `totes lake query --named <id>` on DuckDB views of the same names
 * (tools/lake/duckdb.ts). One SQL text for both: it sticks to what Athena (Trino) and DuckDB
 * share, and takes its inputs as `?` parameters (Athena asks for them, DuckDB binds them).
 *
 * Tables: one per source table over parquet/ (the change metadata plus the row's columns,
 * partitioned by `date`, the commit day), and `raw` over raw/ (the stream records as JSON).
 * An event can be in the lake twice (at-least-once delivery): the queries count and pick
 * versions so that a duplicate changes nothing.
 */

export interface QueryParameter {
  readonly name: string
  readonly description: string
  /** A value that works for the local sample (`totes dev`) and shows the syntax. */
  readonly example: string
}

export interface ExampleQuery {
  /** Local name (`totes lake query --named <id>`); the Athena named query is `totes-<id>`. */
  readonly id: string
  readonly title: string
  readonly description: string
  readonly sql: string
  readonly parameters: ReadonlyArray<QueryParameter>
}

const SALES_ORDER_COLUMNS = [
  "sales_order_id",
  "created_at",
  "last_updated",
  "design_id",
  "staff_id",
  "counterparty_id",
  "units_sold",
  "unit_price",
  "currency_id",
  "agreed_delivery_date",
  "agreed_payment_date",
  "agreed_delivery_location_id"
]

export const SALES_ORDER_HISTORY: ExampleQuery = {
  id: "sales-order-history",
  title: "sales order history of one order",
  description: "Every committed version of one sales order, oldest first: snapshot read (r), insert (c), updates (u), delete (d)",
  parameters: [{ name: "sales_order_id", description: "the order", example: "1" }],
  sql: `-- Every committed version of one sales order, oldest first.
-- op: r = read by the initial snapshot, c = insert, u = update, d = delete (a delete may carry
-- only the key). Parameter: the sales_order_id.
SELECT DISTINCT committed_at, commit_index, op, event_id, ${SALES_ORDER_COLUMNS.join(", ")}
FROM sales_order
WHERE sales_order_id = ?
ORDER BY committed_at, commit_index`
}

export const SALES_ORDERS_AT: ExampleQuery = {
  id: "sales-orders-at",
  title: "facts as they were at time T",
  description: "Sales orders (the source of fact_sales_order) as they were at a moment: each order's newest version committed by then, deleted and truncated ones left out",
  parameters: [{ name: "at", description: "the moment, UTC, as 'YYYY-MM-DD HH:MM:SS'", example: "2024-02-26 08:01:00" }],
  sql: `-- Sales orders as they were at a moment (UTC): each order's newest version committed at or
-- before it; orders deleted by then, and versions before a truncate, are left out.
-- Parameter: the moment, e.g. '2024-11-01 00:00:00'.
WITH moment AS (
  SELECT CAST(? AS timestamp) AS at
),
truncated AS (
  SELECT max(s.committed_at) AS at, max_by(s.commit_index, s.committed_at) AS commit_index
  FROM sales_order AS s, moment
  WHERE s.op = 't' AND s.committed_at <= moment.at
),
versions AS (
  SELECT s.*, row_number() OVER (PARTITION BY s.sales_order_id ORDER BY s.committed_at DESC, s.commit_index DESC) AS newest
  FROM sales_order AS s, moment, truncated AS t
  WHERE s.op <> 't' AND s.committed_at <= moment.at
    AND (t.at IS NULL OR s.committed_at > t.at OR (s.committed_at = t.at AND s.commit_index > t.commit_index))
)
SELECT ${SALES_ORDER_COLUMNS.join(", ")}, committed_at AS version_committed_at
FROM versions
WHERE newest = 1 AND op <> 'd'
ORDER BY sales_order_id`
}

export const CHANGES_PER_TABLE_PER_HOUR: ExampleQuery = {
  id: "changes-per-table-per-hour",
  title: "changes per table per hour",
  description: "Committed changes per source table, hour of commit (UTC) and operation, from the raw events; each event counted once",
  parameters: [],
  sql: `-- Committed changes per source table, hour of commit (UTC) and operation, from the raw
-- stream records; an event delivered twice is counted once. To read less, filter on the
-- partition: AND arrival_hour >= '2024/11/01/00' (UTC hour the record reached the lake).
SELECT source."table" AS source_table, substr(source.committedAt, 1, 13) AS commit_hour, op, count(DISTINCT id) AS changes
FROM raw
WHERE kind = 'change'
GROUP BY source."table", substr(source.committedAt, 1, 13), op
ORDER BY commit_hour, source_table, op`
}

export const EXAMPLE_QUERIES: ReadonlyArray<ExampleQuery> = [SALES_ORDER_HISTORY, SALES_ORDERS_AT, CHANGES_PER_TABLE_PER_HOUR]

export const exampleQuery = (id: string): ExampleQuery => {
  const query = EXAMPLE_QUERIES.find((q) => q.id === id)
  if (!query) throw new Error(`no example query ${JSON.stringify(id)}: ${EXAMPLE_QUERIES.map((q) => q.id).join(", ")}`)
  return query
}
