import { describe, expect, it } from "vitest"
import { classifyConnectionError, describeEndpoint, explainConnectionError } from "../../services/shared/database-connection.ts"

/** Errors as pg and Node raise them (shapes observed against PostgreSQL 18 and Node 22). */
const nodeError = (code: string, message: string) => Object.assign(new Error(message), { code })
const pgError = (code: string, message: string) => Object.assign(new Error(message), { name: "error", code, severity: "FATAL" })

describe("classifyConnectionError", () => {
  it.each([
    [nodeError("ENOTFOUND", "getaddrinfo ENOTFOUND db.internal"), "host-not-found"],
    [nodeError("EAI_AGAIN", "getaddrinfo EAI_AGAIN db.internal"), "host-not-found"],
    [nodeError("ECONNREFUSED", "connect ECONNREFUSED 127.0.0.1:1"), "refused"],
    [nodeError("ETIMEDOUT", "connect ETIMEDOUT 10.0.0.1:5432"), "timeout"],
    [new Error("Connection terminated due to connection timeout"), "timeout"],
    [pgError("28P01", 'password authentication failed for user "totes"'), "authentication"],
    [pgError("28P01", "empty password returned by client"), "authentication"],
    [new Error("SASL: SCRAM-SERVER-FIRST-MESSAGE: client password must be a string"), "authentication"],
    [pgError("28000", 'no pg_hba.conf entry for host "10.0.0.9", user "totes", database "wh", no encryption'), "tls"],
    [pgError("28000", 'role "nobody" does not exist'), "authentication"],
    [new Error("The server does not support SSL connections"), "tls"],
    [nodeError("SELF_SIGNED_CERT_IN_CHAIN", "self-signed certificate in certificate chain"), "tls"],
    [nodeError("ERR_TLS_CERT_ALTNAME_INVALID", "Hostname/IP does not match certificate's altnames"), "tls"],
    [pgError("3D000", 'database "nodb" does not exist'), "no-database"],
    [pgError("57P03", "the database system is starting up"), "unavailable"],
    [pgError("53300", "sorry, too many clients already"), "unavailable"],
    [new Error("Connection terminated unexpectedly"), "closed"],
    [nodeError("ECONNRESET", "read ECONNRESET"), "closed"]
  ])("%s → %s", (error, kind) => {
    expect(classifyConnectionError(error)).toBe(kind)
  })

  it("leaves other errors alone", () => {
    expect(classifyConnectionError(pgError("42P01", 'relation "x" does not exist'))).toBeUndefined()
    expect(classifyConnectionError(pgError("23505", "duplicate key value violates unique constraint"))).toBeUndefined()
    expect(classifyConnectionError("text")).toBeUndefined()
    expect(classifyConnectionError(undefined)).toBeUndefined()
  })
})

describe("explainConnectionError", () => {
  it("says which database, where and why, without the password", () => {
    const error = explainConnectionError("warehouse", "postgres://totes:hunter2@db.internal:6432/warehouse", pgError("28P01", 'password authentication failed for user "totes"'))
    expect(error?.message).toBe(
      'cannot connect to the warehouse database (db.internal:6432/warehouse as totes): authentication failed: check the user and password in WAREHOUSE_DATABASE_URL (password authentication failed for user "totes")'
    )
    expect(error?.failure).toBe("authentication")
  })

  it("names the replay target's argument and the source's variable", () => {
    expect(explainConnectionError("target", "postgresql://u:p@h/x", nodeError("ECONNREFUSED", "connect ECONNREFUSED 10.0.0.1:5432"))?.message).toBe(
      "cannot connect to the replay target database (h:5432/x as u): connection refused: is the server running, and listening on that host and port? Check --target (connect ECONNREFUSED 10.0.0.1:5432)"
    )
    expect(explainConnectionError("source", "postgres://h/db", nodeError("ENOTFOUND", "getaddrinfo ENOTFOUND h"))?.message).toContain("host not found: check the host name in SOURCE_DATABASE_URL")
  })

  it("redacts a password echoed by an error message", () => {
    const error = explainConnectionError("source", "postgres://u:pw@h/db", new Error("The server does not support SSL connections: postgres://u:pw@h/db"))
    expect(error?.message).not.toContain(":pw@")
  })

  it("is undefined for errors that are not about connecting", () => {
    expect(explainConnectionError("source", "postgres://h/db", pgError("42601", "syntax error"))).toBeUndefined()
  })
})

describe("describeEndpoint", () => {
  it("keeps host, port, database and user, never the password", () => {
    expect(describeEndpoint("postgres://a:secret@h:1/d")).toBe("h:1/d as a")
    expect(describeEndpoint("postgres://h/d")).toBe("h:5432/d")
    expect(describeEndpoint("not a url")).toBe("(unparseable URL)")
  })
})
