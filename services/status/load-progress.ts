/**
 * Pure: the bulk loads a status reading shows, table by table — the reader's initial snapshot
 * while it runs, and the newest online repair (`totes resnapshot`) — as figures the console draws
 * (rows, the source's estimate, rows/s, ETA). `totes status` prints the same figures as lines
 * (describeSnapshotProgress, describeTableProgress).
 */
import { snapshotTableFigures } from "../../contracts/checkpoint.ts"
import { describeRepair } from "../../contracts/repair.ts"
import type { PipelineStatus } from "./status.ts"

export interface TableLoad {
  readonly table: string
  readonly state: "waiting" | "running" | "done"
  readonly rows: number
  /** The source's estimate of the table's rows when it started (null: unknown). */
  readonly estimatedRows: number | null
  readonly rowsPerSecond: number | null
  /** Seconds left at the current rate (null: done, or no estimate or rate yet). */
  readonly etaSeconds: number | null
  /** What else there is to know (a repair's chunks and superseded rows, what it waits for). */
  readonly detail: string
}

export interface LoadProgress {
  readonly kind: "snapshot" | "repair"
  /** One line: what runs and since when (a repair: its id, tables and state). */
  readonly summary: string
  readonly tables: ReadonlyArray<TableLoad>
}

const count = (n: number) => n.toLocaleString("en-GB")

/** The initial snapshot (while it runs) and the newest repair (while it runs, or how it ended). */
export const loadProgress = (status: PipelineStatus): ReadonlyArray<LoadProgress> => {
  const loads: Array<LoadProgress> = []
  const snapshot = status.snapshot
  if (snapshot && !snapshot.complete) {
    const now = Date.parse(status.at)
    const progress = snapshot.progress ?? []
    loads.push({
      kind: "snapshot",
      summary: `initial snapshot of the slot created ${snapshot.createdAt}: ${snapshot.tablesDone.length} table${snapshot.tablesDone.length === 1 ? "" : "s"} done`,
      tables: progress.map((p): TableLoad => {
        const figures = snapshotTableFigures(p, now)
        return { table: p.table, state: p.done ? "done" : "running", rows: p.rows, estimatedRows: p.estimatedRows, rowsPerSecond: figures.rowsPerSecond, etaSeconds: figures.etaSeconds, detail: "" }
      })
    })
  }
  const repair = status.repair
  if (repair) {
    loads.push({
      kind: "repair",
      summary: describeRepair(repair),
      tables: repair.progress.map(
        (p): TableLoad => ({
          table: p.table,
          state: p.state,
          rows: p.rows,
          estimatedRows: p.estimatedRows,
          rowsPerSecond: p.rowsPerSecond,
          etaSeconds: p.state === "running" ? p.etaSeconds : null,
          detail: [
            `${p.chunks} chunk${p.chunks === 1 ? "" : "s"}, ${count(p.superseded)} superseded by concurrent changes`,
            ...(p.waitingFor ? [`waiting for ${p.waitingFor}`] : [])
          ].join(" · ")
        })
      )
    })
  }
  return loads
}
