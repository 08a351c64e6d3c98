/**
 * The one record of a component's dependency outages, and the only code that words them and
 * counts them as metrics: an outage starts with the first failed attempt (one notice, the
 * DependencyOutages metric), later failures are only counted, and it ends with one notice (how
 * long, how many attempts were retried, what was being retried) when every caller that failed
 * works again. Never a line per attempt.
 *
 * Its two users differ only in how they learn that a dependency is back:
 * - explicitly (services/reader/outage.ts): several callers share a dependency (the reader's
 *   Kinesis lanes); each says `recovered(caller)`, and the last failing one ends the outage;
 * - by inference (outage-reporter.ts, for `totes run`'s consumer and archiver): a success after
 *   a settling delay, or a quiet period without failures, ends it, dated to the last failure.
 */
import type { LogFields } from "./logger.ts"
import { metrics, type Component } from "./metrics.ts"

/** How often an outage still going on repeats its duration as a metric. */
const ONGOING_METRIC_MS = 60_000

/** What was being retried is kept for this many distinct operations. */
const MAX_OPERATIONS = 20

/**
 * The outage metrics of a component: DependencyOutages when one starts, DependencyOutageSeconds
 * once a minute while it lasts (`ongoing` is called on each failed attempt) and when it ends.
 */
const outageMetrics = (component: Component, now: () => number = Date.now) => {
  const lastEmitted = new Map<string, number>()
  return {
    started: (dependency: string) => {
      lastEmitted.set(dependency, now())
      metrics.emit(component, { DependencyOutages: 1 }, { Dependency: dependency })
    },
    ongoing: (dependency: string, since: number) => {
      const at = now()
      if (at - (lastEmitted.get(dependency) ?? since) < ONGOING_METRIC_MS) return
      lastEmitted.set(dependency, at)
      metrics.emit(component, { DependencyOutageSeconds: (at - since) / 1000 }, { Dependency: dependency })
    },
    ended: (dependency: string, durationMs: number) => {
      lastEmitted.delete(dependency)
      metrics.emit(component, { DependencyOutageSeconds: durationMs / 1000 }, { Dependency: dependency })
    }
  }
}

export interface Outage {
  readonly dependency: string
  /** Epoch ms of the first failure. */
  readonly since: number
  readonly lastFailureAt: number
  /** Failed attempts so far (the first included). */
  readonly failures: number
  /** What was being retried (distinct operations, first 20). */
  readonly operations: ReadonlyArray<string>
  /** The latest failure's reason. */
  readonly reason: string
  readonly errorCode?: string
}

/** A failed attempt. */
export interface Failure {
  readonly reason: string
  readonly errorCode?: string
  /** What was being tried ("read shardId-0", "apply"). */
  readonly operation?: string
  /** Who failed, when several callers share the dependency; the outage ends when all have recovered. */
  readonly caller?: string
}

/**
 * How an outage reads. `inline`: one self-contained sentence with the reason in it (the reader's
 * progress reports carry a message and nothing else). `structured`: a fixed sentence, with the
 * reason, the operations and the counts as the log line's fields.
 */
export type OutageWording = "inline" | "structured"

export interface OutageNotice {
  readonly dependency: string
  readonly state: "started" | "ended"
  /** warn when it starts, info when it ends. */
  readonly level: "warn" | "info"
  readonly message: string
  /** The structured log line's fields. */
  readonly fields: LogFields
}

const seconds = (ms: number) => (ms / 1000).toFixed(1)

const WORDINGS: Record<OutageWording, { started: (o: Outage) => string; ended: (o: Outage, durationMs: number) => string }> = {
  inline: {
    started: (o) => `${o.dependency} unavailable, retrying with backoff: ${o.reason}`,
    ended: (o, durationMs) => `${o.dependency} available again after ${seconds(durationMs)} s (${o.failures} attempts retried)`
  },
  structured: {
    started: (o) => `${o.dependency} is unavailable; retrying with backoff (one line when it is back)`,
    ended: (o, durationMs) => `${o.dependency} is available again after ${seconds(durationMs)} s; ${o.failures} failed attempt${o.failures === 1 ? "" : "s"} retried`
  }
}

/** The start notice of `outage` (just opened by its first failure). */
const outageStarted = (outage: Outage, wording: OutageWording): OutageNotice => ({
  dependency: outage.dependency,
  state: "started",
  level: "warn",
  message: WORDINGS[wording].started(outage),
  fields: {
    dependency: outage.dependency,
    reason: outage.reason,
    ...(outage.errorCode ? { errorCode: outage.errorCode } : {}),
    ...(outage.operations.length > 0 ? { operations: outage.operations } : {})
  }
})

/** The end notice of `outage`, which lasted `durationMs`. */
const outageEnded = (outage: Outage, durationMs: number, wording: OutageWording): OutageNotice => ({
  dependency: outage.dependency,
  state: "ended",
  level: "info",
  message: WORDINGS[wording].ended(outage, durationMs),
  fields: {
    dependency: outage.dependency,
    durationMs,
    retries: outage.failures,
    operations: outage.operations,
    reason: outage.reason,
    ...(outage.errorCode ? { errorCode: outage.errorCode } : {})
  }
})

export interface OutageBook {
  /** A failed attempt: the first of an outage notifies its start, the next ones are only counted. */
  readonly failed: (dependency: string, failure: Failure) => void
  /**
   * `caller` works again (default: the only caller). Once no caller of the dependency is failing,
   * its outage ends, dated `at` (default now), with one notice. Without an outage: nothing.
   */
  readonly recovered: (dependency: string, caller?: string, at?: number) => void
  /** The outage of `dependency` going on now, if any. */
  readonly get: (dependency: string) => Outage | undefined
  /** The outages going on now. */
  readonly current: () => ReadonlyArray<Outage>
}

export interface OutageBookOptions {
  /** Where each start and end goes (a logger, a progress report). */
  readonly notify: (notice: OutageNotice) => void
  readonly wording: OutageWording
  /** Emits the outage metrics under this component (none without it). */
  readonly component?: Component
  readonly now?: () => number
}

export const makeOutageBook = (options: OutageBookOptions): OutageBook => {
  const now = options.now ?? Date.now
  const emitted = options.component ? outageMetrics(options.component, now) : undefined
  const open = new Map<string, { outage: Outage; failing: Set<string> }>()

  return {
    failed: (dependency, failure) => {
      const at = now()
      const known = open.get(dependency)
      const operations = known?.outage.operations ?? []
      const { operation } = failure
      const outage: Outage = {
        dependency,
        since: known?.outage.since ?? at,
        lastFailureAt: at,
        failures: (known?.outage.failures ?? 0) + 1,
        operations: operation && !operations.includes(operation) && operations.length < MAX_OPERATIONS ? [...operations, operation] : operations,
        reason: failure.reason,
        ...(failure.errorCode ? { errorCode: failure.errorCode } : {})
      }
      const failing = known?.failing ?? new Set<string>()
      failing.add(failure.caller ?? "")
      open.set(dependency, { outage, failing })
      if (known) return emitted?.ongoing(dependency, outage.since)
      emitted?.started(dependency)
      options.notify(outageStarted(outage, options.wording))
    },
    recovered: (dependency, caller = "", at = now()) => {
      const known = open.get(dependency)
      if (!known) return
      known.failing.delete(caller)
      if (known.failing.size > 0) return
      open.delete(dependency)
      const durationMs = Math.max(0, at - known.outage.since)
      emitted?.ended(dependency, durationMs)
      options.notify(outageEnded(known.outage, durationMs, options.wording))
    },
    get: (dependency) => open.get(dependency)?.outage,
    current: () => [...open.values()].map((o) => o.outage)
  }
}
