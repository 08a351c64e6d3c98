/** What the console serves: the newest status reading, the bounded time series and recent failures. */
import { loadProgress } from "../../services/status/load-progress.ts"
import { pipelineStages, type StageThresholds } from "../../services/status/stages.ts"
import type { PipelineStatus } from "../../services/status/status.ts"
import { ConsoleHistory, type Observation } from "./history.ts"
import type { ConsoleSnapshot } from "./server.ts"

export interface ConsoleStateOptions {
  readonly mode: ConsoleSnapshot["mode"]
  readonly title: string
  readonly intervalMs: number
  readonly thresholds?: StageThresholds
  /** Failures noted elsewhere (`totes dev`: the components'), shown beside the console's own. */
  readonly otherErrors?: () => ReadonlyArray<string>
  readonly capacity?: number
}

const MAX_ERRORS = 10

export class ConsoleState {
  private readonly history: ConsoleHistory
  private readonly startedAt = new Date().toISOString()
  private status: PipelineStatus | null = null
  private updatedAt: string | null = null
  private readonly failures: Array<string> = []

  constructor(private readonly options: ConsoleStateOptions) {
    this.history = new ConsoleHistory(options.capacity)
  }

  record(observation: Observation) {
    this.history.record(observation)
    if (observation.status) {
      this.status = observation.status
      this.updatedAt = new Date(observation.at).toISOString()
    }
  }

  failed(message: string, at = new Date()) {
    this.failures.push(`${at.toISOString().slice(11, 19)} ${message}`)
    if (this.failures.length > MAX_ERRORS) this.failures.splice(0, this.failures.length - MAX_ERRORS)
  }

  snapshot(): ConsoleSnapshot {
    return {
      mode: this.options.mode,
      title: this.options.title,
      startedAt: this.startedAt,
      updatedAt: this.updatedAt,
      intervalMs: this.options.intervalMs,
      status: this.status,
      stages: this.status ? pipelineStages(this.status, this.options.thresholds) : [],
      history: this.history.columns(),
      loads: this.status ? loadProgress(this.status) : [],
      errors: [...(this.options.otherErrors?.() ?? []), ...this.failures].slice(-MAX_ERRORS)
    }
  }
}
