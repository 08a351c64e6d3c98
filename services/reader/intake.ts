/**
 * Intake: replication messages → transaction assembler → encoded events in the outbox.
 *
 * Runs synchronously inside the replication connection's message callback (no await per row).
 * Backpressure is exact: messages move into the outbox only while it holds fewer than its
 * bounds (records and bytes); otherwise they wait, already parsed, in a small inbox and the
 * replication socket is paused, so the walsender waits and Postgres keeps the WAL.
 * An event too large for a Kinesis record is stored in the lake (claim check) before the
 * messages after it move on, so per-row order holds.
 *
 * An online table repair (table-repair.ts) re-reads chunks of a table between two WAL markers;
 * the intake tells its windows (repair-window.ts) every change, and at a chunk's high watermark
 * publishes the chunk's rows and its range record in place of the marker.
 */
import { Effect } from "effect"
import type { Pgoutput } from "pg-logical-replication"
import { serializeChangeEvent, type ChangeEvent, type RepairedRange, type SnapshotChunk } from "../../contracts/change-event.ts"
import { REPAIR_MARKER_PREFIX } from "../../contracts/repair.ts"
import { storeClaimCheck } from "../lake/claims.ts"
import { partitionKeyFor, type ShardMap } from "../shared/kinesis/shard-map.ts"
import type { LakeStoreShape } from "../shared/lake-store.ts"
import type { Outbox } from "./outbox.ts"
import { RepairWindows, type ChunkOutcome } from "./repair-window.ts"
import type { ReplicationStream } from "./replication-stream.ts"
import { HEARTBEAT_PREFIX } from "./source-admin.ts"
import { SchemaWatch, type SchemaChange } from "./schema-watch.ts"
import { TransactionAssembler } from "./transaction-assembler.ts"

export interface IntakeOptions {
  readonly database: string
  readonly primaryKeys: ReadonlyMap<string, ReadonlyArray<string>>
  readonly outbox: Outbox
  /** The current routing of partition keys to the outbox's lanes. */
  readonly routing: () => ShardMap
  readonly lake: LakeStoreShape | undefined
  readonly maxBufferedRecords: number
  readonly maxBufferedBytes: number
  /** A lane received records. */
  readonly wake: (laneId: string) => void
  readonly onFailure: (error: Error) => void
  /** Told the outbox's size whenever it reaches a new maximum. */
  readonly onNewMaximum: (records: number) => void
  /** The table schemas last seen (relation messages are compared with them). */
  readonly knownSchemas: Readonly<Record<string, ReadonlyArray<readonly [string, number]>>>
  /** A relation message showed a changed table schema (`lsn`: the commit position of the transaction it came in). */
  readonly onSchemaChange: (change: SchemaChange, lsn: string, schemas: Record<string, ReadonlyArray<readonly [string, number]>>) => void
}

/** A repair chunk's outcome, once its records are in the outbox (`barrier`: accepted when every ticket before it is). */
export type ChunkSettled = ChunkOutcome & { readonly barrier: number }

/** The time written into a heartbeat marker; anything unreadable (someone else's message) counts as now. */
const markerTime = (content: string): string => {
  try {
    const at = (JSON.parse(content) as { at?: unknown }).at
    return typeof at === "string" && !Number.isNaN(Date.parse(at)) ? at : new Date().toISOString()
  } catch {
    return new Date().toISOString()
  }
}

export class Intake {
  private maxQueued = 0
  private readonly assembler: TransactionAssembler
  private readonly schemas: SchemaWatch
  private inbox: Array<{ lsn: string; message: Pgoutput.Message }> = []
  private inboxHead = 0
  private claimInProgress = false
  private stopped = false
  private stream: ReplicationStream | undefined
  private capacityWaiters: Array<() => void> = []
  /** The chunks of an online repair being read (table-repair.ts registers them). */
  readonly repairs: RepairWindows
  private readonly chunkWaiters = new Map<string, (settled: ChunkSettled) => void>()

  constructor(private readonly options: IntakeOptions) {
    this.assembler = new TransactionAssembler(options.database, options.primaryKeys)
    this.schemas = new SchemaWatch(options.knownSchemas)
    this.repairs = new RepairWindows(options.database)
  }

  /** Resolves once the chunk's high watermark has passed the intake and its records are in the outbox. */
  chunkSettled(chunkId: string): Promise<ChunkSettled> {
    return new Promise((resolve) => this.chunkWaiters.set(chunkId, resolve))
  }

  /** Puts a repair's range record into the outbox now; returns the barrier it is accepted by. */
  publishRange(range: RepairedRange): number {
    this.addRange(range)
    return this.options.outbox.nextTicket
  }

  /** Gives up waiting for a chunk (its repair task stopped). */
  forgetChunk(chunkId: string): void {
    this.chunkWaiters.delete(chunkId)
    this.repairs.forget(chunkId)
  }

  attach(stream: ReplicationStream) {
    this.stream = stream
  }

  /** The replication callback: must not throw. */
  readonly push = (lsn: string, message: Pgoutput.Message): void => {
    if (this.stopped) return // not acknowledged: the server sends it again to the next session
    this.inbox.push({ lsn, message })
    this.drain()
  }

  /** Adds one event (the initial snapshot's path); resolves once it is in the outbox. */
  async addEvent(event: ChangeEvent): Promise<void> {
    while (!this.hasCapacity()) await new Promise<void>((resolve) => this.capacityWaiters.push(resolve))
    const pending = this.encode(event)
    if (pending) await pending
  }

  /**
   * Adds a snapshot chunk's pointer (its rows are already in the lake) under the partition key of
   * one of its rows (the chunk's rows all go to that shard); resolves once it is in the outbox.
   */
  async addSnapshotChunk(pointer: SnapshotChunk, partitionKey: string): Promise<void> {
    while (!this.hasCapacity()) await new Promise<void>((resolve) => this.capacityWaiters.push(resolve))
    const data = JSON.stringify(pointer)
    // Not a change event (like a range record).
    this.addRecord(undefined, partitionKey, data, Buffer.byteLength(data))
  }

  /** Lanes call this after Kinesis accepted an aggregate: room may have opened up. */
  readonly onAccepted = (): void => {
    if (!this.hasCapacity()) return
    for (const waiter of this.capacityWaiters.splice(0)) waiter()
    this.drain()
  }

  /** Stop taking messages; forget the tail of an unfinished transaction. */
  stop(): number {
    this.stopped = true
    this.inbox = []
    this.inboxHead = 0
    return this.options.outbox.dropUnpositionedTail()
  }

  private hasCapacity(): boolean {
    const { outbox } = this.options
    return outbox.bufferedRecords < this.options.maxBufferedRecords && outbox.bufferedBytes < this.options.maxBufferedBytes
  }

  private drain() {
    try {
      while (this.inboxHead < this.inbox.length && !this.claimInProgress && !this.stopped && this.hasCapacity()) {
        const { lsn, message } = this.inbox[this.inboxHead++]!
        this.process(lsn, message)
      }
      if (this.inboxHead >= this.inbox.length) {
        this.inbox = []
        this.inboxHead = 0
        this.stream?.resume()
      } else {
        this.stream?.pause()
      }
    } catch (error) {
      this.stopped = true
      this.options.onFailure(error as Error)
    }
  }

  private process(lsn: string, message: Pgoutput.Message) {
    if (message.tag === "relation") {
      const change = this.schemas.observe({ table: message.name, columns: message.columns.map((c) => [c.name, c.typeOid] as const) })
      // A relation message comes inside the transaction whose change needs it (its own LSN is 0/0).
      if (change) this.options.onSchemaChange(change, this.assembler.currentCommitLsn ?? lsn, this.schemas.snapshot())
    }
    const out = this.assembler.next(message, lsn)
    switch (out._tag) {
      case "Events":
        for (const event of out.events) {
          this.repairs.observe(event)
          const pending = this.encode(event)
          if (pending) {
            // A claim check: the messages after this one wait until the event is in the outbox.
            this.claimInProgress = true
            this.stream?.pause()
            pending.then(
              () => {
                this.claimInProgress = false
                this.drain()
              },
              (error: unknown) => {
                this.stopped = true
                this.options.onFailure(error as Error)
              }
            )
          }
        }
        break
      case "Commit":
        this.options.outbox.addPosition({ lsn: out.commit.commitEndLsn, committedAt: out.commit.committedAt })
        break
      case "Message":
        // A marker is a position only between transactions (protocol 1 never sends one inside).
        if (out.message.prefix === HEARTBEAT_PREFIX && !this.assembler.inTransaction) {
          this.options.outbox.addPosition({ lsn: out.message.lsn, committedAt: markerTime(out.message.content) })
        }
        if (out.message.prefix === REPAIR_MARKER_PREFIX && !this.assembler.inTransaction) {
          const closed = this.repairs.marker(out.message)
          if (closed) this.publishChunk(closed.chunkId, closed.outcome)
        }
        break
    }
  }

  /**
   * Puts a repair chunk's rows and range record into the outbox, then tells its task. Rows that
   * need a claim check hold the messages after them back until they are in (as in a transaction).
   */
  private publishChunk(chunkId: string, outcome: ChunkOutcome) {
    const settle = () => {
      const waiter = this.chunkWaiters.get(chunkId)
      this.chunkWaiters.delete(chunkId)
      waiter?.({ ...outcome, barrier: this.options.outbox.nextTicket })
    }
    if (outcome._tag !== "Published") return settle()
    const claims = outcome.events.map((event) => this.encode(event)).filter((pending) => pending !== undefined)
    const finish = () => {
      this.addRange(outcome.range)
      settle()
    }
    if (claims.length === 0) return finish()
    this.claimInProgress = true
    this.stream?.pause()
    Promise.all(claims).then(
      () => {
        try {
          finish()
        } catch (error) {
          this.stopped = true
          this.options.onFailure(error as Error)
          return
        }
        this.claimInProgress = false
        this.drain()
      },
      (error: unknown) => {
        this.stopped = true
        this.options.onFailure(error as Error)
      }
    )
  }

  private addRange(range: RepairedRange) {
    const data = JSON.stringify(range)
    const bytes = Buffer.byteLength(data)
    if (bytes > this.options.outbox.maxUserRecordBytes) throw new Error(`repair range record ${range.id} is ${bytes} bytes: use smaller chunks`)
    // Not a change event: not counted as one (like heartbeats).
    this.addRecord(undefined, partitionKeyFor(range.source.table, { range: range.id }), data, bytes)
  }

  /** Puts the event into its lane; returns a promise only when it needs a claim check first. */
  private encode(event: ChangeEvent): Promise<void> | undefined {
    const data = serializeChangeEvent(event)
    const bytes = Buffer.byteLength(data)
    const partitionKey = partitionKeyFor(event.source.table, event.key)
    if (bytes <= this.options.outbox.maxUserRecordBytes) {
      this.addEncoded(event, partitionKey, data, bytes)
      return undefined
    }
    const { lake } = this.options
    if (!lake) return Promise.reject(new Error(`event ${event.id} is ${bytes} bytes and no lake is configured for claim checks`))
    return Effect.runPromise(storeClaimCheck(lake, event, Buffer.from(data))).then((stub) => {
      const text = serializeChangeEvent(stub)
      this.addEncoded(event, partitionKey, text, Buffer.byteLength(text))
    })
  }

  private addEncoded(event: ChangeEvent, partitionKey: string, data: string, bytes: number) {
    this.addRecord(event.source.table + ":" + event.op, partitionKey, data, bytes)
  }

  /** `label`: table:op of a change event, for the per-table metrics. */
  private addRecord(label: string | undefined, partitionKey: string, data: string, bytes: number) {
    const { outbox } = this.options
    const map = this.options.routing()
    const index = map.indexOfPartitionKey(partitionKey)
    outbox.add(index, partitionKey, data, bytes, label)
    if (outbox.bufferedRecords > this.maxQueued) this.options.onNewMaximum((this.maxQueued = outbox.bufferedRecords))
    this.options.wake(map.shards[index]!.shardId)
  }
}
