/**
 * Reports a dependency outage once when it starts and once when it ends (how long, how many
 * retries), never a line per attempt; and as metrics (outageMetrics). Several callers of one
 * dependency (the Kinesis lane senders) share one tracker: the outage starts with the first
 * caller that fails and ends when the last failing caller has recovered.
 */
import { outageMetrics } from "../shared/outage-reporter.ts"

export interface OutageReport {
  readonly dependency: string
  readonly state: "started" | "ended"
  readonly message: string
}

export class OutageTracker {
  private since: number | undefined
  private attempts = 0
  private readonly failing = new Set<string>()
  private readonly metrics = outageMetrics("reader")

  constructor(
    private readonly dependency: string,
    private readonly report: (r: OutageReport) => void
  ) {}

  failed(reason: string, caller = ""): void {
    this.attempts++
    this.failing.add(caller)
    if (this.since !== undefined) return this.metrics.ongoing(this.dependency, this.since)
    this.since = Date.now()
    this.metrics.started(this.dependency)
    this.report({ dependency: this.dependency, state: "started", message: `${this.dependency} unavailable, retrying with backoff: ${reason}` })
  }

  recovered(caller = ""): void {
    this.failing.delete(caller)
    if (this.since === undefined || this.failing.size > 0) return
    const durationMs = Date.now() - this.since
    this.metrics.ended(this.dependency, durationMs)
    const seconds = (durationMs / 1000).toFixed(1)
    this.report({ dependency: this.dependency, state: "ended", message: `${this.dependency} available again after ${seconds} s (${this.attempts} attempts retried)` })
    this.since = undefined
    this.attempts = 0
  }
}
