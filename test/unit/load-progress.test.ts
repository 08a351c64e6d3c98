/** The bulk loads a status reading shows (initial snapshot, newest repair) as the console's figures. */
import { describe, expect, it } from "vitest"
import { newRepairRequest, type RepairRequest, type RepairTableProgress } from "../../contracts/repair.ts"
import { loadProgress } from "../../services/status/load-progress.ts"
import { pipelineStatus, runningSnapshot } from "../fixtures/status.ts"

const at = "2026-11-27T10:00:10.000Z"

/** A table's progress as a new request starts it (waiting, nothing read), then `overrides`. */
const repairTable = (overrides: Partial<RepairTableProgress>): RepairTableProgress => ({
  ...newRepairRequest({ id: "x", tables: [overrides.table ?? "staff"], chunkRows: 10_000, requestedAt: at }).progress[0]!,
  ...overrides
})

const repair = (overrides: Partial<RepairRequest>): RepairRequest => ({
  id: "repair-1",
  tables: ["staff", "sales_order"],
  chunkRows: 10_000,
  requestedAt: "2026-11-27T09:59:00.000Z",
  position: "0/1000000",
  state: "running",
  startedAt: "2026-11-27T09:59:01.000Z",
  progress: [],
  ...overrides
})

describe("loadProgress", () => {
  it("is empty when no snapshot runs and no repair was ever requested", () => {
    expect(loadProgress(pipelineStatus({}, at))).toEqual([])
  })

  it("gives a running snapshot's rows/s and ETA from the reading's time, and a finished table's rate over its own run", () => {
    const status = pipelineStatus(
      {
        snapshot: runningSnapshot()
      },
      at
    )
    expect(loadProgress(status)).toEqual([
      {
        kind: "snapshot",
        summary: "initial snapshot of the slot created 2026-11-27T09:59:58.000Z: 1 table done",
        tables: [
          { table: "staff", state: "done", rows: 20, estimatedRows: 20, rowsPerSecond: 40, etaSeconds: null, detail: "" },
          // 250,000 rows in the 5 s until the reading: 50,000 rows/s, 750,000 left: 15 s.
          { table: "sales_order", state: "running", rows: 250_000, estimatedRows: 1_000_000, rowsPerSecond: 50_000, etaSeconds: 15, detail: "" }
        ]
      }
    ])
  })

  it("leaves out a complete snapshot, and shows no ETA without an estimate", () => {
    const progress = [{ table: "payment", rows: 100, estimatedRows: null, startedAt: "2026-11-27T10:00:00.000Z", updatedAt: "2026-11-27T10:00:01.000Z", done: false }]
    const running = { consistentPoint: "0/1", createdAt: at, tablesDone: [], complete: false, progress }
    expect(loadProgress(pipelineStatus({ snapshot: { ...running, complete: true } }, at))).toEqual([])
    expect(loadProgress(pipelineStatus({ snapshot: running }, at))[0]!.tables).toEqual([
      { table: "payment", state: "running", rows: 100, estimatedRows: null, rowsPerSecond: 10, etaSeconds: null, detail: "" }
    ])
  })

  it("shows the newest repair table by table, with its chunks, what it waits for, and no ETA once done", () => {
    const status = pipelineStatus(
      {
        repair: repair({
          progress: [
            repairTable({ table: "staff", state: "done", rows: 20, published: 19, superseded: 1, chunks: 1, estimatedRows: 20, rowsPerSecond: 400, etaSeconds: 0 }),
            repairTable({ table: "sales_order", state: "running", rows: 30_000, published: 30_000, chunks: 3, estimatedRows: 100_000, rowsPerSecond: 10_000, etaSeconds: 7, waitingFor: "transaction 812" })
          ]
        })
      },
      at
    )
    const [load] = loadProgress(status)
    expect(load).toEqual({
      kind: "repair",
      summary: "repair-1 of staff, sales_order running since 2026-11-27T09:59:01.000Z",
      tables: [
        { table: "staff", state: "done", rows: 20, estimatedRows: 20, rowsPerSecond: 400, etaSeconds: null, detail: "1 chunk, 1 superseded by concurrent changes" },
        { table: "sales_order", state: "running", rows: 30_000, estimatedRows: 100_000, rowsPerSecond: 10_000, etaSeconds: 7, detail: "3 chunks, 0 superseded by concurrent changes · waiting for transaction 812" }
      ]
    })
  })

  it("lists the snapshot before the repair when both are there", () => {
    const status = pipelineStatus(
      { snapshot: { consistentPoint: "0/1", createdAt: at, tablesDone: [], complete: false, progress: [] }, repair: repair({ state: "requested", startedAt: undefined, progress: [repairTable({})] }) },
      at
    )
    expect(loadProgress(status).map((l) => [l.kind, l.tables.length])).toEqual([
      ["snapshot", 0],
      ["repair", 1]
    ])
  })
})
