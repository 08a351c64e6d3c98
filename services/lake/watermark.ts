/**
 * The lake watermark, from the lake's own records (pure: no I/O).
 *
 * The reader writes a heartbeat to every shard (`heartbeat:<shardId>:<lsn>:<emittedAt>`) after
 * everything committed before its position was accepted by Kinesis; a shard keeps its records in
 * order and the lake archives each shard in order, so once a shard's heartbeat is in the lake,
 * every change of that shard committed before the heartbeat's position is in the lake too. The
 * lake is therefore complete up to the minimum over shards of each shard's newest archived
 * heartbeat: `lakeWatermark(newestByShard)`.
 *
 * Which shards count: every shard the lake holds a heartbeat of, except shards whose newest
 * heartbeat was emitted more than `retirementMs` (default 10 minutes) before the newest heartbeat
 * of the whole lake. The reader heartbeats every open shard every few seconds, so such a shard is
 * one a reshard closed (its heartbeats stopped); until then it holds the watermark at the split,
 * which also covers the children's first minute (the reader re-lists shards once a minute). The
 * price: a shard whose delivery alone lags by more than `retirementMs` while the others keep
 * arriving is taken for closed.
 */
import { Schema } from "effect"
import { Heartbeat } from "../../contracts/change-event.ts"
import { compareLsn, isLsn, lsnToBigInt, normalizeLsn } from "../../contracts/lsn.ts"

/** After this long without a heartbeat while other shards have them, a shard counts as closed by a reshard. */
export const SHARD_RETIREMENT_MS = 10 * 60_000

/** The newest heartbeat the lake holds for one shard. */
export interface ShardHeartbeat {
  readonly shardId: string
  /** Highest position vouched for on this shard (normalised LSN). */
  readonly lsn: string
  /** Commit time of that position. */
  readonly committedAt: string
  /** When the reader last wrote a heartbeat to this shard (any position). */
  readonly emittedAt: string
}

export type NewestByShard = ReadonlyMap<string, ShardHeartbeat>

export interface LakeWatermark {
  /** Every change committed before this position is in the lake. */
  readonly lsn: string
  /** Commit time of the position. */
  readonly committedAt: string
  /** The shard whose newest heartbeat sets the watermark. */
  readonly limitingShard: string
  /** Every shard seen, newest heartbeat first by shard id; `counted: false` = retired (closed by a reshard). */
  readonly shards: ReadonlyArray<ShardHeartbeat & { readonly counted: boolean }>
}

const HEARTBEAT_ID = /^heartbeat:(.+):([0-9A-Fa-f]{1,8}\/[0-9A-Fa-f]{1,8}):(.+)$/

/** The shard a heartbeat was written to, from its id; undefined for ids of another shape. */
export const heartbeatShardId = (id: string): string | undefined => HEARTBEAT_ID.exec(id)?.[1]

const decodeHeartbeat = Schema.decodeUnknownResult(Heartbeat)

/** A lake record as a shard heartbeat, or undefined when it is not one. */
export const shardHeartbeat = (record: unknown): ShardHeartbeat | undefined => {
  const decoded = decodeHeartbeat(record)
  if (decoded._tag !== "Success") return undefined
  const heartbeat = decoded.success
  const shardId = heartbeatShardId(heartbeat.id)
  if (shardId === undefined || Number.isNaN(Date.parse(heartbeat.emittedAt))) return undefined
  return { shardId, lsn: normalizeLsn(heartbeat.commitLsn), committedAt: heartbeat.committedAt, emittedAt: heartbeat.emittedAt }
}

const later = (a: string, b: string) => (Date.parse(a) >= Date.parse(b) ? a : b)

/** Adds heartbeats to the newest per shard (the highest position, the latest emission). */
export const foldHeartbeats = (newest: NewestByShard, heartbeats: Iterable<ShardHeartbeat>): NewestByShard => {
  const out = new Map(newest)
  for (const heartbeat of heartbeats) {
    const current = out.get(heartbeat.shardId)
    if (!current) {
      out.set(heartbeat.shardId, heartbeat)
      continue
    }
    const higher = compareLsn(heartbeat.lsn, current.lsn) > 0 ? heartbeat : current
    out.set(heartbeat.shardId, { ...higher, emittedAt: later(heartbeat.emittedAt, current.emittedAt) })
  }
  return out
}

/** The latest emission time of any heartbeat (ms), or undefined when there is none. */
export const newestEmission = (newest: NewestByShard): number | undefined => {
  let max: number | undefined
  for (const shard of newest.values()) {
    const at = Date.parse(shard.emittedAt)
    if (max === undefined || at > max) max = at
  }
  return max
}

/** The minimum over the counted shards of their newest heartbeat; null when the lake holds no heartbeat. */
export const lakeWatermark = (newest: NewestByShard, options: { readonly retirementMs?: number } = {}): LakeWatermark | null => {
  const latest = newestEmission(newest)
  if (latest === undefined) return null
  const retirement = options.retirementMs ?? SHARD_RETIREMENT_MS
  const shards = [...newest.values()]
    .sort((a, b) => (a.shardId < b.shardId ? -1 : a.shardId > b.shardId ? 1 : 0))
    .map((shard) => ({ ...shard, counted: Date.parse(shard.emittedAt) >= latest - retirement }))
  const limiting = shards.filter((s) => s.counted).reduce((min, s) => (compareLsn(s.lsn, min.lsn) < 0 ? s : min))
  return { lsn: limiting.lsn, committedAt: limiting.committedAt, limitingShard: limiting.shardId, shards }
}

/** The newest heartbeat per shard among the lines of a raw object; other lines are ignored. */
export const heartbeatsOf = (lines: ReadonlyArray<string>): NewestByShard => {
  const heartbeats: Array<ShardHeartbeat> = []
  for (const line of lines) {
    // Cheap test first: only heartbeat lines are parsed.
    if (!line.includes('"heartbeat"')) continue
    const heartbeat = shardHeartbeat(parseJson(line))
    if (heartbeat) heartbeats.push(heartbeat)
  }
  return foldHeartbeats(new Map(), heartbeats)
}

/** The commit LSNs of the change events among the lines of a raw object, sorted. */
export const changePositionsOf = (lines: ReadonlyArray<string>): BigUint64Array => {
  const positions: Array<bigint> = []
  for (const line of lines) {
    const record = parseJson(line) as { kind?: unknown; source?: { commitLsn?: unknown } } | undefined
    const lsn = record?.kind === "change" ? record.source?.commitLsn : undefined
    if (typeof lsn === "string" && isLsn(lsn)) positions.push(lsnToBigInt(lsn))
  }
  return BigUint64Array.from(positions).sort()
}

const parseJson = (line: string): unknown => {
  try {
    return JSON.parse(line)
  } catch {
    return undefined
  }
}

/** How many of the sorted positions lie in [from, below). */
export const countInRange = (sorted: BigUint64Array, from: bigint, below: bigint): number => {
  const lowerBound = (value: bigint) => {
    let lo = 0
    let hi = sorted.length
    while (lo < hi) {
      const mid = (lo + hi) >>> 1
      if (sorted[mid]! < value) lo = mid + 1
      else hi = mid
    }
    return lo
  }
  return below <= from ? 0 : lowerBound(below) - lowerBound(from)
}
