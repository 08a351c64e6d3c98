/**
 * The reader's outbox (lanes per shard, source positions that become durable): worked examples,
 * then a seeded random run checked step by step against a small reference model. Aggregates are
 * read back with protobufjs (test/support/kpl-reference.ts), not with the module's own decoder.
 */
import { describe, expect, it } from "vitest"
import { lsnFromBigInt } from "../../contracts/lsn.ts"
import { Outbox, type OutboundAggregate, type SourcePosition } from "../../services/reader/outbox.ts"
import { evenShards } from "../../services/shared/kinesis/publisher.ts"
import type { ShardInfo } from "../../services/shared/kinesis/shard-map.ts"
import { Random } from "../../tools/source/random.ts"
import { referenceDecode, referenceEncode } from "../support/kpl-reference.ts"

/** Kinesis counts the partition key against the record size limit (the outbox keeps 256 bytes for it). */

const position = (n: number): SourcePosition => ({ lsn: lsnFromBigInt(BigInt(n) * 0x100n), committedAt: new Date(Date.UTC(2024, 1, 23, 11, 0, n)).toISOString() })

const bytes = (text: string) => Buffer.byteLength(text)

/** Adds a text record with its true UTF-8 length. */
const add = (outbox: Outbox, shardIndex: number, partitionKey: string, data: string, label?: string) => outbox.add(shardIndex, partitionKey, data, bytes(data), label)

/** The records of an aggregate as [partitionKey, data] pairs, checking every one carries the lane's hash key. */
const contents = (aggregate: OutboundAggregate): Array<[string, string]> => {
  const records = referenceDecode(aggregate.data)
  expect(new Set(records.map((r) => r.explicitHashKey))).toEqual(new Set([aggregate.shard.startingHashKey]))
  return records.map((r) => [r.partitionKey, r.data.toString("utf8")])
}

/** Sends and accepts every aggregate of a lane; returns what they held. */
const drainLane = (outbox: Outbox, laneId: string): Array<[string, string]> => {
  const out: Array<[string, string]> = []
  for (let aggregate = outbox.nextAggregate(laneId); aggregate; aggregate = outbox.nextAggregate(laneId)) {
    out.push(...contents(aggregate))
    outbox.accepted(laneId, aggregate)
  }
  return out
}

const [A, B, C] = evenShards(3) as [ShardInfo, ShardInfo, ShardInfo]

describe("Outbox lanes", () => {
  it("a lane hands out one aggregate at a time, the same one again until it is accepted", () => {
    const outbox = new Outbox([A, B], { maxRecordBytes: 65_536 })
    add(outbox, 0, "payment:1", '{"n":1}', "payment:c")
    add(outbox, 0, "payment:2", '{"n":2}', "payment:u")
    const first = outbox.nextAggregate(A.shardId)!
    expect(contents(first)).toEqual([["payment:1", '{"n":1}'], ["payment:2", '{"n":2}']])
    expect(first).toMatchObject({ shard: A, partitionKey: "payment:1", explicitHashKey: A.startingHashKey, firstTicket: 0, records: 2, entryBytes: 14 })
    expect([...first.labels]).toEqual([["payment:c", 1], ["payment:u", 1]])
    const sent = Buffer.from(first.data)

    // A later record of the lane waits: the unaccepted aggregate comes back unchanged.
    add(outbox, 0, "payment:1", '{"n":3}', "payment:u")
    expect(outbox.nextAggregate(A.shardId)).toBe(first)
    expect(first.data.equals(sent)).toBe(true)
    expect(first.records).toBe(2)
    expect(outbox.hasWork(A.shardId)).toBe(true)

    outbox.accepted(A.shardId, first)
    const second = outbox.nextAggregate(A.shardId)!
    expect(contents(second)).toEqual([["payment:1", '{"n":3}']])
    expect(second.firstTicket).toBe(2)
    outbox.accepted(A.shardId, second)
    expect(outbox.nextAggregate(A.shardId)).toBeUndefined()
    expect(outbox.hasWork(A.shardId)).toBe(false)
    // The other lane never had anything.
    expect(outbox.hasWork(B.shardId)).toBe(false)
    expect(outbox.nextAggregate(B.shardId)).toBeUndefined()
  })

  it("accepting an aggregate the lane did not send throws and changes nothing", () => {
    const outbox = new Outbox([A, B], { maxRecordBytes: 65_536 })
    add(outbox, 0, "k", "a")
    add(outbox, 1, "k", "b")
    const a = outbox.nextAggregate(A.shardId)!
    const b = outbox.nextAggregate(B.shardId)!
    expect(() => outbox.accepted(A.shardId, b)).toThrow(/not sent from/)
    expect(() => outbox.accepted("shardId-999", a)).toThrow(/not sent from/)
    expect(outbox.bufferedRecords).toBe(2)
    outbox.accepted(A.shardId, a)
    expect(() => outbox.accepted(A.shardId, a)).toThrow(/not sent from/)
    expect(outbox.bufferedRecords).toBe(1)
  })

  it("add refuses a shard index outside the current shards", () => {
    const outbox = new Outbox([A, B], { maxRecordBytes: 65_536 })
    expect(() => add(outbox, 2, "k", "x")).toThrow(RangeError)
    expect(() => add(outbox, -1, "k", "x")).toThrow(RangeError)
    expect(outbox.bufferedRecords).toBe(0)
    expect(outbox.nextTicket).toBe(0)
  })

  it("buffered records and bytes count UTF-8 bytes until acceptance", () => {
    const outbox = new Outbox([A, B], { maxRecordBytes: 65_536 })
    expect(outbox.empty).toBe(true)
    add(outbox, 0, "k", "é") // 2 bytes
    add(outbox, 1, "k", "日本") // 6 bytes
    add(outbox, 1, "k", "😀") // 4 bytes
    expect([outbox.bufferedRecords, outbox.bufferedBytes, outbox.empty]).toEqual([3, 12, false])
    const b = outbox.nextAggregate(B.shardId)!
    expect(b.entryBytes).toBe(10)
    // In flight is still buffered.
    expect([outbox.bufferedRecords, outbox.bufferedBytes]).toEqual([3, 12])
    outbox.accepted(B.shardId, b)
    expect([outbox.bufferedRecords, outbox.bufferedBytes]).toEqual([1, 2])
    drainLane(outbox, A.shardId)
    expect([outbox.bufferedRecords, outbox.bufferedBytes, outbox.empty]).toEqual([0, 0, true])
  })

  it("maxUserRecordBytes leaves room for the partition key and the aggregate's framing", () => {
    expect(new Outbox([A], { maxRecordBytes: 1024 * 1024 }).maxUserRecordBytes).toBe(1024 * 1024 - 2048)
    expect(new Outbox([A], { maxRecordBytes: 65_536 }).maxUserRecordBytes).toBe(65_536 - 2048)
  })

  it("aggregates hold exactly the lane's records in order and stay within the record limit (64 KiB records, short keys)", () => {
    const maxRecordBytes = 65_536
    const outbox = new Outbox([A, B, C], { maxRecordBytes })
    const rng = new Random("outbox-limit")
    const expected: Array<Array<[string, string]>> = [[], [], []]
    const sizes = [0, 1, 100, 5000, 30_000, outbox.maxUserRecordBytes - 1, outbox.maxUserRecordBytes]
    for (let i = 0; i < 120; i++) {
      const lane = rng.int(0, 2)
      const key = `sales_order:${rng.int(1, 99_999)}`
      const size = rng.chance(0.3) ? rng.pick(sizes) : rng.int(0, 3000)
      const data = `${"é".repeat(size >> 2)}${"x".repeat(size - 2 * (size >> 2))}`
      expect(bytes(data)).toBe(size)
      add(outbox, lane, key, data)
      expected[lane]!.push([key, data])
    }
    ;[A, B, C].forEach((shard, lane) => {
      const got: Array<[string, string]> = []
      for (let aggregate = outbox.nextAggregate(shard.shardId); aggregate; aggregate = outbox.nextAggregate(shard.shardId)) {
        expect(aggregate.data.length + bytes(aggregate.partitionKey)).toBeLessThanOrEqual(maxRecordBytes)
        if (aggregate.records > 1) expect(aggregate.data.length + bytes(aggregate.partitionKey)).toBeLessThanOrEqual(maxRecordBytes)
        got.push(...contents(aggregate))
        outbox.accepted(shard.shardId, aggregate)
      }
      expect(got).toEqual(expected[lane])
    })
    expect(outbox.empty).toBe(true)
  })

  // BUG: the 64 bytes kept for the aggregate's framing do not cover a partition key of up to 256
  // characters (its table entry, the 39-digit explicit hash key, the magic and the digest).
  // A user record of maxUserRecordBytes with a 256-character key gives an aggregate 12 bytes over
  // maxRecordBytes, and 268 bytes over with the outer partition key that Kinesis also counts.
  it("a user record of maxUserRecordBytes with a 256-character partition key fits in one Kinesis record", () => {
    const maxRecordBytes = 65_536
    const outbox = new Outbox(evenShards(2), { maxRecordBytes })
    const key = `t:${"x".repeat(254)}`
    add(outbox, 1, key, "a".repeat(outbox.maxUserRecordBytes))
    const aggregate = outbox.nextAggregate(evenShards(2)[1]!.shardId)!
    expect(contents(aggregate)).toEqual([[key, "a".repeat(outbox.maxUserRecordBytes)]])
    expect(aggregate.data.length + bytes(aggregate.partitionKey)).toBeLessThanOrEqual(maxRecordBytes)
  })

  it("thousands of records through one lane, sent while more arrive (entries are compacted on the way)", () => {
    const outbox = new Outbox([A], { maxRecordBytes: 1024 })
    const expected: Array<[string, string]> = []
    const got: Array<[string, string]> = []
    const addNext = () => {
      const i = expected.length
      const entry: [string, string] = [`k:${i % 97}`, `{"i":${i},"s":"${"z".repeat(i % 40)}"}`]
      add(outbox, 0, ...entry)
      expected.push(entry)
    }
    for (let i = 0; i < 1500; i++) addNext()
    // One aggregate out (about a dozen records), two records in: the backlog shrinks while the lane
    // has consumed more than half its entries, which is when it compacts them.
    while (outbox.hasWork(A.shardId)) {
      const aggregate = outbox.nextAggregate(A.shardId)!
      // Every aggregate takes the lane's oldest records: its first ticket is the next expected one.
      expect(aggregate.firstTicket).toBe(got.length)
      got.push(...contents(aggregate))
      outbox.accepted(A.shardId, aggregate)
      if (expected.length < 2600) {
        addNext()
        addNext()
      }
    }
    expect(got).toEqual(expected)
    expect(outbox.empty).toBe(true)
  })
})

describe("Outbox positions", () => {
  it("a position with nothing before it is durable at once, and is returned once", () => {
    const outbox = new Outbox([A, B], { maxRecordBytes: 65_536 })
    expect(outbox.takeDurable()).toBeUndefined()
    outbox.addPosition(position(1))
    expect(outbox.lastPosition).toEqual(position(1))
    expect(outbox.takeDurable()).toEqual(position(1))
    expect(outbox.takeDurable()).toBeUndefined()
  })

  it("a position waits for every record added before it in any lane; the newest durable one wins", () => {
    const outbox = new Outbox([A, B], { maxRecordBytes: 65_536 })
    add(outbox, 0, "k", "t0") // ticket 0, lane A
    outbox.addPosition(position(1))
    add(outbox, 1, "k", "t1") // ticket 1, lane B
    outbox.addPosition(position(2))
    add(outbox, 0, "k", "t2") // ticket 2, lane A (behind t0)
    outbox.addPosition(position(3))

    const b = outbox.nextAggregate(B.shardId)!
    outbox.accepted(B.shardId, b)
    // Lane A still holds ticket 0: nothing is durable.
    expect(outbox.takeDurable()).toBeUndefined()
    expect(outbox.acceptedBefore(1)).toBe(false)
    expect(outbox.acceptedBefore(0)).toBe(true)

    const a = outbox.nextAggregate(A.shardId)! // t0 and t2 together
    expect(a.records).toBe(2)
    expect(outbox.takeDurable()).toBeUndefined()
    outbox.accepted(A.shardId, a)
    // Positions 1, 2 and 3 are all durable: only the newest is returned, and only once.
    expect(outbox.takeDurable()).toEqual(position(3))
    expect(outbox.takeDurable()).toBeUndefined()
    expect(outbox.acceptedBefore(outbox.nextTicket)).toBe(true)
  })

  it("a position becomes durable as soon as the records before it are, even if later ones are pending", () => {
    const outbox = new Outbox([A, B], { maxRecordBytes: 65_536 })
    add(outbox, 0, "k", "t0")
    outbox.addPosition(position(1))
    add(outbox, 1, "k", "t1")
    add(outbox, 0, "k", "t2")
    outbox.addPosition(position(2))
    const a = outbox.nextAggregate(A.shardId)!
    expect(a.records).toBe(2)
    outbox.accepted(A.shardId, a)
    // t1 (lane B) is pending: position 1 is durable, position 2 is not.
    expect(outbox.takeDurable()).toEqual(position(1))
    expect(outbox.takeDurable()).toBeUndefined()
    drainLane(outbox, B.shardId)
    expect(outbox.takeDurable()).toEqual(position(2))
  })

  it("nextTicket is a barrier for everything added so far", () => {
    const outbox = new Outbox([A, B], { maxRecordBytes: 65_536 })
    expect(outbox.nextTicket).toBe(0)
    expect(outbox.acceptedBefore(0)).toBe(true)
    add(outbox, 1, "k", "x")
    add(outbox, 0, "k", "y")
    const barrier = outbox.nextTicket
    expect(barrier).toBe(2)
    add(outbox, 0, "k", "later")
    drainLane(outbox, B.shardId)
    expect(outbox.acceptedBefore(barrier)).toBe(false)
    expect(outbox.acceptedBefore(1)).toBe(true)
    const a = outbox.nextAggregate(A.shardId)!
    expect(contents(a).map(([, d]) => d)).toEqual(["y", "later"])
    outbox.accepted(A.shardId, a)
    expect(outbox.acceptedBefore(barrier)).toBe(true)
  })

  it("dropUnpositionedTail forgets pending records after the last position, not those in flight", () => {
    const outbox = new Outbox([A, B], { maxRecordBytes: 65_536 })
    add(outbox, 0, "k", "kept-a") // 0
    add(outbox, 1, "k", "kept-b") // 1
    outbox.addPosition(position(1))
    add(outbox, 0, "k", "tail-in-flight") // 2
    const a = outbox.nextAggregate(A.shardId)! // tickets 0 and 2
    add(outbox, 0, "k", "tail-a") // 3
    add(outbox, 1, "k", "tail-b1") // 4
    add(outbox, 1, "k", "tail-b2") // 5
    expect(outbox.bufferedRecords).toBe(6)
    expect(outbox.dropUnpositionedTail()).toBe(3)
    expect(outbox.bufferedRecords).toBe(3)
    expect(outbox.bufferedBytes).toBe(bytes("kept-a") + bytes("kept-b") + bytes("tail-in-flight"))
    expect(outbox.nextAggregate(A.shardId)).toBe(a)
    outbox.accepted(A.shardId, a)
    expect(outbox.nextAggregate(A.shardId)).toBeUndefined()
    expect(drainLane(outbox, B.shardId)).toEqual([["k", "kept-b"]])
    expect(outbox.empty).toBe(true)
    expect(outbox.takeDurable()).toEqual(position(1))
    // A second call finds nothing more.
    expect(outbox.dropUnpositionedTail()).toBe(0)
  })

  it("dropUnpositionedTail without any position forgets every pending record", () => {
    const outbox = new Outbox([A, B], { maxRecordBytes: 65_536 })
    add(outbox, 0, "k", "x")
    add(outbox, 1, "k", "y")
    expect(outbox.dropUnpositionedTail()).toBe(2)
    expect([outbox.bufferedRecords, outbox.bufferedBytes, outbox.empty]).toEqual([0, 0, true])
    expect(outbox.hasWork(A.shardId) || outbox.hasWork(B.shardId)).toBe(false)
  })
})

describe("Outbox reshard", () => {
  const [B1, B2] = [
    { shardId: "shardId-000000000003", startingHashKey: B.startingHashKey, endingHashKey: ((BigInt(B.startingHashKey) + BigInt(B.endingHashKey)) / 2n).toString() },
    { shardId: "shardId-000000000004", startingHashKey: ((BigInt(B.startingHashKey) + BigInt(B.endingHashKey)) / 2n + 1n).toString(), endingHashKey: B.endingHashKey }
  ]

  it("new shards get lanes; a lane of a closed shard drains, then disappears", () => {
    const outbox = new Outbox([A, B, C], { maxRecordBytes: 65_536 })
    add(outbox, 1, "k", "old-b")
    const inFlight = outbox.nextAggregate(B.shardId)!
    add(outbox, 1, "k", "old-b-pending")
    outbox.reshard([A, B1, B2, C])
    expect(outbox.shards.map((s) => s.shardId)).toEqual([A.shardId, B1.shardId, B2.shardId, C.shardId])
    expect(outbox.laneIds().sort()).toEqual([A.shardId, B.shardId, C.shardId, B1.shardId, B2.shardId].sort())
    // Index 1 now means B1.
    add(outbox, 1, "k", "new-b1")
    expect(drainLane(outbox, B1.shardId)).toEqual([["k", "new-b1"]])
    // The closed shard's lane still sends what it holds, with its own hash key, in order.
    expect(outbox.nextAggregate(B.shardId)).toBe(inFlight)
    outbox.accepted(B.shardId, inFlight)
    expect(outbox.laneIds()).toContain(B.shardId)
    const rest = outbox.nextAggregate(B.shardId)!
    expect(rest.explicitHashKey).toBe(B.startingHashKey)
    expect(contents(rest)).toEqual([["k", "old-b-pending"]])
    outbox.accepted(B.shardId, rest)
    expect(outbox.laneIds().sort()).toEqual([A.shardId, C.shardId, B1.shardId, B2.shardId].sort())
    expect(outbox.hasWork(B.shardId)).toBe(false)
    expect(outbox.nextAggregate(B.shardId)).toBeUndefined()
    expect(outbox.empty).toBe(true)
  })

  it("a lane of a closed shard with nothing to send goes at once; an unchanged shard keeps its lane and records", () => {
    const outbox = new Outbox([A, B, C], { maxRecordBytes: 65_536 })
    add(outbox, 0, "k", "a1")
    outbox.reshard([A, B1, B2, C])
    expect(outbox.laneIds().sort()).toEqual([A.shardId, B1.shardId, B2.shardId, C.shardId].sort())
    expect(drainLane(outbox, A.shardId)).toEqual([["k", "a1"]])
    // The same shards again: nothing changes.
    outbox.reshard([A, B1, B2, C])
    expect(outbox.laneIds().sort()).toEqual([A.shardId, B1.shardId, B2.shardId, C.shardId].sort())
  })

  it("positions wait for the records of retired lanes too", () => {
    const outbox = new Outbox([A, B], { maxRecordBytes: 65_536 })
    add(outbox, 1, "k", "old")
    outbox.addPosition(position(1))
    outbox.reshard([A, B1, B2])
    add(outbox, 1, "k", "new")
    outbox.addPosition(position(2))
    drainLane(outbox, B1.shardId)
    expect(outbox.takeDurable()).toBeUndefined()
    drainLane(outbox, B.shardId)
    expect(outbox.takeDurable()).toEqual(position(2))
  })
})

// ---------------------------------------------------------------------------------------------
// Seeded random run against a reference model.

interface ModelRecord {
  readonly ticket: number
  readonly laneId: string
  readonly partitionKey: string
  readonly data: string
  readonly bytes: number
  readonly label: string | undefined
  inFlight: boolean
}

/** What the outbox should hold: only records not yet accepted (or dropped) are kept. */
class Model {
  live: Array<ModelRecord> = []
  positions: Array<SourcePosition & { readonly ticket: number }> = []
  inFlight = new Map<string, { readonly aggregate: OutboundAggregate; readonly hex: string; readonly tickets: ReadonlyArray<number> }>()
  nextTicket = 0
  lastPositionTicket = 0
  newest: SourcePosition | undefined
  shardsById = new Map<string, ShardInfo>()

  constructor(public current: ReadonlyArray<ShardInfo>) {
    for (const s of current) this.shardsById.set(s.shardId, s)
  }

  pending(laneId: string) {
    return this.live.filter((r) => r.laneId === laneId && !r.inFlight)
  }

  laneIds(): Array<string> {
    return [...new Set([...this.current.map((s) => s.shardId), ...this.live.map((r) => r.laneId)])].sort()
  }

  durable(): SourcePosition | undefined {
    const lowest = Math.min(...this.live.map((r) => r.ticket))
    const taken = this.positions.filter((p) => p.ticket <= lowest)
    this.positions = this.positions.filter((p) => p.ticket > lowest)
    const newest = taken.at(-1)
    return newest && { lsn: newest.lsn, committedAt: newest.committedAt }
  }
}

/** A history of reshards: splits and merges, every shard id new (as Kinesis does). */
const reshardHistory = (): Array<ReadonlyArray<ShardInfo>> => {
  const mid = (s: ShardInfo) => (BigInt(s.startingHashKey) + BigInt(s.endingHashKey)) / 2n
  const child = (id: string, start: bigint, end: bigint): ShardInfo => ({ shardId: id, startingHashKey: start.toString(), endingHashKey: end.toString() })
  const [a, b, c] = evenShards(3) as [ShardInfo, ShardInfo, ShardInfo]
  const b1 = child("b1", BigInt(b.startingHashKey), mid(b))
  const b2 = child("b2", mid(b) + 1n, BigInt(b.endingHashKey))
  const m = child("merged-b", BigInt(b.startingHashKey), BigInt(b.endingHashKey))
  const a1 = child("a1", 0n, mid(a))
  const a2 = child("a2", mid(a) + 1n, BigInt(a.endingHashKey))
  const am = child("merged-am", 0n, BigInt(b.endingHashKey))
  return [[a, b, c], [a, b1, b2, c], [a, m, c], [a1, a2, m, c], [am, c]]
}

/** JSON-like text of up to ~3000 UTF-8 bytes (most records small, some large). */
const randomData = (rng: Random): string => {
  const size = rng.chance(0.05) ? rng.int(1000, 3000) : rng.int(0, 120)
  let text = '{"v":"'
  for (let length = bytes(text); length < size; ) {
    const piece = rng.pick(["a", "b", "é", "€", "😀", "\\n", '\\"', " "])
    text += piece
    length += bytes(piece)
  }
  return `${text}"}`
}

const runModel = (seed: string, steps: number) => {
  const rng = new Random(seed)
  const maxRecordBytes = 4096
  // Kinesis counts the record's partition key (the aggregate's first key) against the limit.
  const maxAggregate = (partitionKey: string) => maxRecordBytes - bytes(partitionKey)
  const history = reshardHistory()
  let layout = 0
  const outbox = new Outbox(history[0]!, { maxRecordBytes })
  const model = new Model(history[0]!)
  const counts = { add: 0, aggregates: 0, accepted: 0, durable: 0, reshards: 0, repeats: 0 }

  /** Everything observable at once (one comparison per step keeps the run fast). */
  const check = () => {
    const live = model.live
    const t = rng.int(0, model.nextTicket + 1)
    const laneIds = [...model.shardsById.keys()]
    const observed = {
      bufferedRecords: outbox.bufferedRecords,
      bufferedBytes: outbox.bufferedBytes,
      empty: outbox.empty,
      nextTicket: outbox.nextTicket,
      lastPosition: outbox.lastPosition,
      shards: outbox.shards.map((s) => s.shardId),
      laneIds: outbox.laneIds().sort(),
      hasWork: laneIds.map((id) => outbox.hasWork(id)),
      acceptedBefore: outbox.acceptedBefore(t)
    }
    const expected = {
      bufferedRecords: live.length,
      bufferedBytes: live.reduce((sum, r) => sum + r.bytes, 0),
      empty: live.length === 0,
      nextTicket: model.nextTicket,
      lastPosition: model.newest,
      shards: model.current.map((s) => s.shardId),
      laneIds: model.laneIds(),
      hasWork: laneIds.map((id) => live.some((r) => r.laneId === id)),
      acceptedBefore: !live.some((r) => r.ticket < t)
    }
    expect(observed).toEqual(expected)
  }

  const nextAggregate = (laneId: string) => {
    const aggregate = outbox.nextAggregate(laneId)
    const sent = model.inFlight.get(laneId)
    if (sent) {
      counts.repeats++
      expect(aggregate).toBe(sent.aggregate)
      expect(aggregate!.data.toString("hex")).toBe(sent.hex)
      return
    }
    const pending = model.pending(laneId)
    if (pending.length === 0) {
      expect(aggregate).toBeUndefined()
      return
    }
    expect(aggregate).toBeDefined()
    const shard = model.shardsById.get(laneId)!
    const taken = pending.slice(0, aggregate!.records)
    expect(aggregate!.records).toBeGreaterThan(0)
    expect(aggregate!.shard).toEqual(shard)
    expect(aggregate!.explicitHashKey).toBe(shard.startingHashKey)
    expect(aggregate!.partitionKey).toBe(taken[0]!.partitionKey)
    expect(aggregate!.firstTicket).toBe(taken[0]!.ticket)
    expect(aggregate!.entryBytes).toBe(taken.reduce((sum, r) => sum + r.bytes, 0))
    const labels = new Map<string, number>()
    for (const r of taken) if (r.label) labels.set(r.label, (labels.get(r.label) ?? 0) + 1)
    expect(aggregate!.labels).toEqual(labels)
    expect(referenceDecode(aggregate!.data).map((r) => ({ ...r, data: r.data.toString("utf8") }))).toEqual(
      taken.map((r) => ({ partitionKey: r.partitionKey, explicitHashKey: shard.startingHashKey, data: r.data }))
    )
    expect(aggregate!.data.length).toBeLessThanOrEqual(maxAggregate(aggregate!.partitionKey))
    // Greedy: the lane's next record would not have fitted.
    const next = pending[taken.length]
    if (next) {
      const withNext = [...taken, next].map((r) => ({ partitionKey: r.partitionKey, explicitHashKey: shard.startingHashKey, data: Buffer.from(r.data) }))
      expect(referenceEncode(withNext).length).toBeGreaterThan(maxAggregate(aggregate!.partitionKey))
    }
    for (const r of taken) r.inFlight = true
    model.inFlight.set(laneId, { aggregate: aggregate!, hex: aggregate!.data.toString("hex"), tickets: taken.map((r) => r.ticket) })
    counts.aggregates++
  }

  for (let step = 0; step < steps; step++) {
    const op = rng.weightedIndex([45, 8, 20, 18, 8, 1])
    if (op === 0) {
      const index = rng.int(0, model.current.length - 1)
      const partitionKey = rng.chance(0.1) ? `tâble:${rng.int(0, 50)}` : `payment:${rng.int(0, 500)}`
      const data = randomData(rng)
      const label = rng.chance(0.2) ? undefined : rng.pick(["payment:c", "payment:u", "staff:d"])
      outbox.add(index, partitionKey, data, bytes(data), label)
      model.live.push({ ticket: model.nextTicket++, laneId: model.current[index]!.shardId, partitionKey, data, bytes: bytes(data), label, inFlight: false })
      counts.add++
    } else if (op === 1) {
      const p = position(step)
      outbox.addPosition(p)
      model.positions.push({ ...p, ticket: model.nextTicket })
      model.lastPositionTicket = model.nextTicket
      model.newest = p
    } else if (op === 2) {
      nextAggregate(rng.chance(0.02) ? "unknown-lane" : rng.pick([...model.shardsById.keys()]))
    } else if (op === 3) {
      // Acceptances come in any lane order.
      const lanes = [...model.inFlight.keys()]
      if (lanes.length > 0) {
        const laneId = rng.pick(lanes)
        const { aggregate, tickets } = model.inFlight.get(laneId)!
        outbox.accepted(laneId, aggregate)
        model.inFlight.delete(laneId)
        model.live = model.live.filter((r) => !tickets.includes(r.ticket))
        counts.accepted++
      }
    } else if (op === 4) {
      const expected = model.durable()
      expect(outbox.takeDurable()).toEqual(expected)
      if (expected) counts.durable++
    } else if (op === 5 && layout + 1 < history.length) {
      const shards = history[++layout]!
      outbox.reshard(shards)
      model.current = shards
      for (const s of shards) model.shardsById.set(s.shardId, s)
      counts.reshards++
    }
    check()
  }

  // Stop: the tail after the last position goes; what was in flight or before it stays.
  const dropped = model.live.filter((r) => !r.inFlight && r.ticket >= model.lastPositionTicket)
  expect(outbox.dropUnpositionedTail()).toBe(dropped.length)
  model.live = model.live.filter((r) => !dropped.includes(r))
  expect(outbox.bufferedRecords).toBe(model.live.length)
  expect(outbox.bufferedBytes).toBe(model.live.reduce((sum, r) => sum + r.bytes, 0))
  // Drain everything that is left, lane by lane.
  for (const laneId of outbox.laneIds()) {
    for (;;) {
      nextAggregate(laneId)
      const sent = model.inFlight.get(laneId)
      if (!sent) break
      outbox.accepted(laneId, sent.aggregate)
      model.inFlight.delete(laneId)
      model.live = model.live.filter((r) => !sent.tickets.includes(r.ticket))
    }
  }
  expect(outbox.empty).toBe(true)
  expect(outbox.takeDurable()).toEqual(model.durable())
  expect(outbox.takeDurable()).toBeUndefined()
  return counts
}

describe("Outbox against a reference model (seeded random adds, positions, sends and acceptances in random lane order)", () => {
  it.each(["seed-1", "seed-2", "seed-3"])("%s", (seed) => {
    const counts = runModel(seed, 2000)
    // The run exercised every path (the model is not vacuous).
    expect(counts.add).toBeGreaterThan(700)
    expect(counts.aggregates).toBeGreaterThan(60)
    expect(counts.accepted).toBeGreaterThan(60)
    expect(counts.durable).toBeGreaterThan(20)
    expect(counts.repeats).toBeGreaterThan(10)
    expect(counts.reshards).toBeGreaterThan(0)
  })
})
