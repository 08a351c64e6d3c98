import { describe, expect, it } from "@effect/vitest"
import { Effect, Schema } from "effect"
import { TestClock } from "effect/testing"
import { LOG_FIELDS, MemoryLogSink, buildRecord, errorReason, loggerLayer, makeLogger, redact, redactFields, scrubValues, serializeError, setDefaultLogSink } from "../../services/shared/logger.ts"

const AWS_SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
const AWS_KEY_ID = "AKIAIOSFODNN7EXAMPLE"

describe("redact", () => {
  it("masks the password of connection URLs and keeps the rest", () => {
    expect(redact("connect postgres://totes:s3cr%40t@db.internal:5432/totesys?sslmode=verify-full failed")).toBe(
      "connect postgres://totes:[REDACTED]@db.internal:5432/totesys?sslmode=verify-full failed"
    )
    expect(redact("postgresql://u:p4ss@h/db")).toBe("postgresql://u:[REDACTED]@h/db")
    expect(redact("redis://:onlypass@cache:6379")).toBe("redis://:[REDACTED]@cache:6379")
    expect(redact("postgres://user@host/db")).toBe("postgres://user@host/db")
  })

  it("masks password-like keys in conninfo, env and JSON text", () => {
    expect(redact("host=db port=5432 user=totes password=hunter2 dbname=x")).toBe("host=db port=5432 user=totes password=[REDACTED] dbname=x")
    expect(redact("PGPASSWORD='hunter 2' psql")).toBe("PGPASSWORD=[REDACTED] psql")
    expect(redact(`{"SecretAccessKey":"abc","sessionToken": "def","user":"u"}`)).toBe(
      `{"SecretAccessKey":"[REDACTED]","sessionToken": "[REDACTED]","user":"u"}`
    )
    expect(redact("aws_secret_access_key = abc123")).toBe("aws_secret_access_key = [REDACTED]")
  })

  it("masks AWS access key ids, secret keys, signatures and bearer tokens", () => {
    expect(redact(`key ${AWS_KEY_ID} secret ${AWS_SECRET}.`)).toBe("key [REDACTED] secret [REDACTED].")
    expect(redact("https://b.s3.amazonaws.com/k?X-Amz-Credential=AK%2F1&X-Amz-Signature=abcdef&x=1")).toBe(
      "https://b.s3.amazonaws.com/k?X-Amz-Credential=[REDACTED]&X-Amz-Signature=[REDACTED]&x=1"
    )
    expect(redact("Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.e30.abc")).toContain("[REDACTED]")
    expect(redact("Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.e30.abc")).not.toContain("eyJhbGci")
  })

  it("leaves positions, ids and hashes alone", () => {
    const text = "lsn 0/16B3748 seq 49590338271490256608559692538361571095921575989136588898 sha1 2fd4e1c67a2d28fced849ee1bb76e7391b93eb12 shardId-000000000001"
    expect(redact(text)).toBe(text)
  })
})

describe("redactFields", () => {
  it("masks values under sensitive names at any depth and redacts strings", () => {
    expect(
      redactFields({
        user: "totes",
        password: "hunter2",
        nested: { clientSecret: "x", apiKey: "y", url: "postgres://a:b@c/d", list: [{ token: "t" }] },
        count: 3n
      })
    ).toEqual({
      user: "totes",
      password: "[REDACTED]",
      nested: { clientSecret: "[REDACTED]", apiKey: "[REDACTED]", url: "postgres://a:[REDACTED]@c/d", list: [{ token: "[REDACTED]" }] },
      count: "3"
    })
  })
})

describe("logger", () => {
  const fixedNow = () => new Date("2026-11-20T10:00:00.000Z")

  it("writes one JSON line with level, time, component, message and correlation fields", () => {
    const sink = new MemoryLogSink()
    const log = makeLogger("reader", { sink, now: fixedNow, level: "debug" })
    log.info("published batch", { slot: "totes_cdc", stream: "totes-changes", shardId: "shardId-0", batchId: "b1", lsn: "0/16B3748", count: 12 })
    expect(sink.lines).toHaveLength(1)
    expect(JSON.parse(sink.lines[0]!)).toEqual({
      level: "info",
      time: "2026-11-20T10:00:00.000Z",
      component: "reader",
      message: "published batch",
      slot: "totes_cdc",
      stream: "totes-changes",
      shardId: "shardId-0",
      batchId: "b1",
      lsn: "0/16B3748",
      count: 12
    })
  })

  it("accepts only allow-listed scalar fields: row values are dropped, their names reported", () => {
    const sink = new MemoryLogSink()
    const log = makeLogger("consumer", { sink, now: fixedNow })
    const fields = { table: "staff", after: { email_address: "jane@example.com" }, first_name: "Jane", count: { nested: 1 } }
    log.warn("could not apply", fields as any)
    const record = sink.records()[0]!
    expect(record.table).toBe("staff")
    expect(record.droppedFields).toEqual(["after", "first_name", "count"])
    expect(JSON.stringify(record)).not.toContain("jane@example.com")
    expect(JSON.stringify(record)).not.toContain("Jane")
    expect(LOG_FIELDS).not.toContain("after")
    expect(LOG_FIELDS).not.toContain("before")
    expect(LOG_FIELDS).not.toContain("key")
    expect(LOG_FIELDS).not.toContain("password")
  })

  it("redacts secrets in messages, field values and errors", () => {
    const sink = new MemoryLogSink()
    const log = makeLogger("reader", { sink, now: fixedNow })
    const error = new Error("connect ECONNREFUSED postgres://totes:hunter2@db:5432/x", { cause: new Error(`bad key ${AWS_SECRET}`) })
    ;(error as any).code = "ECONNREFUSED"
    log.error("source unreachable: postgres://totes:hunter2@db:5432/x", { host: "db", reason: "password=hunter2", error })
    const line = sink.lines[0]!
    expect(line).not.toContain("hunter2")
    expect(line).not.toContain(AWS_SECRET)
    const record = JSON.parse(line)
    expect(record.error).toMatchObject({ name: "Error", code: "ECONNREFUSED", cause: { message: "bad key [REDACTED]" } })
    expect(record.reason).toBe("password=[REDACTED]")
  })

  it("filters by level and carries child fields", () => {
    const sink = new MemoryLogSink()
    const log = makeLogger("consumer", { sink, now: fixedNow, level: "warn" }).child({ stream: "s", shardId: "shardId-1" })
    log.info("not written")
    log.warn("written", { batchId: "b2" })
    expect(sink.records()).toEqual([
      { level: "warn", time: "2026-11-20T10:00:00.000Z", component: "consumer", message: "written", stream: "s", shardId: "shardId-1", batchId: "b2" }
    ])
    expect(log.enabled("debug")).toBe(false)
  })

  it("serializes non-Error throwables without leaking secrets", () => {
    expect(serializeError({ password: "x", message: "m" })).toEqual({ message: `{"password":"[REDACTED]","message":"m"}` })
    expect(serializeError("postgres://a:b@c")).toEqual({ message: "postgres://a:[REDACTED]@c" })
    expect(buildRecord("info", "c", "m", { count: 10n as any, lagSeconds: Number.NaN }, fixedNow())).toMatchObject({ count: "10", lagSeconds: "NaN" })
  })
})

describe("Effect code logs through the same Logger", () => {
  class SourceDown extends Schema.TaggedError<SourceDown>()("SourceDown", { message: Schema.String }) {}
  const NOW = new Date("2026-11-20T10:00:00.000Z")

  // The record's time is the Effect Clock's (here the TestClock, set to NOW).
  it.effect("writes the same record as the plain logger, from annotations, with the allow-list applied", () =>
    Effect.gen(function* () {
      yield* TestClock.setTime(NOW.getTime())
      const sink = new MemoryLogSink()
      const fields = { table: "staff", count: 3, after: { email_address: "jane@example.com" } }
      yield* Effect.logWarning("table paused").pipe(Effect.annotateLogs({ component: "consumer", ...fields }), Effect.provide(loggerLayer({ sink })))
      makeLogger("consumer", { sink, now: () => NOW }).warn("table paused", fields as any)
      const [fromEffect, fromPlain] = sink.records()
      expect(fromEffect).toEqual({ level: "warn", time: NOW.toISOString(), component: "consumer", message: "table paused", table: "staff", count: 3, droppedFields: ["after"] })
      expect(fromPlain).toEqual(fromEffect)
      expect(sink.lines.join("\n")).not.toContain("jane@example.com")
    })
  )

  it.effect("turns a logged Cause into a redacted error field", () =>
    Effect.gen(function* () {
      const sink = new MemoryLogSink()
      yield* Effect.fail(new SourceDown({ message: "connect postgres://totes:hunter2@db/x refused" })).pipe(
        Effect.catchCause((cause) => Effect.logError("source unreachable", cause)),
        Effect.annotateLogs({ component: "reader", slot: "totes_cdc" }),
        Effect.provide(loggerLayer({ sink }))
      )
      const record = sink.records()[0]!
      expect(record).toMatchObject({ level: "error", component: "reader", message: "source unreachable", slot: "totes_cdc", error: { name: "SourceDown", message: "connect postgres://totes:[REDACTED]@db/x refused" } })
      expect(sink.lines[0]).not.toContain("hunter2")
    })
  )

  it.effect("takes its minimum level from the layer (TOTES_LOG_LEVEL by default) and its sink from setDefaultLogSink", () =>
    Effect.gen(function* () {
      const sink = new MemoryLogSink()
      // The default sink is replaced for this test's scope only.
      yield* Effect.acquireRelease(Effect.sync(() => setDefaultLogSink(sink)), (restore) => Effect.sync(restore))
      const program = Effect.all([Effect.logDebug("hidden"), Effect.logInfo("shown"), Effect.logError("also shown")]).pipe(Effect.annotateLogs({ component: "cli" }))
      yield* program.pipe(Effect.provide(loggerLayer({ level: "info" })))
      yield* program.pipe(Effect.provide(loggerLayer({ level: "off" })))
      expect(sink.records().map((r) => [r.level, r.message])).toEqual([
        ["info", "shown"],
        ["error", "also shown"]
      ])
    })
  )
})

describe("scrubValues and errorReason", () => {
  it("replaces quoted values, key and row images and long numbers", () => {
    expect(scrubValues(`invalid input syntax for type timestamp: "2024-13-45"`)).toBe("invalid input syntax for type timestamp: «value»")
    expect(scrubValues("Key (staff_id)=(12) is not present in table")).toBe("Key (staff_id)=(«value») is not present in table")
    expect(scrubValues(`new row violates check constraint. Failing row contains (1, Jane, jane@example.com).`)).toBe(
      "new row violates check constraint. Failing row contains («values»)."
    )
    expect(scrubValues("seq 49590338271490256608559692538361571095921575989136588898")).toBe("seq «number»")
  })

  it("keeps the names the pipeline knows", () => {
    expect(scrubValues(`replication slot "totes_cdc" already exists; "jane"`, ["totes_cdc"])).toBe(`replication slot "totes_cdc" already exists; «value»`)
  })

  it("leaves the pipeline's own refusals readable: the slot name is not a value", () => {
    const refusal = Object.assign(new Error("replication slot 'totes_cdc' is missing but the checkpoint says changes up to 0/16B3748 were captured"), { name: "ReaderStartError" })
    expect(errorReason(refusal)).toBe("replication slot 'totes_cdc' is missing but the checkpoint says changes up to 0/16B3748 were captured")
    expect(errorReason(new Error(`invalid input syntax for type integer: "abc"`))).toBe("invalid input syntax for type integer: «value»")
    expect(errorReason(Object.assign(new Error("cannot connect to postgres://u:pw@h/db"), { _tag: "DatabaseConnectionError" }))).toBe("cannot connect to postgres://u:[REDACTED]@h/db")
  })
})
