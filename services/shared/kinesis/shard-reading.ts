/**
 * What the consumer's poller and the archiver share to read shards in a loop: Kinesis calls as
 * Effects with one tagged error, and pauses that a stop cuts short (a stop is not an error and
 * not an interruption: the loops finish the batch in hand, then return).
 */
import { setTimeout as wait } from "node:timers/promises"
import { Effect, Schema } from "effect"

/** A Kinesis read failed (the loops re-read from the shard's checkpoint after a pause). */
export class KinesisReadError extends Schema.TaggedError<KinesisReadError>()("KinesisReadError", {
  message: Schema.String,
  cause: Schema.Unknown
}) {}

export const kinesisRead = <A>(work: () => Promise<A>): Effect.Effect<A, KinesisReadError> =>
  Effect.tryPromise({ try: work, catch: (cause) => new KinesisReadError({ message: (cause as Error)?.message ?? String(cause), cause }) })

/** Waits `ms`, or less if `signal` aborts. */
export const pauseUnless = (signal: AbortSignal, ms: number): Effect.Effect<void> =>
  Effect.promise(() => wait(Math.max(0, ms), undefined, { signal }).catch(() => undefined))
