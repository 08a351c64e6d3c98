/**
 * Connecting to PostgreSQL with an explanation when it fails: which database (source,
 * warehouse, replay target), where (host, port, database, user; never the password), and why
 * (host not found, refused, timed out, authentication, TLS, no such database, …), in one line.
 *
 * `classifyConnectionError` is the pure core: it recognises the errors `pg` and Node raise while
 * a connection is being made and returns undefined for anything else (an SQL error stays what it
 * is). `connectClient` is what every place that opens a connection uses; places that receive an
 * error from code that connected by itself use `explainConnectionError`.
 */
import pg from "pg"
import { Schema } from "effect"
import { redact } from "./logger.ts"

/** Which database a URL is, and the variable or argument that gave it. */
export const DATABASES = {
  source: { label: "the source database", setting: "SOURCE_DATABASE_URL" },
  warehouse: { label: "the warehouse database", setting: "WAREHOUSE_DATABASE_URL" },
  target: { label: "the replay target database", setting: "--target" }
} as const
export type DatabaseName = keyof typeof DATABASES

export const CONNECTION_FAILURES = [
  "host-not-found",
  "refused",
  "timeout",
  "authentication",
  "tls",
  "no-database",
  "unavailable",
  "closed"
] as const
export type ConnectionFailure = (typeof CONNECTION_FAILURES)[number]

const ADVICE: Record<ConnectionFailure, string> = {
  "host-not-found": "host not found: check the host name in",
  refused: "connection refused: is the server running, and listening on that host and port? Check",
  timeout: "no answer before the timeout: check the network path (security groups, firewall) and the host in",
  authentication: "authentication failed: check the user and password in",
  tls: "TLS negotiation failed: check sslmode (and the server's certificate) in",
  "no-database": "the database does not exist: check the database name in",
  unavailable: "the server refuses connections for now (starting up, shutting down or out of connection slots); check",
  closed: "the server closed the connection while it was being set up (pg_hba.conf, TLS or a proxy); check"
}

const TLS_CODES = /^(?:ERR_TLS_|ERR_SSL_|CERT_|DEPTH_ZERO_SELF_SIGNED_CERT|SELF_SIGNED_CERT_IN_CHAIN|UNABLE_TO_(?:GET|VERIFY)_|EPROTO$|HOSTNAME_MISMATCH)/

/** The kind of connection failure, or undefined when the error is not one. */
export const classifyConnectionError = (error: unknown): ConnectionFailure | undefined => {
  const e = error as { code?: unknown; message?: unknown } | null | undefined
  const code = typeof e?.code === "string" ? e.code : ""
  const message = typeof e?.message === "string" ? e.message : ""
  if (code === "ENOTFOUND" || code === "EAI_AGAIN" || code === "EAI_NONAME") return "host-not-found"
  if (code === "ECONNREFUSED") return "refused"
  if (code === "ETIMEDOUT" || code === "EHOSTUNREACH" || code === "ENETUNREACH" || /connection timeout|timeout expired/i.test(message)) return "timeout"
  // 28P01 invalid_password; 28000 invalid_authorization_specification (pg_hba.conf); pg's own SASL checks.
  if (code === "28000" && /no encryption|SSL off/i.test(message)) return "tls"
  if (code === "28P01" || code === "28000" || /^SASL: |client password must be a string/.test(message)) return "authentication"
  if (TLS_CODES.test(code) || /does not support SSL|SSL connection|certificate|TLS/i.test(message)) return "tls"
  if (code === "3D000") return "no-database"
  // 57P03 cannot_connect_now; 53300 too_many_connections; 57P01 admin_shutdown during start-up.
  if (code === "57P03" || code === "53300") return "unavailable"
  if (code === "ECONNRESET" || code === "EPIPE" || /Connection terminated unexpectedly/.test(message)) return "closed"
  return undefined
}

/** host:port/database as user, from a URL, with no password. */
export const describeEndpoint = (url: string): string => {
  try {
    const parsed = new URL(url)
    const host = parsed.hostname || parsed.searchParams.get("host") || "localhost"
    const database = decodeURIComponent(parsed.pathname.replace(/^\//, "")) || "(default database)"
    const user = parsed.username ? ` as ${decodeURIComponent(parsed.username)}` : ""
    return `${host}:${parsed.port || "5432"}/${database}${user}`
  } catch {
    return "(unparseable URL)"
  }
}

export class DatabaseConnectionError extends Schema.TaggedError<DatabaseConnectionError>()("DatabaseConnectionError", {
  database: Schema.Literals(["source", "warehouse", "target"]),
  failure: Schema.Literals(CONNECTION_FAILURES),
  message: Schema.String
}) {}

/**
 * The explanation of a connection failure, or undefined if `error` is not one. The message:
 * `cannot connect to the warehouse database (db:5432/warehouse as totes): authentication
 * failed: check the user and password in WAREHOUSE_DATABASE_URL (password authentication failed for user "totes")`.
 */
export const explainConnectionError = (database: DatabaseName, url: string, error: unknown): DatabaseConnectionError | undefined => {
  if (error instanceof DatabaseConnectionError) return error
  const failure = classifyConnectionError(error)
  if (!failure) return undefined
  const { label, setting } = DATABASES[database]
  const detail = redact(String((error as Error)?.message ?? error)).split("\n")[0]!.slice(0, 300)
  return new DatabaseConnectionError({
    database,
    failure,
    message: `cannot connect to ${label} (${describeEndpoint(url)}): ${ADVICE[failure]} ${setting} (${detail})`
  })
}

/** Default time allowed for a connection to be made (pg waits for the OS otherwise: minutes). */
export const CONNECT_TIMEOUT_MS = 15_000

/**
 * A connected pg.Client, or a DatabaseConnectionError saying which database and why. An idle
 * client's later 'error' event (the server went away) goes to `onError` instead of crashing
 * the process; the next query on it fails and says so.
 */
export const connectClient = async (
  database: DatabaseName,
  url: string,
  config: Omit<pg.ClientConfig, "connectionString"> & { readonly onError?: (error: Error) => void } = {}
): Promise<pg.Client> => {
  const { onError, ...rest } = config
  const client = new pg.Client({ connectionTimeoutMillis: CONNECT_TIMEOUT_MS, ...rest, connectionString: url })
  client.on("error", onError ?? (() => {}))
  try {
    await client.connect()
  } catch (error) {
    await client.end().catch(() => {})
    throw explainConnectionError(database, url, error) ?? error
  }
  return client
}
