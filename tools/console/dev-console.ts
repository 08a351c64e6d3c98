/**
 * The console inside `totes dev`: the same page as `totes console`, fed by the dev loop's status
 * readings, with the live figures (events published and applied, commit → warehouse latency)
 * taken from the EMF lines the components print (figures.ts), as CloudWatch would receive them.
 */
import type { PipelineStatus } from "../../services/status/status.ts"
import { latenciesAfter, type FiguresSink } from "../dev/figures.ts"
import { startConsoleServer } from "./server.ts"
import { ConsoleState } from "./state.ts"

export interface DevConsole {
  readonly url: string
  /** One observation: call once per dashboard refresh, with the status read then (undefined if it could not be read). */
  readonly record: (status: PipelineStatus | undefined) => void
  readonly close: () => Promise<void>
}

export const startDevConsole = async (options: {
  readonly port: number
  readonly figures: FiguresSink
  readonly intervalMs: number
  readonly errors: () => ReadonlyArray<string>
}): Promise<DevConsole> => {
  const live = options.figures.figures
  const state = new ConsoleState({
    mode: "dev",
    title: "totes dev",
    intervalMs: options.intervalMs,
    // The local archiver flushes every few seconds: a lake a minute behind is behind.
    thresholds: { behindSeconds: 30, lakeBehindSeconds: 60 },
    otherErrors: options.errors
  })
  const server = await startConsoleServer({ port: options.port, snapshot: () => state.snapshot() })
  let latenciesSeen = live.latenciesSeen
  return {
    url: server.url,
    record: (status) => {
      const latenciesMs = latenciesAfter(live, latenciesSeen)
      latenciesSeen = live.latenciesSeen
      state.record({ at: Date.now(), status, published: live.published, applied: live.applied, latenciesMs })
    },
    close: server.close
  }
}
