/**
 * Pure core of the reader: pgoutput messages in, change events out. BEGIN carries the commit
 * LSN and time, so every row gets its final id (`<commit LSN>:<index>`) while streaming and a
 * large transaction never has to be held in memory. COMMIT yields the position that becomes
 * acknowledgeable once every event before it is durable.
 *
 * Values arrive already decoded (pgoutput.ts); this module only shapes events, so it does as
 * little per row as it can: no per-row maps or closures, one LSN normalisation per transaction.
 */
import type { Pgoutput } from "pg-logical-replication"
import { changeEventId, SCHEMA_VERSION, type ChangeEvent, type Row } from "../../contracts/change-event.ts"
import { normalizeLsn } from "../../contracts/lsn.ts"
import { UNCHANGED_COLUMNS, type DecodedTuple } from "./pgoutput.ts"
import { microsToIso } from "./values.ts"

export interface CommitPoint {
  readonly commitLsn: string
  readonly commitEndLsn: string
  readonly committedAt: string
  readonly events: number
}

/** A non-transactional logical message (the reader's own heartbeat marker). */
export interface LogicalMessage {
  readonly lsn: string
  readonly prefix: string
  readonly content: string
}

export type AssemblerOutput =
  | { readonly _tag: "Events"; readonly events: ReadonlyArray<ChangeEvent> }
  | { readonly _tag: "Commit"; readonly commit: CommitPoint }
  | { readonly _tag: "Message"; readonly message: LogicalMessage }
  | { readonly _tag: "Nothing" }

const NOTHING: AssemblerOutput = { _tag: "Nothing" }

interface OpenTransaction {
  readonly commitLsn: string
  readonly committedAt: string
  readonly xid: number
  index: number
}

type Json = Row[string]

/** Row LSNs from pg-logical-replication are already canonical (unpadded upper case); other text is normalised. */
const CANONICAL_LSN = /^(?:0|[1-9A-F][0-9A-F]{0,7})\/(?:0|[1-9A-F][0-9A-F]{0,7})$/
const canonicalLsn = (lsn: string) => (CANONICAL_LSN.test(lsn) ? lsn : normalizeLsn(lsn))

export class TransactionAssembler {
  private open: OpenTransaction | undefined

  /**
   * `primaryKeys` ("schema.table" → columns, from the catalog): the key of a row. pgoutput flags the
   * replica identity's columns as the key, which under REPLICA IDENTITY FULL is every column; the
   * flags are used only for a table the catalog gave no primary key for.
   */
  constructor(
    private readonly database: string,
    private readonly primaryKeys: ReadonlyMap<string, ReadonlyArray<string>> = new Map()
  ) {}

  /** The commit LSN of the transaction being read, if one is open. */
  get currentCommitLsn(): string | undefined {
    return this.open?.commitLsn
  }

  /** A transaction has begun and not yet committed. */
  get inTransaction(): boolean {
    return this.open !== undefined
  }

  /** `lsn` is the XLogData position the message arrived at (the row's own LSN). */
  next(message: Pgoutput.Message, lsn: string): AssemblerOutput {
    switch (message.tag) {
      case "begin":
        this.open = {
          commitLsn: normalizeLsn(message.commitLsn ?? "0/0"),
          committedAt: microsToIso(message.commitTime as bigint),
          xid: message.xid,
          index: 0
        }
        return NOTHING
      case "commit": {
        const open = this.requireOpen("commit")
        this.open = undefined
        return {
          _tag: "Commit",
          commit: {
            commitLsn: open.commitLsn,
            commitEndLsn: normalizeLsn(message.commitEndLsn ?? "0/0"),
            committedAt: open.committedAt,
            events: open.index
          }
        }
      }
      case "insert":
        return this.rowEvent("c", message.relation, lsn, null, message.new as DecodedTuple)
      case "update":
        return this.rowEvent("u", message.relation, lsn, (message.old ?? message.key) as DecodedTuple | null, message.new as DecodedTuple)
      case "delete":
        return this.rowEvent("d", message.relation, lsn, (message.old ?? message.key) as DecodedTuple | null, null)
      case "truncate":
        return {
          _tag: "Events",
          events: message.relations.map((relation) => this.event("t", relation, lsn, null, null, null, []))
        }
      case "message":
        if (message.transactional) return NOTHING
        return {
          _tag: "Message",
          message: { lsn: normalizeLsn(message.messageLsn ?? lsn), prefix: message.prefix, content: Buffer.from(message.content).toString("utf8") }
        }
      default:
        return NOTHING // relation, type, origin: metadata the parser caches itself
    }
  }

  private requireOpen(what: string): OpenTransaction {
    if (!this.open) throw new Error(`pgoutput ${what} outside a transaction`)
    return this.open
  }

  private rowEvent(op: "c" | "u" | "d", relation: Pgoutput.MessageRelation, lsn: string, beforeTuple: DecodedTuple | null, after: DecodedTuple | null): AssemblerOutput {
    const keyColumns = relation.keyColumns
    // A key-only old image (REPLICA IDENTITY DEFAULT) has placeholders for non-key columns: keep the key.
    let before: Row | null = beforeTuple
    if (beforeTuple && relation.replicaIdentity !== "full") {
      const picked: Record<string, Json> = {}
      for (const column of keyColumns) if (column in beforeTuple && beforeTuple[column] !== undefined) picked[column] = beforeTuple[column]!
      before = picked
    }
    const keySource = after ?? before ?? {}
    const key: Record<string, Json> = {}
    for (const column of this.primaryKeys.get(`${relation.schema}.${relation.name}`) ?? keyColumns) key[column] = keySource[column] ?? null
    const unchanged = after?.[UNCHANGED_COLUMNS] ?? []
    return { _tag: "Events", events: [this.event(op, relation, lsn, key, before, after, unchanged)] }
  }

  private event(
    op: ChangeEvent["op"],
    relation: Pgoutput.MessageRelation,
    lsn: string,
    key: Row | null,
    before: Row | null,
    after: Row | null,
    unchanged: ReadonlyArray<string>
  ): ChangeEvent {
    const open = this.requireOpen(op)
    const index = open.index++
    return {
      kind: "change",
      schemaVersion: SCHEMA_VERSION,
      id: changeEventId(open.commitLsn, index),
      op,
      source: {
        db: this.database,
        schema: relation.schema,
        table: relation.name,
        commitLsn: open.commitLsn,
        lsn: canonicalLsn(lsn),
        xid: open.xid,
        committedAt: open.committedAt,
        index,
        snapshot: false
      },
      key,
      before,
      after,
      unchanged
    }
  }
}
