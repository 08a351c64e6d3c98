/**
 * Outages logged as two lines, never one per attempt: a warning when a dependency (Kinesis,
 * DynamoDB, S3, the warehouse, the source) starts failing, and an info line when it works again,
 * with how long it lasted, how many attempts failed and what was being retried.
 *
 *   const outages = makeOutageReporter({ log })
 *   retryLoop: try { await work(); outages.success("Kinesis") } catch (e) { outages.failure("Kinesis", e, "poll shardId-1") }
 *
 * Code that cannot tell when an attempt succeeds (a callback that only hears about failures)
 * relies on `quietMs`: an outage with no failure for that long is over; its duration then runs
 * to the last failure. A success right after a failure (`settleMs`) does not end an outage: with
 * several concurrent callers (one per shard), it may rest on a call made before the outage.
 * `dependencyOf` names the dependency behind an error.
 */
import { type Logger } from "./logger.ts"
import type { Component } from "./metrics.ts"
import { makeOutageBook, type Outage } from "./outage-book.ts"

export type { Outage } from "./outage-book.ts"

export interface OutageReporter {
  /** A failed attempt: the first of an outage logs a warning, the next ones are only counted. */
  readonly failure: (dependency: string, error: unknown, operation?: string) => void
  /**
   * A successful attempt: ends the dependency's outage, if there is one, with an info line; unless
   * a failure came less than `settleMs` ago (the success may rest on a call made before it).
   */
  readonly success: (dependency: string) => void
  /** The outages going on now (for a status display). */
  readonly current: () => ReadonlyArray<Outage>
  /** Stops the quiet-period timers; outages still open are not logged as ended. */
  readonly close: () => void
}

export interface OutageReporterOptions {
  readonly log: Logger
  /** Emits the outage metrics under this component (none without it). */
  readonly component?: Component
  /** With no failure for this long an outage is over (default 10 s); 0: only `success` ends one. */
  readonly quietMs?: number
  /** A success this soon after a failure does not end an outage (default 2 s). */
  readonly settleMs?: number
  readonly now?: () => number
}

type ErrorLike = { message?: unknown; code?: unknown; name?: unknown; _tag?: unknown; cause?: unknown } | null | undefined

/**
 * The code that names a failure: the driver's or SDK's own (a SQLSTATE, ECONNREFUSED, an AWS
 * exception name), also when one of our tagged errors wraps it as its `cause`; else the tag.
 */
export const errorCodeOf = (error: unknown): string | undefined => {
  const e = error as ErrorLike
  const origin = (typeof e?._tag === "string" && e.cause && typeof e.cause === "object" ? e.cause : e) as ErrorLike
  const named = (x: ErrorLike) => (typeof x?.code === "string" ? x.code : typeof x?.name === "string" && x.name !== "Error" ? x.name : undefined)
  return named(origin) ?? (typeof e?._tag === "string" ? e._tag : named(e))
}

const reasonOf = (error: unknown): { reason: string; errorCode?: string } => {
  const e = error as ErrorLike
  const reason = typeof e?.message === "string" ? e.message : String(error)
  const code = errorCodeOf(error)
  return { reason: reason.split("\n")[0]!.slice(0, 300), ...(code ? { errorCode: code } : {}) }
}

/** The outage book (outage-book.ts) with the end of an outage inferred: by a success, or by a quiet period. */
export const makeOutageReporter = (options: OutageReporterOptions): OutageReporter => {
  const now = options.now ?? Date.now
  const quietMs = options.quietMs ?? 10_000
  const settleMs = options.settleMs ?? 2_000
  const timers = new Map<string, ReturnType<typeof setTimeout>>()
  const book = makeOutageBook({
    wording: "structured",
    now,
    ...(options.component ? { component: options.component } : {}),
    notify: (notice) => options.log[notice.level](notice.message, notice.fields)
  })

  const end = (dependency: string, endedAt: number) => {
    clearTimeout(timers.get(dependency))
    timers.delete(dependency)
    book.recovered(dependency, undefined, endedAt)
  }

  const armQuietTimer = (dependency: string) => {
    if (quietMs <= 0) return
    clearTimeout(timers.get(dependency))
    const timer = setTimeout(() => end(dependency, book.get(dependency)?.lastFailureAt ?? now()), quietMs)
    timer.unref?.()
    timers.set(dependency, timer)
  }

  return {
    failure: (dependency, error, operation) => {
      book.failed(dependency, { ...reasonOf(error), ...(operation ? { operation } : {}) })
      armQuietTimer(dependency)
    },
    success: (dependency) => {
      const outage = book.get(dependency)
      if (outage && now() - outage.lastFailureAt >= settleMs) end(dependency, now())
    },
    current: book.current,
    close: () => {
      for (const timer of timers.values()) clearTimeout(timer)
      timers.clear()
    }
  }
}

/** The service names of the AWS_ENDPOINT_URL_* variables, for `dependencyOf`. */
const ENDPOINT_SERVICES = [
  ["AWS_ENDPOINT_URL_KINESIS", "Kinesis"],
  ["AWS_ENDPOINT_URL_DYNAMODB", "DynamoDB"],
  ["AWS_ENDPOINT_URL_S3", "S3"]
] as const

const TAGGED: Record<string, string> = {
  CheckpointError: "DynamoDB",
  LakeError: "S3",
  DeadLetterFailed: "S3",
  SnapshotChunkUnavailable: "S3",
  PublishError: "Kinesis",
  KinesisReadError: "Kinesis",
  WarehouseError: "warehouse"
}
const AWS_HOSTS: ReadonlyArray<readonly [RegExp, string]> = [
  [/\bkinesis\.[a-z0-9-]+\.amazonaws\.com/, "Kinesis"],
  [/\bdynamodb\.[a-z0-9-]+\.amazonaws\.com/, "DynamoDB"],
  [/\bs3[.-]([a-z0-9-]+\.)?amazonaws\.com|\.s3\./, "S3"]
]

/**
 * The dependency an error came from: the pipeline's tagged errors (CheckpointError → DynamoDB,
 * LakeError and the lake's other failures → S3, PublishError and KinesisReadError → Kinesis,
 * WarehouseError → warehouse), an AWS host name, or a local endpoint's port in the
 * message; otherwise `fallback` (what the failing call talks to).
 */
export const dependencyOf = (error: unknown, fallback: string, env: Record<string, string | undefined> = process.env): string => {
  const e = error as { _tag?: unknown; message?: unknown } | null | undefined
  if (typeof e?._tag === "string" && TAGGED[e._tag]) return TAGGED[e._tag]!
  const message = typeof e?.message === "string" ? e.message : ""
  for (const [pattern, service] of AWS_HOSTS) if (pattern.test(message)) return service
  for (const [variable, service] of ENDPOINT_SERVICES) {
    const endpoint = env[variable]
    if (!endpoint) continue
    try {
      const { hostname, port } = new URL(endpoint)
      if (port && message.includes(`${hostname}:${port}`)) return service
    } catch {
      // not a URL: checkConfiguration refuses it at start
    }
  }
  return fallback
}
