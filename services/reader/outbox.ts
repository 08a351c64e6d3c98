/**
 * The reader's outbox: encoded events wait here, one lane per destination shard, until Kinesis
 * has accepted them. Pure state, no I/O: the lane senders take aggregates out, report them
 * accepted, and the outbox says which source position has become durable.
 *
 * - Every record gets a ticket (its place in source order). A source position (a commit, or a
 *   WAL marker) is durable once every record with a smaller ticket has been accepted.
 * - A lane sends one aggregate at a time and takes the next only after the previous one was
 *   accepted: a failed or throttled aggregate can never be overtaken by a later change of the
 *   same row (same shard, same lane).
 * - Every user record of a lane's aggregate carries the lane's explicit hash key, so it belongs to
 *   the shard that receives it even when a reshard has moved key ranges (consumers that filter
 *   user records by the shard's range, like the KCL, keep them).
 */
import { AggregateBuilder, type OutgoingRecord } from "../shared/kinesis/aggregation.ts"
import type { ShardInfo } from "../shared/kinesis/shard-map.ts"

export interface SourcePosition {
  readonly lsn: string
  readonly committedAt: string
}

interface Entry {
  readonly ticket: number
  readonly partitionKey: string
  /** The user record's data: JSON text (written as UTF-8 straight into the aggregate). */
  readonly data: string
  readonly bytes: number
  /** `table:op` of a change event (for per-table metrics); undefined for heartbeats. */
  readonly label: string | undefined
}

/** One aggregated Kinesis record, ready to put. */
export interface OutboundAggregate {
  readonly shard: ShardInfo
  readonly partitionKey: string
  readonly explicitHashKey: string
  readonly data: Buffer
  readonly firstTicket: number
  readonly records: number
  /** Change events per `table:op` (heartbeats are not counted). */
  readonly labels: ReadonlyMap<string, number>
  readonly entryBytes: number
}

class Lane {
  entries: Array<Entry> = []
  next = 0
  inFlight: OutboundAggregate | undefined
  retired = false
  constructor(readonly shard: ShardInfo) {}

  get pending(): number {
    return this.entries.length - this.next
  }

  firstPendingTicket(): number {
    return this.inFlight?.firstTicket ?? this.entries[this.next]?.ticket ?? Number.POSITIVE_INFINITY
  }

  compact() {
    if (this.next > 1024 && this.next * 2 > this.entries.length) {
      this.entries = this.entries.slice(this.next)
      this.next = 0
    }
  }
}

/**
 * What a single-record aggregate needs besides its data: the outer partition key (Kinesis counts
 * it against the record limit; at most 256 characters, 768 UTF-8 bytes), the same key in the
 * partition key table, the explicit hash key (39 digits), magic, digest and protobuf framing.
 */
const SINGLE_RECORD_OVERHEAD = 2048

export class Outbox {
  private lanes = new Map<string, Lane>()
  private current: Array<Lane> = []
  private positions: Array<SourcePosition & { ticket: number }> = []
  private tickets = 0
  private lastPositionTicket = 0
  private newestPosition: SourcePosition | undefined
  private events = 0
  private bytes = 0
  private readonly maxRecordBytes: number
  private readonly maxRecordsPerAggregate: number

  /** `maxRecordsPerAggregate`: 1 sends one event per Kinesis record (the benchmark's comparison). */
  constructor(shards: ReadonlyArray<ShardInfo>, options: { readonly maxRecordBytes: number; readonly maxRecordsPerAggregate?: number }) {
    this.maxRecordBytes = options.maxRecordBytes
    this.maxRecordsPerAggregate = options.maxRecordsPerAggregate ?? Number.POSITIVE_INFINITY
    this.reshard(shards)
  }

  /** Records (events and heartbeats) not yet accepted by Kinesis. */
  get bufferedRecords(): number {
    return this.events
  }

  get bufferedBytes(): number {
    return this.bytes
  }

  /** The largest user record that always fits in one aggregate (larger events travel as claim checks). */
  get maxUserRecordBytes(): number {
    return this.maxRecordBytes - SINGLE_RECORD_OVERHEAD
  }

  get shards(): ReadonlyArray<ShardInfo> {
    return this.current.map((lane) => lane.shard)
  }

  laneIds(): Array<string> {
    return [...this.lanes.keys()]
  }

  /** Routes later records with a new set of open shards; lanes of closed shards drain, then go. */
  reshard(shards: ReadonlyArray<ShardInfo>) {
    for (const lane of this.lanes.values()) lane.retired = true
    this.current = shards.map((shard) => {
      const existing = this.lanes.get(shard.shardId)
      if (existing) {
        existing.retired = false
        return existing
      }
      const lane = new Lane(shard)
      this.lanes.set(shard.shardId, lane)
      return lane
    })
    this.dropEmptyRetiredLanes()
  }

  /** Adds a record (`bytes`: the UTF-8 length of `data`) bound for the shard at `shardIndex` of `shards`. */
  add(shardIndex: number, partitionKey: string, data: string, bytes: number, label: string | undefined) {
    const lane = this.current[shardIndex]
    if (!lane) throw new RangeError(`no shard at index ${shardIndex}`)
    lane.entries.push({ ticket: this.tickets++, partitionKey, data, bytes, label })
    this.events++
    this.bytes += bytes
  }

  /** Marks a source position: durable once every record added before it is accepted. */
  addPosition(position: SourcePosition) {
    this.positions.push({ ...position, ticket: this.tickets })
    this.lastPositionTicket = this.tickets
    this.newestPosition = position
  }

  /** The newest position ever added (what a drained reader will have checkpointed). */
  get lastPosition(): SourcePosition | undefined {
    return this.newestPosition
  }

  /** The ticket the next record will get: a barrier for "everything added so far". */
  get nextTicket(): number {
    return this.tickets
  }

  /** Every record with a ticket below `ticket` has been accepted. */
  acceptedBefore(ticket: number): boolean {
    for (const lane of this.lanes.values()) if (lane.firstPendingTicket() < ticket) return false
    return true
  }

  /** Stop: forget records that come after the last position (the tail of an unfinished transaction). */
  dropUnpositionedTail(): number {
    let dropped = 0
    for (const lane of this.lanes.values()) {
      const keep = lane.entries.filter((e, i) => i < lane.next || e.ticket < this.lastPositionTicket)
      const removed = lane.entries.slice(lane.next).filter((e) => e.ticket >= this.lastPositionTicket)
      for (const e of removed) {
        this.events--
        this.bytes -= e.bytes
      }
      dropped += removed.length
      lane.entries = keep
    }
    return dropped
  }

  /** Whether the lane has an aggregate to send (a retry, or new records). */
  hasWork(laneId: string): boolean {
    const lane = this.lanes.get(laneId)
    return Boolean(lane && (lane.inFlight || lane.pending > 0))
  }

  /** The lane's next aggregate: the one not yet accepted, or a new one from its oldest records. */
  nextAggregate(laneId: string): OutboundAggregate | undefined {
    const lane = this.lanes.get(laneId)
    if (!lane) return undefined
    if (lane.inFlight) return lane.inFlight
    if (lane.pending === 0) return undefined
    const builder = new AggregateBuilder()
    const explicitHashKey = lane.shard.startingHashKey
    const labels = new Map<string, number>()
    const first = lane.entries[lane.next]!
    // The record's size as Kinesis counts it: the aggregate plus its partition key (the first record's).
    const limit = this.maxRecordBytes - Buffer.byteLength(first.partitionKey)
    let entryBytes = 0
    while (lane.next < lane.entries.length) {
      const entry = lane.entries[lane.next]!
      const record: OutgoingRecord = { partitionKey: entry.partitionKey, explicitHashKey, data: entry.data, dataBytes: entry.bytes }
      if (builder.count > 0 && (builder.count >= this.maxRecordsPerAggregate || builder.sizeWith(record) > limit)) break
      builder.add(record)
      entryBytes += entry.bytes
      if (entry.label) labels.set(entry.label, (labels.get(entry.label) ?? 0) + 1)
      lane.next++
    }
    lane.inFlight = {
      shard: lane.shard,
      partitionKey: first.partitionKey,
      explicitHashKey,
      data: builder.encode(),
      firstTicket: first.ticket,
      records: builder.count,
      labels,
      entryBytes
    }
    lane.compact()
    return lane.inFlight
  }

  /** Kinesis accepted the lane's aggregate. */
  accepted(laneId: string, aggregate: OutboundAggregate) {
    const lane = this.lanes.get(laneId)
    if (!lane || lane.inFlight !== aggregate) throw new Error(`aggregate accepted for lane ${laneId} that it was not sent from`)
    lane.inFlight = undefined
    this.events -= aggregate.records
    this.bytes -= aggregate.entryBytes
    this.dropEmptyRetiredLanes()
  }

  /** The newest source position whose records are all accepted (each position is returned once). */
  takeDurable(): SourcePosition | undefined {
    let lowest = Number.POSITIVE_INFINITY
    for (const lane of this.lanes.values()) lowest = Math.min(lowest, lane.firstPendingTicket())
    let durable: SourcePosition | undefined
    let taken = 0
    while (taken < this.positions.length && this.positions[taken]!.ticket <= lowest) durable = this.positions[taken++]
    if (taken > 0) this.positions.splice(0, taken)
    return durable ? { lsn: durable.lsn, committedAt: durable.committedAt } : undefined
  }

  /** Nothing left to send and nothing in flight. */
  get empty(): boolean {
    return this.events === 0
  }

  private dropEmptyRetiredLanes() {
    for (const [id, lane] of this.lanes) if (lane.retired && !lane.inFlight && lane.pending === 0) this.lanes.delete(id)
  }
}
