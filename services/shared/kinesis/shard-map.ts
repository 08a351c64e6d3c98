/**
 * Where a record lands: Kinesis hashes a record's partition key with MD5 into a 128-bit integer
 * and stores it in the open shard whose hash key range holds it (an explicit hash key replaces
 * the hash). The reader groups events by that shard and routes each aggregate with an explicit
 * hash key inside the shard's range, so every event lands where its own key would have put it.
 */
import { createHash, hash } from "node:crypto"
import { md5Words } from "./md5.ts"

export interface ShardInfo {
  readonly shardId: string
  /** Decimal text, as the Kinesis API gives it. */
  readonly startingHashKey: string
  readonly endingHashKey: string
}

/** Partition key of a source row: table and primary key, readable; hashed when it would pass Kinesis' 256 characters. */
export const partitionKeyFor = (table: string, key: unknown): string => {
  let values = ""
  if (key && typeof key === "object") {
    let first = true
    for (const column in key as Record<string, unknown>) {
      values += first ? String((key as Record<string, unknown>)[column]) : `,${String((key as Record<string, unknown>)[column])}`
      first = false
    }
  } else values = String(key ?? "")
  const text = `${table}:${values}`
  return text.length <= 256 ? text : createHash("sha256").update(text).digest("hex")
}

/** Kinesis' hash of a partition key: MD5 as an unsigned 128-bit integer. */
export const hashKeyOf = (partitionKey: string): bigint => {
  const digest = hash("md5", partitionKey, "buffer")
  return (digest.readBigUInt64BE(0) << 64n) | digest.readBigUInt64BE(8)
}

/** A 128-bit hash key as four unsigned 32-bit words, most significant first (compared without BigInt). */
type Words = readonly [number, number, number, number]

const wordsOf = (value: bigint): Words => [
  Number((value >> 96n) & 0xffffffffn),
  Number((value >> 64n) & 0xffffffffn),
  Number((value >> 32n) & 0xffffffffn),
  Number(value & 0xffffffffn)
]

/** a <= b (as 128-bit big-endian integers). */
const atMost = (a: Words, b: Words): boolean => {
  for (let i = 0; i < 4; i++) if (a[i]! !== b[i]!) return a[i]! < b[i]!
  return true
}

export class ShardMap {
  private readonly starts: ReadonlyArray<bigint>
  private readonly startWords: ReadonlyArray<Words>
  readonly shards: ReadonlyArray<ShardInfo>

  /** `shards`: the OPEN shards of the stream (their ranges cover the whole hash key space). */
  constructor(shards: ReadonlyArray<ShardInfo>) {
    if (shards.length === 0) throw new Error("a stream has at least one open shard")
    this.shards = [...shards].sort((a, b) => (BigInt(a.startingHashKey) < BigInt(b.startingHashKey) ? -1 : 1))
    this.starts = this.shards.map((s) => BigInt(s.startingHashKey))
    this.startWords = this.starts.map(wordsOf)
  }

  /** Index (into `shards`) of the shard that holds a hash key. */
  indexOf(hashKey: bigint): number {
    let lo = 0
    let hi = this.starts.length - 1
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1
      if (this.starts[mid]! <= hashKey) lo = mid
      else hi = mid - 1
    }
    return lo
  }

  /** The hot path (once per event): MD5 of the key, compared word by word. */
  indexOfPartitionKey(partitionKey: string): number {
    if (this.startWords.length === 1) return 0
    const digest = md5Words(partitionKey)
    let lo = 0
    let hi = this.startWords.length - 1
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1
      if (atMost(this.startWords[mid]!, digest)) lo = mid
      else hi = mid - 1
    }
    return lo
  }

  /** Same open shards (a reshard changes the set). */
  sameAs(other: ReadonlyArray<ShardInfo>): boolean {
    return other.length === this.shards.length && other.every((s) => this.shards.some((t) => t.shardId === s.shardId))
  }
}
