/**
 * What the consumer's poller and the archiver share to read shards in a loop: Kinesis calls as
 * Effects with one tagged error, and pauses that a stop cuts short (a stop is not an error and
 * not an interruption: the loops finish the batch in hand, then return).
 */
import { setTimeout as wait } from "node:timers/promises"
import type { Shard } from "@aws-sdk/client-kinesis"
import { Cause, Deferred, Effect, Exit, Fiber, Schedule, Schema } from "effect"

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

export interface FollowShardsOptions<E> {
  readonly signal: AbortSignal
  /** Every shard of the stream, open and closed (listShards). */
  readonly list: Effect.Effect<ReadonlyArray<Shard>, E>
  /** How often the shards are listed again, to follow a reshard. */
  readonly refreshMs: number
  /** Runs once for the shards a listing found new, before any of them is read. */
  readonly prepare?: (shardIds: ReadonlyArray<string>) => Effect.Effect<void>
  /** Reads one shard until it is drained (a closed shard) or `signal` aborts. */
  readonly read: (shardId: string) => Effect.Effect<void>
  /** A later listing failed (the first one fails the whole). */
  readonly onListError: (error: unknown) => void
}

/**
 * Reads every shard of a stream the way the Lambda event source mapping and the KCL do: a child
 * shard is read only once its parents' reads are over, so a row's older changes (on the parent)
 * come before its newer ones (on a child), and the shards are listed again every `refreshMs` so
 * that the children of a reshard are read too. Returns when `signal` has aborted and every read
 * has returned.
 */
export const followShards = <E>(options: FollowShardsOptions<E>): Effect.Effect<void, E> =>
  Effect.gen(function* () {
    const { signal } = options
    /** Per shard started: done when its read is over (drained, or stopped). */
    const over = new Map<string, Deferred.Deferred<void>>()
    const fibers: Array<Fiber.Fiber<void>> = []
    const startNew = Effect.gen(function* () {
      const fresh = (yield* options.list).filter((shard) => !over.has(shard.ShardId!))
      if (fresh.length === 0) return
      if (options.prepare) yield* options.prepare(fresh.map((shard) => shard.ShardId!))
      for (const shard of fresh) over.set(shard.ShardId!, Deferred.makeUnsafe<void>())
      for (const shard of fresh) {
        const parents = [shard.ParentShardId, shard.AdjacentParentShardId].flatMap((id) => (id && over.has(id) ? [over.get(id)!] : []))
        const read = Effect.gen(function* () {
          for (const parent of parents) yield* Deferred.await(parent)
          if (!signal.aborted) yield* options.read(shard.ShardId!)
        }).pipe(Effect.ensuring(Deferred.done(over.get(shard.ShardId!)!, Exit.void)))
        fibers.push(yield* Effect.forkChild(read))
      }
    })
    yield* startNew
    while (!signal.aborted) {
      yield* pauseUnless(signal, options.refreshMs)
      if (signal.aborted) break
      yield* startNew.pipe(Effect.catch((error) => Effect.sync(() => options.onListError(error))))
    }
    // Every read ends on its own (a stop is not an interruption: the batch in hand is finished).
    yield* Fiber.awaitAll(fibers)
  })
