/** Routing of a partition key to its shard, against a BigInt oracle built on node:crypto. */
import { createHash } from "node:crypto"
import { describe, expect, it } from "vitest"
import { evenShards } from "../../services/shared/kinesis/publisher.ts"
import { hashKeyOf, partitionKeyFor, ShardMap, type ShardInfo } from "../../services/shared/kinesis/shard-map.ts"
import { Random } from "../../tools/source/random.ts"

const MAX = 2n ** 128n - 1n

/** MD5 of the UTF-8 key as an unsigned 128-bit integer, computed apart from the module. */
const md5BigInt = (key: string) => BigInt(`0x${createHash("md5").update(key, "utf8").digest("hex")}`)

/** The shard whose [start, end] holds the key's hash, by a linear scan (shards in any order). */
const oracleShardId = (shards: ReadonlyArray<ShardInfo>, key: string): string => {
  const hash = md5BigInt(key)
  const holders = shards.filter((s) => BigInt(s.startingHashKey) <= hash && hash <= BigInt(s.endingHashKey))
  if (holders.length !== 1) throw new Error(`test shards do not tile the hash space: ${holders.length} hold ${hash}`)
  return holders[0]!.shardId
}

const shard = (shardId: string, start: bigint, end: bigint): ShardInfo => ({ shardId, startingHashKey: start.toString(), endingHashKey: end.toString() })

/** Splits `parent` at `at` (Kinesis' SplitShard: the parent closes, two children cover its range). */
const split = (shards: ReadonlyArray<ShardInfo>, parentId: string, at: bigint, names: [string, string]): Array<ShardInfo> =>
  shards.flatMap((s) =>
    s.shardId === parentId ? [shard(names[0], BigInt(s.startingHashKey), at - 1n), shard(names[1], at, BigInt(s.endingHashKey))] : [s]
  )

/** Random partition keys like the reader's, plus unicode and long ones. */
const keys = (seed: string, count: number): Array<string> => {
  const rng = new Random(seed)
  const tables = ["payment", "sales_order", "staff", "counterparty", "purchase_order", "tâble", "表"]
  return Array.from({ length: count }, (_, i) => {
    const kind = i % 5
    if (kind === 0) return partitionKeyFor(rng.pick(tables), { id: rng.int(0, 1_000_000) })
    if (kind === 1) return partitionKeyFor(rng.pick(tables), { a: rng.int(0, 99), b: rng.chars("xyzé😀", rng.int(0, 12)).replace(/[\ud800-\udfff]/g, "") })
    if (kind === 2) return rng.chars("abcdefghijklmnopqrstuvwxyz0123456789:,", rng.int(1, 256))
    if (kind === 3) return `${rng.pick(tables)}:${"€".repeat(rng.int(0, 80))}`
    return String(rng.uint32())
  })
}

const LAYOUTS: Array<[string, ReadonlyArray<ShardInfo>]> = [
  ["1 shard", evenShards(1)],
  ["2 even shards", evenShards(2)],
  ["3 even shards", evenShards(3)],
  ["4 even shards", evenShards(4)],
  ["7 even shards", evenShards(7)],
  ["a split shard (uneven)", split(evenShards(2), "shardId-000000000000", 2n ** 125n + 12345n, ["shardId-000000000002", "shardId-000000000003"])],
  [
    "splits of splits, listed out of order",
    split(split(evenShards(3), "shardId-000000000001", 2n ** 127n, ["c1", "c2"]), "c2", 2n ** 127n + 2n ** 120n + 1n, ["d1", "d2"]).reverse()
  ],
  ["a one-key-wide shard", [shard("low", 0n, 2n ** 64n - 1n), shard("one", 2n ** 64n, 2n ** 64n), shard("high", 2n ** 64n + 1n, MAX)]]
]

describe("evenShards", () => {
  it.each([1, 2, 3, 4, 7])("%i shards tile 0..2^128-1 without gap or overlap", (count) => {
    const shards = evenShards(count)
    expect(shards.map((s) => s.shardId)).toEqual(Array.from({ length: count }, (_, i) => `shardId-${String(i).padStart(12, "0")}`))
    expect(BigInt(shards[0]!.startingHashKey)).toBe(0n)
    expect(BigInt(shards.at(-1)!.endingHashKey)).toBe(MAX)
    for (let i = 1; i < count; i++) expect(BigInt(shards[i]!.startingHashKey)).toBe(BigInt(shards[i - 1]!.endingHashKey) + 1n)
  })

  it("2 shards split at 2^127, as CreateStream does", () => {
    expect(evenShards(2).map((s) => [s.startingHashKey, s.endingHashKey])).toEqual([
      ["0", "170141183460469231731687303715884105727"],
      ["170141183460469231731687303715884105728", "340282366920938463463374607431768211455"]
    ])
  })
})

describe("hashKeyOf", () => {
  it("is the MD5 of the UTF-8 key as an unsigned 128-bit integer", () => {
    expect(hashKeyOf("")).toBe(0xd41d8cd98f00b204e9800998ecf8427en)
    for (const key of keys("hash-key-of", 500)) expect(hashKeyOf(key)).toBe(md5BigInt(key))
  })
})

describe("ShardMap", () => {
  const KEYS = keys("shard-map", 4000)

  it.each(LAYOUTS)("indexOfPartitionKey agrees with the BigInt oracle: %s", (name, shards) => {
    const map = new ShardMap(shards)
    const expected = KEYS.map((key) => oracleShardId(shards, key))
    expect(KEYS.map((key) => map.shards[map.indexOfPartitionKey(key)]!.shardId)).toEqual(expected)
    expect(KEYS.map((key) => map.shards[map.indexOf(hashKeyOf(key))]!.shardId)).toEqual(expected)
    // Every shard of an even layout receives keys (the comparison is not degenerate).
    if (name.includes("even")) expect(new Set(expected).size).toBe(shards.length)
  })

  it("orders shards by starting hash key", () => {
    const shards = LAYOUTS[6]![1]
    const map = new ShardMap(shards)
    const starts = map.shards.map((s) => BigInt(s.startingHashKey))
    expect([...starts].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0))).toEqual(starts)
    expect(map.shards.map((s) => s.shardId)).toEqual(["shardId-000000000000", "c1", "d1", "d2", "shardId-000000000002"])
  })

  it("a hash key equal to a shard's start belongs to that shard, one less to the shard before", () => {
    const rng = new Random("boundaries")
    for (let i = 0; i < 200; i++) {
      const key = `boundary-${i}`
      const hash = md5BigInt(key)
      // A shard that starts exactly at this key's hash.
      const shards = [shard("before", 0n, hash - 1n), shard("at", hash, hash + BigInt(rng.int(0, 3))), shard("after", hash + 4n, MAX)]
      const map = new ShardMap(shards)
      expect(map.shards[map.indexOfPartitionKey(key)]!.shardId).toBe("at")
      expect(map.shards[map.indexOf(hash - 1n)]!.shardId).toBe("before")
      expect(map.shards[map.indexOf(hash)]!.shardId).toBe("at")
      // And a shard that ends exactly at it.
      const ending = new ShardMap([shard("low", 0n, hash), shard("high", hash + 1n, MAX)])
      expect(ending.shards[ending.indexOfPartitionKey(key)]!.shardId).toBe("low")
    }
  })

  it("indexOf at the ends of the hash space", () => {
    const map = new ShardMap(evenShards(7))
    expect(map.indexOf(0n)).toBe(0)
    expect(map.indexOf(MAX)).toBe(6)
    for (const [i, s] of map.shards.entries()) {
      expect(map.indexOf(BigInt(s.startingHashKey))).toBe(i)
      expect(map.indexOf(BigInt(s.endingHashKey))).toBe(i)
    }
  })

  it("refuses an empty shard list", () => {
    expect(() => new ShardMap([])).toThrow(/at least one open shard/)
  })

  it("sameAs compares the set of shard ids", () => {
    const map = new ShardMap(evenShards(3))
    expect(map.sameAs(evenShards(3))).toBe(true)
    expect(map.sameAs([...evenShards(3)].reverse())).toBe(true)
    expect(map.sameAs(evenShards(2))).toBe(false)
    expect(map.sameAs(evenShards(4))).toBe(false)
    expect(map.sameAs(split(evenShards(3), "shardId-000000000002", 2n ** 127n + 2n ** 126n, ["a", "b"]).slice(1))).toBe(false)
  })
})

describe("partitionKeyFor", () => {
  it("table and key values, readable", () => {
    expect(partitionKeyFor("payment", { payment_id: 7 })).toBe("payment:7")
    expect(partitionKeyFor("sales_order", { a: 1, b: "x", c: null, d: true })).toBe("sales_order:1,x,null,true")
    expect(partitionKeyFor("t", {})).toBe("t:")
    expect(partitionKeyFor("t", 42)).toBe("t:42")
    expect(partitionKeyFor("t", "text")).toBe("t:text")
    expect(partitionKeyFor("t", null)).toBe("t:")
    expect(partitionKeyFor("t", undefined)).toBe("t:")
    expect(partitionKeyFor("tâble", { k: "日本" })).toBe("tâble:日本")
  })

  it("keeps a key of exactly 256 characters and hashes one of 257 (SHA-256 hex)", () => {
    const at256 = partitionKeyFor("t", { k: "x".repeat(254) })
    expect(at256).toBe(`t:${"x".repeat(254)}`)
    expect(at256).toHaveLength(256)
    const text257 = `t:${"x".repeat(255)}`
    const at257 = partitionKeyFor("t", { k: "x".repeat(255) })
    expect(at257).toBe(createHash("sha256").update(text257).digest("hex"))
    expect(at257).toMatch(/^[0-9a-f]{64}$/)
    // Different long keys stay different, the same long key hashes the same.
    expect(partitionKeyFor("t", { k: "y".repeat(300) })).not.toBe(partitionKeyFor("t", { k: "z".repeat(300) }))
    expect(partitionKeyFor("t", { a: 1, k: "y".repeat(300) })).toBe(partitionKeyFor("t", { a: 1, k: "y".repeat(300) }))
  })

  it("counts UTF-16 code units, so a kept key never has more than 256 characters", () => {
    // 127 astral characters are 254 code units (+ "t:" = 256): kept.
    expect(partitionKeyFor("t", { k: "😀".repeat(127) })).toBe(`t:${"😀".repeat(127)}`)
    // 128 of them are 258 code units (130 code points): hashed.
    expect(partitionKeyFor("t", { k: "😀".repeat(128) })).toBe(createHash("sha256").update(`t:${"😀".repeat(128)}`, "utf8").digest("hex"))
  })
})
