/**
 * The KPL aggregated record format, proven against an independent implementation: the
 * `aws-kinesis-agg` package (AWS Labs, protobufjs underneath) decodes what `AggregateBuilder`
 * encodes, and `deaggregate` decodes what its aggregator encodes.
 */
import { createHash } from "node:crypto"
import { describe, expect, it } from "vitest"
import {
  AGGREGATION_MAGIC,
  AggregateBuilder,
  AggregationFormatError,
  deaggregate,
  isAggregated,
  outgoing,
  type OutgoingRecord,
  type UserRecord
} from "../../services/shared/kinesis/aggregation.ts"
import { Random } from "../../tools/source/random.ts"
import { kinesisAgg as agg, protobufOf, referenceEncode, theirDeaggregate } from "../support/kpl-reference.ts"

const bytesOf = (record: OutgoingRecord): Buffer => (typeof record.data === "string" ? Buffer.from(record.data, "utf8") : Buffer.from(record.data))

const text = (partitionKey: string, data: string, explicitHashKey?: string): OutgoingRecord => ({ partitionKey, explicitHashKey, data, dataBytes: Buffer.byteLength(data) })

const PARTITION_KEYS = ["payment:7", "sales_order:1", "ü", "日本語のキー", "emoji 😀 key", "quote\"and\\slash", "a", "x".repeat(256), "tab\tnew\nline", "\u0000nul"]
const HASH_KEYS = ["0", "1", "170141183460469231731687303715884105728", String(2n ** 128n - 1n), "85070591730234615865843651857942052864"]
const TEXTS = ["", "{}", '{"kind":"change","after":{"name":"Zoë"}}', "naïve café ☕", "𝄞 music", "line\nbreak", "x".repeat(200)]

/** `length` characters (whole code points, never half a surrogate pair) drawn from `alphabet`. */
const chars = (rng: Random, alphabet: string, length: number) => Array.from({ length }, () => rng.pick(Array.from(alphabet))).join("")

/** A random user record: text or binary data (binary sometimes starting with the magic itself). */
const randomRecord = (rng: Random): OutgoingRecord => {
  const partitionKey = rng.chance(0.7) ? rng.pick(PARTITION_KEYS) : `key-${rng.int(0, 400)}-${chars(rng, "abcdéλ😀", rng.int(0, 6))}`
  const explicitHashKey = rng.chance(0.5) ? rng.pick(HASH_KEYS) : undefined
  if (rng.chance(0.5)) return text(partitionKey, rng.chance(0.5) ? rng.pick(TEXTS) : chars(rng, "abc\"\\é€😀\n", rng.int(0, 300)), explicitHashKey)
  const data = Uint8Array.from({ length: rng.int(0, 400) }, () => rng.int(0, 255))
  if (data.length >= 4 && rng.chance(0.2)) data.set(AGGREGATION_MAGIC, 0)
  return outgoing({ partitionKey, explicitHashKey, data })
}

const encode = (records: ReadonlyArray<OutgoingRecord>): Buffer => {
  const builder = new AggregateBuilder()
  for (const record of records) builder.add(record)
  return builder.encode()
}

/** Checks an aggregate against aws-kinesis-agg and protobufjs, record by record. */
const expectTheyRead = (data: Buffer, records: ReadonlyArray<OutgoingRecord>) => {
  const theirs = theirDeaggregate(data)
  expect(theirs.map((r) => r.partitionKey)).toEqual(records.map((r) => r.partitionKey))
  expect(theirs.map((r) => Buffer.from(r.data, "base64").toString("hex"))).toEqual(records.map((r) => bytesOf(r).toString("hex")))
  expect(theirs.map((r) => r.subSequenceNumber)).toEqual(records.map((_, i) => i))
  // aws-kinesis-agg reads an absent explicit_hash_key_index as 0 (protobufjs' default), so for a
  // record without one it reports the table's first key: compare explicit hash keys only where set…
  records.forEach((r, i) => {
    if (r.explicitHashKey !== undefined) expect(theirs[i]!.explicitPartitionKey).toBe(r.explicitHashKey)
  })
  // …and check with protobufjs directly that the field is absent exactly where it should be.
  const message = protobufOf(data)
  expect(message.records.map((r) => Object.prototype.hasOwnProperty.call(r, "explicit_hash_key_index"))).toEqual(records.map((r) => r.explicitHashKey !== undefined))
  // Tables hold each key once, in order of first use.
  expect(message.partition_key_table).toEqual([...new Set(records.map((r) => r.partitionKey))])
  expect(message.explicit_hash_key_table).toEqual([...new Set(records.flatMap((r) => (r.explicitHashKey === undefined ? [] : [r.explicitHashKey])))])
}

/** protobufjs encodes the same messages byte for byte (same field order, same tables). */
const expectSameBytesAsProtobufjs = (data: Buffer, records: ReadonlyArray<OutgoingRecord>) =>
  expect(data.toString("hex")).toBe(referenceEncode(records.map((r) => ({ ...r, data: bytesOf(r) }))).toString("hex"))

const expectWeRead = (data: Buffer, records: ReadonlyArray<OutgoingRecord>) => {
  const ours = deaggregate(data, "outer")
  expect(ours.map((r) => ({ partitionKey: r.partitionKey, explicitHashKey: r.explicitHashKey, data: Buffer.from(r.data).toString("hex") }))).toEqual(
    records.map((r) => ({ partitionKey: r.partitionKey, explicitHashKey: r.explicitHashKey, data: bytesOf(r).toString("hex") }))
  )
  // No explicitHashKey property at all when the record had none.
  expect(ours.map((r) => "explicitHashKey" in r)).toEqual(records.map((r) => r.explicitHashKey !== undefined))
}

describe("AggregateBuilder encodes what aws-kinesis-agg reads", () => {
  it("a single text record", () => {
    const records = [text("payment:7", '{"payment_id":7}')]
    const data = encode(records)
    expect(data.subarray(0, 4)).toEqual(Buffer.from([0xf3, 0x89, 0x9a, 0xc2]))
    // The trailer is the MD5 of the protobuf bytes between the magic and the trailer.
    expect(data.subarray(data.length - 16)).toEqual(createHash("md5").update(data.subarray(4, data.length - 16)).digest())
    expectTheyRead(data, records)
    expectWeRead(data, records)
  })

  it("pins the exact bytes of a small aggregate (hand-assembled protobuf)", () => {
    const data = encode([text("k", "hi", "5"), outgoing({ partitionKey: "k", data: Uint8Array.of(0, 255) })])
    const protobufBytes = Buffer.from([
      0x0a, 1, 0x6b, // partition_key_table: "k"
      0x12, 1, 0x35, // explicit_hash_key_table: "5"
      0x1a, 8, 0x08, 0, 0x10, 0, 0x1a, 2, 0x68, 0x69, // record {pk 0, ehk 0, data "hi"}
      0x1a, 6, 0x08, 0, 0x1a, 2, 0x00, 0xff // record {pk 0, data 00 ff}
    ])
    expect(data.toString("hex")).toBe(Buffer.concat([AGGREGATION_MAGIC, protobufBytes, createHash("md5").update(protobufBytes).digest()]).toString("hex"))
  })

  it("unicode partition keys, explicit hash keys, text and binary data, in order (many random aggregates)", () => {
    const rng = new Random("aggregation-roundtrip")
    for (let round = 0; round < 30; round++) {
      const records = Array.from({ length: rng.int(1, 80) }, () => randomRecord(rng))
      const data = encode(records)
      expectTheyRead(data, records)
      expectWeRead(data, records)
      expectSameBytesAsProtobufjs(data, records)
    }
  })

  it("more than 128 distinct partition and hash keys (two-byte table indexes)", () => {
    const records = Array.from({ length: 600 }, (_, i) => text(`key-${i % 300}`, `value ${i}`, i % 3 === 0 ? String(BigInt(i % 200) * 10n ** 30n) : undefined))
    const data = encode(records)
    expect(protobufOf(data).partition_key_table).toHaveLength(300)
    expect(protobufOf(data).explicit_hash_key_table).toHaveLength(200)
    expectTheyRead(data, records)
    expectWeRead(data, records)
    expectSameBytesAsProtobufjs(data, records)
  })

  it.each([0, 1, 127, 128, 16_383, 16_384, 100_000])("data of %i bytes (varint length boundaries)", (length) => {
    const data = Uint8Array.from({ length }, (_, i) => (i * 31 + 7) & 0xff)
    const records = [outgoing({ partitionKey: "p", data }), text("q", "é".repeat(length >> 1))]
    const encoded = encode(records)
    expectTheyRead(encoded, records)
    expectWeRead(encoded, records)
    expectSameBytesAsProtobufjs(encoded, records)
  })

  it("records near 1 MiB: one alone, and one among small ones", () => {
    const big = Buffer.alloc(1024 * 1024 - 300, 0x41)
    big[0] = 0xf3
    big[big.length - 1] = 0x00
    const alone = [outgoing({ partitionKey: "big", explicitHashKey: "42", data: big })]
    const encodedAlone = encode(alone)
    expect(encodedAlone.length).toBeLessThanOrEqual(1024 * 1024)
    expectTheyRead(encodedAlone, alone)
    expectWeRead(encodedAlone, alone)

    const mixed = [text("a", "small"), text("b", "A".repeat(700_000)), outgoing({ partitionKey: "c", data: Uint8Array.of(1) })]
    const encodedMixed = encode(mixed)
    expectTheyRead(encodedMixed, mixed)
    expectWeRead(encodedMixed, mixed)
  })

  it("an empty builder encodes an aggregate with no records", () => {
    const builder = new AggregateBuilder()
    expect(builder.count).toBe(0)
    expect(builder.size).toBe(20)
    const data = builder.encode()
    expect(data.toString("hex")).toBe(Buffer.concat([AGGREGATION_MAGIC, createHash("md5").update(Buffer.alloc(0)).digest()]).toString("hex"))
    expect(theirDeaggregate(data)).toEqual([])
    expect(deaggregate(data, "outer")).toEqual([])
  })
})

describe("AggregateBuilder sizes", () => {
  it("sizeWith predicts, and size equals, the encoded length after every added record", () => {
    const rng = new Random("aggregation-sizes")
    for (let round = 0; round < 6; round++) {
      const builder = new AggregateBuilder()
      const records: Array<OutgoingRecord> = []
      // Beyond 128 records in some rounds (two-byte varints for the table indexes).
      const n = round % 2 === 0 ? rng.int(130, 160) : rng.int(1, 60)
      for (let i = 0; i < n; i++) {
        // Beyond 128 distinct keys so that the index varints grow to two bytes along the way.
        const record = rng.chance(0.3) ? text(`k${i}`, "v", rng.chance(0.5) ? `${i}` : undefined) : randomRecord(rng)
        const predicted = builder.sizeWith(record)
        const before = builder.size
        builder.add(record)
        records.push(record)
        expect(builder.size).toBe(predicted)
        expect(predicted).toBeGreaterThan(before)
        expect(builder.count).toBe(records.length)
        expect(builder.encode().length).toBe(builder.size)
        expect(referenceEncode(records.map((r) => ({ ...r, data: bytesOf(r) }))).length).toBe(builder.size)
      }
      expectWeRead(builder.encode(), records)
    }
  })

  it("sizeWith does not add the record", () => {
    const builder = new AggregateBuilder()
    builder.add(text("a", "x"))
    const size = builder.size
    builder.sizeWith(text("new key", "data", "123"))
    expect(builder.size).toBe(size)
    expect(builder.count).toBe(1)
    expect(deaggregate(builder.encode(), "o")).toEqual([{ partitionKey: "a", data: Buffer.from("x") }])
  })

  it("a repeated partition key or hash key costs only its index", () => {
    const builder = new AggregateBuilder()
    builder.add(text("same-key", "x", "99"))
    // record: tag+len(1+1) + pk index (2) + ehk index (2) + data field (1+1+1) = 9
    expect(builder.sizeWith(text("same-key", "y", "99")) - builder.size).toBe(9)
    // a new partition key adds its table entry: 1 + 1 + 8
    expect(builder.sizeWith(text("other-ke", "y", "99")) - builder.size).toBe(9 + 10)
  })
})

describe("deaggregate reads aws-kinesis-agg's aggregates", () => {
  it("random batches built by its RecordAggregator", () => {
    const rng = new Random("their-aggregator")
    for (let round = 0; round < 25; round++) {
      const aggregator = new agg.RecordAggregator()
      const records: Array<{ partitionKey: string; explicitHashKey?: string; data: Buffer }> = []
      for (let i = rng.int(1, 60); i > 0; i--) {
        const r = randomRecord(rng)
        // Its aggregator drops an empty partition key or empty data as invalid.
        // Its tables are object keys listed by Object.keys, which puts integer-like keys ("0", "5")
        // first whatever their index: its aggregates are only right without such keys.
        const explicitHashKey = r.explicitHashKey === undefined ? undefined : `${r.explicitHashKey}${"0".repeat(10)}`
        const record = { partitionKey: r.partitionKey || "p", data: bytesOf(r).length > 0 ? bytesOf(r) : Buffer.from("x"), ...(explicitHashKey === undefined ? {} : { explicitHashKey }) }
        aggregator.addUserRecord(record)
        records.push(record)
      }
      const built = aggregator.build()
      expect(isAggregated(built.data)).toBe(true)
      // Its aggregator writes explicit_hash_key_index only for records that have a hash key, so
      // partition keys, hash keys and data can all be compared here.
      expect(deaggregate(built.data, built.partitionKey).map((u) => ({ ...u, data: Buffer.from(u.data).toString("hex") }))).toEqual(
        records.map((r) => ({ ...r, data: r.data.toString("hex") }))
      )
    }
  })
})

describe("deaggregate of records that are not (valid) aggregates", () => {
  const valid = encode([text("a", "one"), text("b", "two", "7")])

  it("a plain record is returned as itself with the outer partition key", () => {
    const plain = Buffer.from('{"kind":"heartbeat"}')
    const users = deaggregate(plain, "outer-key")
    expect(users).toHaveLength(1)
    expect(users[0]!.partitionKey).toBe("outer-key")
    expect(users[0]!.data).toBe(plain)
    expect("explicitHashKey" in users[0]!).toBe(false)
    expect(isAggregated(plain)).toBe(false)
  })

  it("the magic alone, or the magic with fewer than 16 more bytes, is not an aggregate", () => {
    for (const length of [4, 10, 19]) {
      const data = Buffer.alloc(length, 0x01)
      AGGREGATION_MAGIC.copy(data)
      expect(isAggregated(data)).toBe(false)
      expect(deaggregate(data, "k")).toEqual([{ partitionKey: "k", data }])
    }
    expect(isAggregated(Buffer.concat([AGGREGATION_MAGIC, Buffer.alloc(16)]))).toBe(true)
  })

  it("a view into a larger buffer is read at its own offset", () => {
    const padded = Buffer.concat([Buffer.from("garbage"), valid, Buffer.from("trailing")])
    const view = new Uint8Array(padded.buffer, padded.byteOffset + 7, valid.length)
    expect(deaggregate(view, "o")).toEqual([
      { partitionKey: "a", data: Buffer.from("one") },
      { partitionKey: "b", explicitHashKey: "7", data: Buffer.from("two") }
    ])
  })

  it("a flipped bit in the protobuf or in the digest: AggregationFormatError (aws-kinesis-agg agrees)", () => {
    for (const at of [4, 10, valid.length - 17, valid.length - 16, valid.length - 1]) {
      const corrupt = Buffer.from(valid)
      corrupt[at]! ^= 0x01
      expect(() => deaggregate(corrupt, "o")).toThrow(AggregationFormatError)
      expect(() => deaggregate(corrupt, "o")).toThrow(/digest mismatch/)
      expect(() => theirDeaggregate(corrupt)).toThrow(/checksum/)
    }
  })

  /** An aggregate around arbitrary protobuf bytes, with a correct digest. */
  const wrap = (protobufBytes: Buffer) => Buffer.concat([AGGREGATION_MAGIC, protobufBytes, createHash("md5").update(protobufBytes).digest()])
  const protobufOfValid = valid.subarray(4, valid.length - 16)

  it("truncated protobuf with a matching digest: AggregationFormatError at every cut but field boundaries", () => {
    // 0a 01 61 | 0a 01 62 | 12 01 37 | 1a 07 (08 00 1a 03 "one") | 1a 09 (08 01 10 00 1a 03 "two")
    expect(protobufOfValid.length).toBe(29)
    // A cut between top-level fields leaves a shorter message that is valid protobuf.
    const boundaries = new Map<number, Array<UserRecord>>([
      [3, []],
      [6, []],
      [9, []],
      [18, [{ partitionKey: "a", data: Buffer.from("one") }]]
    ])
    for (let cut = 1; cut < protobufOfValid.length; cut++) {
      const truncated = wrap(protobufOfValid.subarray(0, cut))
      const expected = boundaries.get(cut)
      if (expected) expect(deaggregate(truncated, "o"), `cut ${cut}`).toEqual(expected)
      else expect(() => deaggregate(truncated, "o"), `cut ${cut}`).toThrow(AggregationFormatError)
    }
    expect(() => deaggregate(wrap(protobufOfValid.subarray(0, 28)), "o")).toThrow(/truncated/)
  })

  it.each([
    ["a record whose partition key index is out of range", Buffer.from([0x0a, 1, 0x61, 0x1a, 5, 0x08, 1, 0x1a, 1, 0x78]), /partition key index 1 out of range/],
    ["a record whose hash key index is out of range", Buffer.from([0x0a, 1, 0x61, 0x1a, 7, 0x08, 0, 0x10, 0, 0x1a, 1, 0x78]), /explicit hash key index 0 out of range/],
    ["a record without data", Buffer.from([0x0a, 1, 0x61, 0x1a, 2, 0x08, 0]), /without partition key index or data/],
    ["a record without a partition key index", Buffer.from([0x0a, 1, 0x61, 0x1a, 3, 0x1a, 1, 0x78]), /without partition key index or data/],
    ["a record longer than the message", Buffer.from([0x0a, 1, 0x61, 0x1a, 9, 0x08, 0, 0x1a, 1, 0x78]), /truncated record/],
    ["a varint that never ends", Buffer.from([0x0a, 0xff, 0xff]), /truncated varint/],
    ["a wire type 3 (group) field", Buffer.from([0x0b]), /unsupported wire type 3/]
  ])("%s: AggregationFormatError", (_, protobufBytes, message) => {
    expect(() => deaggregate(wrap(protobufBytes), "o")).toThrow(AggregationFormatError)
    expect(() => deaggregate(wrap(protobufBytes), "o")).toThrow(message)
  })

  // BUG: skipping an unknown fixed64/fixed32 field moves past the end without a bounds check. A
  // truncated one at the end of a record jumps into the next record, which is then lost without
  // an error: 0a 01 61 | 1a 08 (08 00 1a 01 78 29 01 02) | 1a 05 (08 00 1a 01 79) gives only the
  // first record ("x") instead of throwing AggregationFormatError. (Needs a producer that writes
  // a malformed message with a correct digest.)
  it("a truncated fixed64 field inside a record: AggregationFormatError, not a lost record", () => {
    const protobufBytes = Buffer.from([0x0a, 1, 0x61, 0x1a, 8, 0x08, 0, 0x1a, 1, 0x78, 0x29, 1, 2, 0x1a, 5, 0x08, 0, 0x1a, 1, 0x79])
    expect(() => deaggregate(wrap(protobufBytes), "o")).toThrow(AggregationFormatError)
  })

  it("skips tags and unknown fields of every wire type", () => {
    const protobufBytes = Buffer.from([
      0x0a, 1, 0x61, // partition key "a"
      0x20, 0x96, 0x01, // unknown field 4, varint 150
      0x29, 1, 2, 3, 4, 5, 6, 7, 8, // unknown field 5, fixed64
      0x35, 1, 2, 3, 4, // unknown field 6, fixed32
      0x1a, 12, 0x08, 0, 0x22, 3, 0x0a, 1, 0x74, 0x1a, 1, 0x78, 0x38, 0x01, // record {pk 0, tag {key "t"}, data "x", unknown field 7}
      0x42, 2, 0x68, 0x69 // unknown field 8, bytes
    ])
    expect(deaggregate(wrap(protobufBytes), "o")).toEqual([{ partitionKey: "a", data: Buffer.from("x") }] satisfies Array<UserRecord>)
  })
})
