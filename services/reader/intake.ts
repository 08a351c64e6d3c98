/**
 * Intake: replication messages → transaction assembler → encoded events in the outbox.
 *
 * Runs synchronously inside the replication connection's message callback (no await per row).
 * Backpressure is exact: messages move into the outbox only while it holds fewer than its
 * bounds (records and bytes); otherwise they wait, already parsed, in a small inbox and the
 * replication socket is paused, so the walsender waits and Postgres keeps the WAL.
 * An event too large for a Kinesis record is stored in the lake (claim check) before the
 * messages after it move on, so per-row order holds.
 */
import { Effect } from "effect"
import type { Pgoutput } from "pg-logical-replication"
import { serializeChangeEvent, type ChangeEvent } from "../../contracts/change-event.ts"
import { storeClaimCheck } from "../lake/claims.ts"
import { partitionKeyFor, type ShardMap } from "../shared/kinesis/shard-map.ts"
import type { LakeStoreShape } from "../shared/lake-store.ts"
import type { Outbox } from "./outbox.ts"
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

  constructor(private readonly options: IntakeOptions) {
    this.assembler = new TransactionAssembler(options.database, options.primaryKeys)
    this.schemas = new SchemaWatch(options.knownSchemas)
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
        break
    }
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
    const { outbox } = this.options
    const map = this.options.routing()
    const index = map.indexOfPartitionKey(partitionKey)
    outbox.add(index, partitionKey, data, bytes, event.source.table + ":" + event.op)
    if (outbox.bufferedRecords > this.maxQueued) this.options.onNewMaximum((this.maxQueued = outbox.bufferedRecords))
    this.options.wake(map.shards[index]!.shardId)
  }
}
