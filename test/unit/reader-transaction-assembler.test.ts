/**
 * pgoutput in, change events out. Messages are built as the walsender sends them
 * (test/support/pgoutput-wire.ts) and parsed by the reader's own parser (RawPgoutputPlugin), so
 * the assembler sees exactly the shapes pg-logical-replication produces: zero-padded begin/commit
 * LSNs, key-only old images, unchanged TOAST columns under the UNCHANGED_COLUMNS symbol.
 */
import { Result } from "effect"
import type { Pgoutput } from "pg-logical-replication"
import { describe, expect, it } from "vitest"
import { decodeStreamRecordResult, serializeChangeEvent, type ChangeEvent } from "../../contracts/change-event.ts"
import { RawPgoutputPlugin, UNCHANGED_COLUMNS } from "../../services/reader/pgoutput.ts"
import { TransactionAssembler, type AssemblerOutput } from "../../services/reader/transaction-assembler.ts"
import { PgType } from "../../services/reader/values.ts"
import { t, wire, type WireColumn } from "../support/pgoutput-wire.ts"

const PAYMENT = 16_400
const STAFF = 16_500
const CURRENCY = 16_600

const paymentColumns: ReadonlyArray<WireColumn> = [
  { name: "payment_id", typeOid: PgType.int4, key: true },
  { name: "payment_amount", typeOid: PgType.numeric },
  { name: "paid", typeOid: PgType.bool },
  { name: "last_updated", typeOid: PgType.timestamp },
  { name: "note", typeOid: 25 },
  { name: "doc", typeOid: PgType.jsonb },
  { name: "blob", typeOid: PgType.bytea },
  { name: "created_at", typeOid: PgType.timestamptz }
]

/** pgoutput flags every column as replica identity under REPLICA IDENTITY FULL. */
const staffColumns: ReadonlyArray<WireColumn> = [
  { name: "staff_id", typeOid: PgType.int4, key: true },
  { name: "first_name", typeOid: 25, key: true },
  { name: "notes", typeOid: 25, key: true }
]

const paymentRow = (id: string, amount: string) => [
  t(id),
  t(amount),
  t("t"),
  t("2024-02-23 11:11:10.072"),
  t('O\'Brien "quoted" \\ ü 😀'),
  t('{"a": [1, 2.5, "x"], "b": null}'),
  t("\\x00ff10"),
  t("2024-02-23 11:11:10.072345+05:30")
]

const paymentAfter = (id: number, amount: string) => ({
  payment_id: id,
  payment_amount: amount,
  paid: true,
  last_updated: "2024-02-23T11:11:10.072",
  note: 'O\'Brien "quoted" \\ ü 😀',
  doc: { a: [1, 2.5, "x"], b: null },
  blob: "AP8Q",
  created_at: "2024-02-23T05:41:10.072345Z"
})

/** A parser with the relations announced (as the walsender does before their first change). */
const newSession = () => {
  const plugin = new RawPgoutputPlugin({ protoVersion: 1, publicationNames: ["totes"], messages: true })
  // The session gives the assembler the catalog's primary keys (staff has REPLICA IDENTITY FULL here).
  const assembler = new TransactionAssembler("totesys", new Map([["public.staff", ["staff_id"]]]))
  const feed = (buffer: Buffer, lsn = "0/0"): AssemblerOutput => assembler.next(plugin.parse(buffer), lsn)
  expect(feed(wire.relation(PAYMENT, "public", "payment", "d", paymentColumns))).toEqual({ _tag: "Nothing" })
  expect(feed(wire.relation(STAFF, "public", "staff", "f", staffColumns))).toEqual({ _tag: "Nothing" })
  expect(feed(wire.relation(CURRENCY, "public", "currency", "d", [{ name: "currency_id", typeOid: PgType.int4, key: true }]))).toEqual({ _tag: "Nothing" })
  return { plugin, assembler, feed }
}

const eventsOf = (output: AssemblerOutput): ReadonlyArray<ChangeEvent> => {
  if (output._tag !== "Events") throw new Error(`expected events, got ${output._tag}`)
  return output.events
}

const only = (output: AssemblerOutput): ChangeEvent => {
  const events = eventsOf(output)
  expect(events).toHaveLength(1)
  return events[0]!
}

/** The event as it goes on the stream (symbol-keyed bookkeeping dropped), checked against the contract. */
const onStream = (event: ChangeEvent): unknown => {
  const text = serializeChangeEvent(event)
  expect(text).toBe(JSON.stringify(event))
  const decoded = Result.getOrThrow(decodeStreamRecordResult(text))
  expect(decoded).toEqual(JSON.parse(text))
  return JSON.parse(text)
}

const COMMIT_TIME = "2024-02-23T11:11:10.072Z"
const COMMITTED_AT = "2024-02-23T11:11:10.072123Z"

const source = (table: string, lsn: string, index: number, commitLsn = "0/150AFD0", xid = 731) => ({
  db: "totesys",
  schema: "public",
  table,
  commitLsn,
  lsn,
  xid,
  committedAt: COMMITTED_AT,
  index,
  snapshot: false
})

describe("TransactionAssembler", () => {
  it("a transaction of inserts, updates and deletes (REPLICA IDENTITY DEFAULT)", () => {
    const { feed, assembler } = newSession()
    expect(assembler.inTransaction).toBe(false)
    expect(feed(wire.begin("0/150AFD0", COMMIT_TIME, 731, 123n))).toEqual({ _tag: "Nothing" })
    expect(assembler.inTransaction).toBe(true)

    const insert = only(feed(wire.insert(PAYMENT, paymentRow("7", "552548.62")), "0/150ACD0"))
    expect(onStream(insert)).toEqual({
      kind: "change",
      schemaVersion: 1,
      id: "0/150AFD0:0",
      op: "c",
      source: source("payment", "0/150ACD0", 0),
      key: { payment_id: 7 },
      before: null,
      after: paymentAfter(7, "552548.62"),
      unchanged: []
    })

    // Update without a key change: no old image at all.
    const update = only(feed(wire.update(PAYMENT, paymentRow("7", "0.01")), "0/150AD40"))
    expect(onStream(update)).toEqual({
      kind: "change",
      schemaVersion: 1,
      id: "0/150AFD0:1",
      op: "u",
      source: source("payment", "0/150AD40", 1),
      key: { payment_id: 7 },
      before: null,
      after: paymentAfter(7, "0.01"),
      unchanged: []
    })

    // Update that changes the key: the old image is the key only (placeholders dropped).
    const oldKey = { kind: "K" as const, values: [t("7"), null, null, null, null, null, null, null] }
    const rekey = only(feed(wire.update(PAYMENT, paymentRow("8", "0.01"), oldKey), "0/150ADB0"))
    expect(onStream(rekey)).toEqual({
      kind: "change",
      schemaVersion: 1,
      id: "0/150AFD0:2",
      op: "u",
      source: source("payment", "0/150ADB0", 2),
      key: { payment_id: 8 },
      before: { payment_id: 7 },
      after: paymentAfter(8, "0.01"),
      unchanged: []
    })

    const del = only(feed(wire.delete(PAYMENT, "K", [t("8"), null, null, null, null, null, null, null]), "0/150AE20"))
    expect(onStream(del)).toEqual({
      kind: "change",
      schemaVersion: 1,
      id: "0/150AFD0:3",
      op: "d",
      source: source("payment", "0/150AE20", 3),
      key: { payment_id: 8 },
      before: { payment_id: 8 },
      after: null,
      unchanged: []
    })

    expect(feed(wire.commit("0/150AFD0", "0/150B000", COMMIT_TIME, 123n), "0/150B000")).toEqual({
      _tag: "Commit",
      commit: { commitLsn: "0/150AFD0", commitEndLsn: "0/150B000", committedAt: COMMITTED_AT, events: 4 }
    })
    expect(assembler.inTransaction).toBe(false)
  })

  it("the parser gives zero-padded begin/commit LSNs; events carry the canonical form", () => {
    const { plugin } = newSession()
    const begin = plugin.parse(wire.begin("1/A0", COMMIT_TIME, 9)) as Pgoutput.MessageBegin
    expect(begin.commitLsn).toBe("00000001/000000A0")
    const assembler = new TransactionAssembler("totesys")
    assembler.next(begin, "0/0")
    const relation = plugin.parse(wire.relation(CURRENCY, "public", "currency", "d", [{ name: "currency_id", typeOid: PgType.int4, key: true }]))
    assembler.next(relation, "0/0")
    // Row LSNs: canonical text kept, padded or lower-case text normalised.
    const lsns = ["1/9F", "00000001/0000009F", "1/9f", "0/0"].map((lsn) => only(assembler.next(plugin.parse(wire.insert(CURRENCY, [t("1")])), lsn)).source.lsn)
    expect(lsns).toEqual(["1/9F", "1/9F", "1/9F", "0/0"])
    const commit = assembler.next(plugin.parse(wire.commit("1/A0", "2/0", COMMIT_TIME)), "2/0")
    expect(commit).toEqual({ _tag: "Commit", commit: { commitLsn: "1/A0", commitEndLsn: "2/0", committedAt: "2024-02-23T11:11:10.072000Z", events: 4 } })
  })

  it("ids and indexes start again in every transaction, with that transaction's commit LSN", () => {
    const { feed } = newSession()
    const ids: Array<Array<string>> = []
    for (const [commitLsn, n] of [["0/1000", 3], ["0/2000", 1], ["0/3000", 0], ["0/4000", 2]] as const) {
      feed(wire.begin(commitLsn, COMMIT_TIME, 1))
      const batch: Array<string> = []
      for (let i = 0; i < n; i++) {
        const event = only(feed(wire.insert(CURRENCY, [t(String(i))]), "0/500"))
        expect(event.source.index).toBe(i)
        expect(event.source.commitLsn).toBe(commitLsn)
        batch.push(event.id)
      }
      const commit = feed(wire.commit(commitLsn, commitLsn, COMMIT_TIME))
      expect(commit._tag === "Commit" && commit.commit.events).toBe(n)
      ids.push(batch)
    }
    expect(ids).toEqual([["0/1000:0", "0/1000:1", "0/1000:2"], ["0/2000:0"], [], ["0/4000:0", "0/4000:1"]])
  })

  it("an unchanged TOAST column is listed, never given a value (REPLICA IDENTITY DEFAULT)", () => {
    const { feed } = newSession()
    feed(wire.begin("0/150AFD0", COMMIT_TIME, 731, 123n))
    const values = paymentRow("7", "1.00")
    values[4] = "unchanged"
    const event = only(feed(wire.update(PAYMENT, values), "0/150ACD0"))
    expect(event.unchanged).toEqual(["note"])
    expect(event.after).not.toHaveProperty("note")
    expect((event.after as Record<symbol, unknown>)[UNCHANGED_COLUMNS]).toEqual(["note"])
    const { note: _note, ...rest } = paymentAfter(7, "1.00")
    expect(onStream(event)).toEqual({
      kind: "change",
      schemaVersion: 1,
      id: "0/150AFD0:0",
      op: "u",
      source: source("payment", "0/150ACD0", 0),
      key: { payment_id: 7 },
      before: null,
      after: rest,
      unchanged: ["note"]
    })
  })

  it("REPLICA IDENTITY FULL: whole old images; an unchanged TOAST column takes the old image's value", () => {
    const { feed } = newSession()
    feed(wire.begin("0/150AFD0", COMMIT_TIME, 731, 123n))
    const long = "n".repeat(5000)
    const update = only(feed(wire.update(STAFF, [t("1"), t("Anne"), "unchanged"], { kind: "O", values: [t("1"), t("Ann"), t(long)] }), "0/150ACD0"))
    expect(update.before).toEqual({ staff_id: 1, first_name: "Ann", notes: long })
    expect(update.after).toEqual({ staff_id: 1, first_name: "Anne", notes: long })
    expect(update.unchanged).toEqual([])
    expect(update.op).toBe("u")

    const del = only(feed(wire.delete(STAFF, "O", [t("1"), t("Anne"), t(long)]), "0/150AD40"))
    expect(del.before).toEqual({ staff_id: 1, first_name: "Anne", notes: long })
    expect(del.after).toBeNull()
    expect(del.id).toBe("0/150AFD0:1")
    onStream(update)
    onStream(del)
  })

  // BUG: under REPLICA IDENTITY FULL pgoutput flags EVERY column as replica identity
  // (proto.c: "REPLICA IDENTITY FULL means all columns are sent as part of key"), and the
  // assembler takes relation.keyColumns as the event key. So the key, and the partition key made
  // from it, is the whole row: it changes whenever any column changes, the versions of one row go
  // to different shards (no per-row order), and it differs from the snapshot's primary-key key.
  it("REPLICA IDENTITY FULL: two versions of one row have the same key (the catalog's primary key)", () => {
    const { feed } = newSession()
    feed(wire.begin("0/150AFD0", COMMIT_TIME, 731))
    const first = only(feed(wire.insert(STAFF, [t("1"), t("Ann"), t("x")]), "0/150ACD0"))
    const second = only(feed(wire.update(STAFF, [t("1"), t("Anne"), t("x")], { kind: "O", values: [t("1"), t("Ann"), t("x")] }), "0/150AD40"))
    expect(second.key).toEqual(first.key)
  })

  it("a truncate of several relations gives one event per relation, in order, inside the transaction's numbering", () => {
    const { feed } = newSession()
    feed(wire.begin("0/150AFD0", COMMIT_TIME, 731, 123n))
    only(feed(wire.insert(CURRENCY, [t("1")]), "0/150AC00"))
    const events = eventsOf(feed(wire.truncate([PAYMENT, STAFF, CURRENCY], 1), "0/150ACD0"))
    expect(events.map(onStream)).toEqual(
      [
        ["payment", 1],
        ["staff", 2],
        ["currency", 3]
      ].map(([table, index]) => ({
        kind: "change",
        schemaVersion: 1,
        id: `0/150AFD0:${index}`,
        op: "t",
        source: source(table as string, "0/150ACD0", index as number),
        key: null,
        before: null,
        after: null,
        unchanged: []
      }))
    )
    const commit = feed(wire.commit("0/150AFD0", "0/150B000", COMMIT_TIME, 123n))
    expect(commit._tag === "Commit" && commit.commit.events).toBe(4)
  })

  it("a non-transactional logical message is passed on with its normalised LSN; a transactional one is ignored", () => {
    const { feed, plugin, assembler } = newSession()
    expect(feed(wire.message(false, "0/150B100", "totes-heartbeat", '{"at":"2024-02-23T11:11:10.072Z","ü":1}'), "0/150B100")).toEqual({
      _tag: "Message",
      message: { lsn: "0/150B100", prefix: "totes-heartbeat", content: '{"at":"2024-02-23T11:11:10.072Z","ü":1}' }
    })
    // Without an LSN in the message (the parser gives null for 0/0), the row LSN is used.
    const noLsn = plugin.parse(wire.message(false, "0/0", "p", "c")) as Pgoutput.MessageMessage
    expect(noLsn.messageLsn).toBeNull()
    expect(assembler.next(noLsn, "00000000/0150B200")).toEqual({ _tag: "Message", message: { lsn: "0/150B200", prefix: "p", content: "c" } })

    feed(wire.begin("0/150AFD0", COMMIT_TIME, 731))
    expect(feed(wire.message(true, "0/150AC00", "app", "inside"), "0/150AC00")).toEqual({ _tag: "Nothing" })
    // It takes no index.
    expect(only(feed(wire.insert(CURRENCY, [t("1")]), "0/150AC10")).id).toBe("0/150AFD0:0")
  })

  it("relation, type and origin messages produce nothing and do not open a transaction", () => {
    const { feed, assembler } = newSession()
    expect(feed(wire.type(90_000, "public", "mood"))).toEqual({ _tag: "Nothing" })
    expect(feed(wire.origin("0/10", "elsewhere"))).toEqual({ _tag: "Nothing" })
    expect(feed(wire.relation(PAYMENT, "public", "payment", "d", paymentColumns))).toEqual({ _tag: "Nothing" })
    expect(assembler.inTransaction).toBe(false)
  })

  it("commit, row changes and truncates outside a transaction are errors", () => {
    const { feed } = newSession()
    expect(() => feed(wire.commit("0/10", "0/20", COMMIT_TIME))).toThrow("pgoutput commit outside a transaction")
    expect(() => feed(wire.insert(CURRENCY, [t("1")]))).toThrow("pgoutput c outside a transaction")
    expect(() => feed(wire.update(CURRENCY, [t("1")]))).toThrow("pgoutput u outside a transaction")
    expect(() => feed(wire.delete(CURRENCY, "K", [t("1")]))).toThrow("pgoutput d outside a transaction")
    expect(() => feed(wire.truncate([CURRENCY]))).toThrow("pgoutput t outside a transaction")
    // After a commit the transaction is closed again.
    feed(wire.begin("0/30", COMMIT_TIME, 2))
    feed(wire.commit("0/30", "0/40", COMMIT_TIME))
    expect(() => feed(wire.commit("0/30", "0/40", COMMIT_TIME))).toThrow("pgoutput commit outside a transaction")
    expect(() => feed(wire.insert(CURRENCY, [t("1")]))).toThrow(/outside a transaction/)
  })

  it("hand-shaped messages: a key-only old image with undefined placeholders keeps only the key", () => {
    const assembler = new TransactionAssembler("db")
    const relation: Pgoutput.MessageRelation = {
      tag: "relation",
      relationOid: 1,
      schema: "s",
      name: "r",
      replicaIdentity: "default",
      columns: [],
      keyColumns: ["a", "b"]
    }
    assembler.next({ tag: "begin", commitLsn: "00000000/0150AFD0", commitTime: 1_708_686_670_072_123n, xid: 5 }, "0/0")
    const out = assembler.next({ tag: "delete", relation, key: { a: 1, b: "x", c: undefined }, old: null }, "0/150ACD0")
    const event = only(out)
    expect(event.before).toEqual({ a: 1, b: "x" })
    expect(Object.keys(event.before!)).toEqual(["a", "b"])
    expect(event.key).toEqual({ a: 1, b: "x" })
    expect(event.source.committedAt).toBe("2024-02-23T11:11:10.072123Z")
    // A key column missing from the key image is null in the key, absent from before.
    const partial = only(assembler.next({ tag: "delete", relation, key: { a: 2, b: undefined }, old: null }, "0/150ACD8"))
    expect(partial.key).toEqual({ a: 2, b: null })
    expect(Object.keys(partial.before!)).toEqual(["a"])
  })
})
