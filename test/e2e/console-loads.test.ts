/**
 * The console's "Snapshot and repair" panel in a real browser (headless Chromium): fed a status
 * reading in which the initial snapshot and a repair run, the page shows every table with its
 * rows, the source's estimate, a progress bar, rows/s and the ETA; with neither, it says so.
 */
import chromium from "@sparticuz/chromium"
import { chromium as playwright, type Browser } from "playwright-core"
import { afterAll, describe, expect, it } from "vitest"
import type { PipelineStatus } from "../../services/status/status.ts"
import { startConsoleServer, type ConsoleServer } from "../../tools/console/server.ts"
import { ConsoleState } from "../../tools/console/state.ts"
import { pipelineStatus, runningSnapshot } from "../fixtures/status.ts"

// Functions below run in the page; this project's TypeScript has no DOM types.
declare const document: any

let browser: Browser | undefined
let server: ConsoleServer | undefined
afterAll(async () => {
  await browser?.close()
  await server?.close()
})

const at = "2026-11-27T10:00:10.000Z"
const loading: PipelineStatus = pipelineStatus(
  {
    snapshot: runningSnapshot(),
    repair: {
      id: "repair-7",
      tables: ["payment"],
      chunkRows: 10_000,
      requestedAt: "2026-11-27T09:59:00.000Z",
      position: "0/1000000",
      state: "running",
      startedAt: "2026-11-27T09:59:01.000Z",
      progress: [
        {
          table: "payment",
          state: "running",
          rows: 30_000,
          published: 29_990,
          superseded: 10,
          chunks: 3,
          estimatedRows: 120_000,
          lastKey: 30_000,
          startLsn: "0/1000100",
          upperKey: 120_000,
          startedAt: "2026-11-27T09:59:01.000Z",
          finishedAt: null,
          rowsPerSecond: 5_000,
          etaSeconds: 18,
          waitingFor: "transaction 812"
        }
      ]
    }
  },
  at
)

describe("the console's snapshot and repair panel", () => {
  it("shows each loading table's rows, estimate, progress, rows/s and ETA, and says when nothing loads", async () => {
    const state = new ConsoleState({ mode: "stage", title: "totes console · loads", intervalMs: 500 })
    state.record({ at: Date.parse(at), status: pipelineStatus({}, at), published: null, applied: null, latenciesMs: [] })
    server = await startConsoleServer({ port: 0, snapshot: () => state.snapshot() })

    browser = await playwright.launch({ executablePath: await chromium.executablePath(), args: chromium.args, headless: true })
    const page = await browser.newPage({ locale: "en-GB", timezoneId: "UTC" })
    const problems: Array<string> = []
    page.on("pageerror", (error) => problems.push(`page error: ${error.message}`))
    page.on("console", (message) => message.type() === "error" && problems.push(`console error: ${message.text()}`))
    await page.goto(server.url)

    await page.waitForFunction(() => document.querySelector("#loads-summary")?.textContent.length > 0, undefined, { timeout: 15_000 })
    expect(await page.textContent("#loads-summary")).toBe("no initial snapshot running, no repair requested")
    expect(await page.textContent("#loads tbody")).toBe("nothing loading")

    // The next reading: the snapshot and a repair run.
    state.record({ at: Date.parse(at) + 1_000, status: loading, published: null, applied: null, latenciesMs: [] })
    await page.waitForFunction(() => document.querySelectorAll("#loads tbody tr[data-table]").length === 3, undefined, { timeout: 15_000 })
    const rows: Array<Array<string>> = await page.evaluate(() => [...document.querySelectorAll("#loads tbody tr")].map((tr: any) => [...tr.querySelectorAll("td")].map((td: any) => td.textContent)))
    expect(rows).toEqual([
      ["snapshot", "staff", "done", "20", "~20", "", "40", "–"],
      ["snapshot", "sales_order", "running", "250,000", "~1,000,000", "", "50,000", "15.0 s"],
      ["repair", "payment", "running", "30,000", "~120,000", "", "5,000", "18.0 s"]
    ])
    const bars: Array<number | null> = await page.evaluate(() => [...document.querySelectorAll("#loads tbody tr")].map((tr: any) => tr.querySelector("progress")?.value ?? null))
    expect(bars).toEqual([1, 0.25, 0.25])
    expect(await page.getAttribute('#loads tr[data-table="payment"]', "title")).toBe("3 chunks, 10 superseded by concurrent changes · waiting for transaction 812")
    expect(await page.evaluate(() => [...document.querySelectorAll("#loads-summary div")].map((d: any) => d.textContent))).toEqual([
      "initial snapshot of the slot created 2026-11-27T09:59:58.000Z: 1 table done",
      "repair-7 of payment running since 2026-11-27T09:59:01.000Z"
    ])
    expect(problems).toEqual([])
  }, 60_000)
})
