/**
 * What the consumer's poller and the archiver share to read shards in a loop: Kinesis calls as
 * Effects with one tagged error, and pauses that a stop cuts short (a stop is not an error and
 * not an interruption: the loops finish the batch in hand, then return).
 */
import { setTimeout as wait } from "node:timers/promises"
import { Cause, Effect, Exit, Schedule, Schema } from "effect"

/** A Kinesis read failed (the loops re-read from the shard's checkpoint after a pause). */
export class KinesisReadError extends Schema.TaggedError<KinesisReadError>()("KinesisReadError", {
  message: Schema.String,
  cause: Schema.Unknown
}) {}

/**
 * The readers' retry policy for one call (the Kinesis client itself makes one attempt): twice more
 * within half a second, so that a single dropped connection ("socket hang up" on a reused socket)
 * is not reported as an outage; what still fails is, and the loop re-reads after a pause.
 */
const READ_RETRY = Schedule.exponential("100 millis", 2).pipe(Schedule.upTo({ times: 2 }))

export const kinesisRead = <A>(work: () => Promise<A>): Effect.Effect<A, KinesisReadError> =>
  Effect.tryPromise({ try: work, catch: (cause) => new KinesisReadError({ message: (cause as Error)?.message ?? String(cause), cause }) }).pipe(Effect.retry(READ_RETRY))

/** Waits `ms`, or less if `signal` aborts. */
export const pauseUnless = (signal: AbortSignal, ms: number): Effect.Effect<void> =>
  Effect.promise(() => wait(Math.max(0, ms), undefined, { signal }).catch(() => undefined))

/**
 * Runs `step` (one page of a shard) until `signal` aborts or it answers "ended" (a closed shard
 * read to its end). Any failure, a defect too, goes to `onFailure` (which resets what must be read
 * again), then the loop pauses a second and goes on.
 */
export const readShardUntil = <E>(signal: AbortSignal, step: Effect.Effect<"ended" | "more", E>, onFailure: (error: unknown) => void): Effect.Effect<void> =>
  Effect.gen(function* () {
    while (!signal.aborted) {
      const exit = yield* Effect.exit(step)
      if (Exit.isSuccess(exit)) {
        if (exit.value === "ended") return
        continue
      }
      onFailure(Cause.squash(exit.cause))
      yield* pauseUnless(signal, 1_000)
    }
  })
