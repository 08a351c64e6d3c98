/**
 * Pure core of the reader: pgoutput messages in, change events out. BEGIN carries the commit
 * LSN and time, so every row gets its final id (`<commit LSN>:<index>`) while streaming and a
 * large transaction never has to be held in memory. COMMIT yields the position that becomes
 * acknowledgeable once every event before it is durable.
 */
import type { Pgoutput } from "pg-logical-replication"
import { changeEventId, SCHEMA_VERSION, type ChangeEvent, type Row } from "../../contracts/change-event.ts"
import { normalizeLsn } from "../../contracts/lsn.ts"
import { UNCHANGED_TOAST, type RawTuple } from "./pgoutput.ts"
import { decodeValue, microsToIso } from "./values.ts"

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

export class TransactionAssembler {
  private open: OpenTransaction | undefined

  constructor(private readonly database: string) {}

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
        return this.rowEvent("c", message.relation, lsn, { after: message.new as RawTuple })
      case "update":
        return this.rowEvent("u", message.relation, lsn, {
          before: (message.old ?? message.key) as RawTuple | null,
          after: message.new as RawTuple
        })
      case "delete":
        return this.rowEvent("d", message.relation, lsn, { before: (message.old ?? message.key) as RawTuple | null })
      case "truncate":
        return {
          _tag: "Events",
          events: message.relations.map((relation) => this.event("t", relation, lsn, { key: null, before: null, after: null, unchanged: [] }))
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

  private rowEvent(
    op: "c" | "u" | "d",
    relation: Pgoutput.MessageRelation,
    lsn: string,
    images: { before?: RawTuple | null; after?: RawTuple }
  ): AssemblerOutput {
    const types = new Map(relation.columns.map((c) => [c.name, c.typeOid]))
    const unchanged: Array<string> = []
    const decode = (tuple: RawTuple | null | undefined, collectUnchanged: boolean): Row | null => {
      if (!tuple) return null
      const row: Record<string, Row[string]> = {}
      for (const [column, raw] of Object.entries(tuple)) {
        if (raw === UNCHANGED_TOAST) {
          if (collectUnchanged) unchanged.push(column)
          continue
        }
        row[column] = decodeValue(types.get(column) ?? 25, raw) as Row[string]
      }
      return row
    }
    // A key-only old image (REPLICA IDENTITY DEFAULT) has NULL placeholders for non-key columns.
    const beforeRaw = images.before && relation.replicaIdentity !== "full" ? pick(images.before, relation.keyColumns) : images.before
    const before = decode(beforeRaw, false)
    const after = decode(images.after, true)
    const keySource = after ?? before ?? {}
    const key: Record<string, Row[string]> = {}
    for (const column of relation.keyColumns) key[column] = keySource[column] ?? null
    return { _tag: "Events", events: [this.event(op, relation, lsn, { key, before, after, unchanged })] }
  }

  private event(
    op: ChangeEvent["op"],
    relation: Pgoutput.MessageRelation,
    lsn: string,
    images: Pick<ChangeEvent, "key" | "before" | "after" | "unchanged">
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
        lsn: normalizeLsn(lsn),
        xid: open.xid,
        committedAt: open.committedAt,
        index,
        snapshot: false
      },
      ...images
    }
  }
}

const pick = (tuple: RawTuple, columns: ReadonlyArray<string>): RawTuple => {
  const out: RawTuple = {}
  for (const column of columns) if (column in tuple) out[column] = tuple[column]!
  return out
}
