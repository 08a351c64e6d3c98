/**
 * The online repair of tables (`totes resnapshot --tables …`): the request the CLI writes into
 * the checkpoint table, which the running reader picks up, works through and reports progress in.
 * The item lives under the reader's own key prefix (`reader#<slot>#repair`), so the reader's role
 * may write it.
 *
 * The item's `position` (the checkpoint store's monotonic attribute) is the request's
 * `position`: the reader writes its progress with it, so a newer request, or the CLI's cancel
 * (which writes a position sorting after it), makes the reader's next write fail and the reader
 * stop that request.
 */

export const repairRequestKey = (slot: string) => `reader#${slot}#repair`

/** The prefix of the WAL markers (pg_logical_emit_message) around every chunk of a repair. */
export const REPAIR_MARKER_PREFIX = "totes-repair"

export type RepairState = "requested" | "running" | "done" | "failed" | "cancelled"

export interface RepairTableProgress {
  readonly table: string
  readonly state: "waiting" | "running" | "done"
  /** Rows read from the source so far. */
  readonly rows: number
  /** Rows published as op "r" events (the others were changed by the stream while their chunk was read). */
  readonly published: number
  readonly superseded: number
  readonly chunks: number
  /** The table's size as the source estimates it when the table starts (for the ETA). */
  readonly estimatedRows: number | null
  /** Resume point: the next chunk starts after this key (null: at the start). */
  readonly lastKey: number | null
  /**
   * Where the table's repair began: the LSN of its start marker, and the largest key then. Chunks
   * cover the keys up to it; the keys above it are covered by one range at the start position
   * (rows inserted since come through the stream), so a table that grows faster than it is read
   * still ends.
   */
  readonly startLsn: string | null
  readonly upperKey: number | null
  readonly startedAt: string | null
  readonly finishedAt: string | null
  readonly rowsPerSecond: number | null
  readonly etaSeconds: number | null
  /** What the table waits for, when it waits (transactions open when a chunk began). */
  readonly waitingFor?: string
}

export interface RepairRequest {
  readonly id: string
  readonly tables: ReadonlyArray<string>
  readonly chunkRows: number
  readonly requestedAt: string
  /** The checkpoint position of the request (see the module comment). */
  readonly position: string
  readonly state: RepairState
  readonly startedAt?: string
  readonly finishedAt?: string
  readonly error?: string
  /** The high watermark of the newest chunk published: the repair's rows are at or before it. */
  readonly through?: string
  readonly progress: ReadonlyArray<RepairTableProgress>
}

/** A request's position: later requests sort after earlier ones. */
export const repairPosition = (requestedAt: string, id: string) => `${requestedAt}#${id}`

/** The position a cancel writes: after the request's own, so the reader's next write fails. */
export const cancelledPosition = (request: Pick<RepairRequest, "position">) => `${request.position}#cancelled`

export const isActive = (request: Pick<RepairRequest, "state"> | undefined | null): boolean =>
  request?.state === "requested" || request?.state === "running"

export const newRepairRequest = (options: { id: string; tables: ReadonlyArray<string>; chunkRows: number; requestedAt: string }): RepairRequest => ({
  id: options.id,
  tables: [...options.tables],
  chunkRows: options.chunkRows,
  requestedAt: options.requestedAt,
  position: repairPosition(options.requestedAt, options.id),
  state: "requested",
  progress: options.tables.map((table) => ({
    table,
    state: "waiting",
    rows: 0,
    published: 0,
    superseded: 0,
    chunks: 0,
    estimatedRows: null,
    lastKey: null,
    startLsn: null,
    upperKey: null,
    startedAt: null,
    finishedAt: null,
    rowsPerSecond: null,
    etaSeconds: null
  }))
})

/** Rate and ETA of a table from its counts, at `now`. */
export const withRate = (progress: RepairTableProgress, now: number): RepairTableProgress => {
  if (!progress.startedAt) return progress
  const seconds = Math.max(0.001, (now - Date.parse(progress.startedAt)) / 1000)
  const rowsPerSecond = progress.rows / seconds
  const left = progress.estimatedRows === null ? null : Math.max(0, progress.estimatedRows - progress.rows)
  return {
    ...progress,
    rowsPerSecond,
    etaSeconds: progress.state === "done" ? 0 : left === null || rowsPerSecond <= 0 ? null : left / rowsPerSecond
  }
}

const count = (n: number) => n.toLocaleString("en-GB")

/** One line per table, for `totes status` and `totes resnapshot`. */
export const describeTableProgress = (p: RepairTableProgress): string => {
  const rows = p.estimatedRows !== null && p.state !== "done" ? `${count(p.rows)} of ~${count(p.estimatedRows)} rows` : `${count(p.rows)} rows`
  const detail = `${p.chunks} chunk${p.chunks === 1 ? "" : "s"}, ${count(p.superseded)} superseded by concurrent changes`
  if (p.state === "waiting") return `${p.table}: waiting${p.waitingFor ? ` for ${p.waitingFor}` : ""}`
  if (p.state === "done") return `${p.table}: done, ${rows} (${detail})${p.rowsPerSecond ? `, ${count(Math.round(p.rowsPerSecond))} rows/s` : ""}`
  const rate = p.rowsPerSecond === null ? "" : `, ${count(Math.round(p.rowsPerSecond))} rows/s`
  const eta = p.etaSeconds === null ? ", ETA –" : `, ETA ${p.etaSeconds.toFixed(1)} s`
  return `${p.table}: ${rows} (${detail})${rate}${eta}${p.waitingFor ? ` · waiting for ${p.waitingFor}` : ""}`
}

/** A summary of a request: `<id> of <tables> <state> …`. */
export const describeRepair = (r: RepairRequest): string => {
  const tables = r.tables.join(", ")
  switch (r.state) {
    case "requested":
      return `${r.id} of ${tables} requested ${r.requestedAt}: waiting for the reader to pick it up`
    case "running":
      return `${r.id} of ${tables} running since ${r.startedAt ?? r.requestedAt}${r.through ? `, published through ${r.through}` : ""}`
    case "done":
      return `${r.id} of ${tables} done ${r.finishedAt ?? ""}: published through ${r.through ?? "–"}`
    case "failed":
      return `${r.id} of ${tables} FAILED ${r.finishedAt ?? ""}: ${r.error ?? "unknown error"}`
    case "cancelled":
      return `${r.id} of ${tables} cancelled ${r.finishedAt ?? ""}`
  }
}
