/**
 * Lane senders: one fiber per destination shard puts that lane's aggregates, one after the
 * other. A failed call or entry is retried (capped backoff, without end: an outage is waited
 * out while backpressure holds the source) before the lane moves on, so a later change of a row
 * never overtakes an earlier one. Only an error that waiting cannot fix ends the reader.
 */
import { Effect } from "effect"
import { kinesisBackoff, PublishError, type PutOutcome } from "../shared/kinesis/publisher.ts"
import type { SessionContext } from "./context.ts"
import type { OutboundAggregate } from "./outbox.ts"

const RETRYABLE_ENTRY_ERRORS = new Set(["ProvisionedThroughputExceededException", "InternalFailure", "NoResult"])

const putOnce = (ctx: SessionContext, aggregate: OutboundAggregate) =>
  ctx.settings.publisher
    .put([{ partitionKey: aggregate.partitionKey, explicitHashKey: aggregate.explicitHashKey, data: aggregate.data }])
    .pipe(
      Effect.flatMap(([outcome]: ReadonlyArray<PutOutcome>) =>
        outcome?._tag === "Accepted"
          ? Effect.succeed(outcome)
          : Effect.fail(
              new PublishError({
                stream: ctx.settings.publisher.stream,
                message: `PutRecords entry failed: ${outcome?.errorCode}: ${outcome?.message}`,
                retryable: RETRYABLE_ENTRY_ERRORS.has(outcome?.errorCode ?? "NoResult")
              })
            )
      )
    )

export const laneSender = (ctx: SessionContext, laneId: string) =>
  Effect.gen(function* () {
    const wake = ctx.laneSignal(laneId)
    for (;;) {
      yield* wake.until(() => ctx.outbox.hasWork(laneId) || !ctx.outbox.laneIds().includes(laneId))
      // Woken while the intake is still handing over the messages of one socket read: let it finish,
      // so the aggregate takes all of them (under load, an in-flight call gives the same effect).
      yield* Effect.yieldNow
      const aggregate = ctx.outbox.nextAggregate(laneId)
      if (!aggregate) return // the lane of a closed shard, drained
      const started = performance.now()
      let retries = 0
      ctx.stats.publishCalls++
      const accepted = yield* putOnce(ctx, aggregate).pipe(
        Effect.tapError((error) =>
          Effect.sync(() => {
            retries++
            ctx.stats.publishCalls++
            if (error.retryable) ctx.kinesisOutage.failed(error.message, laneId)
          })
        ),
        Effect.retry({ schedule: kinesisBackoff, while: (error) => error.retryable })
      )
      ctx.kinesisOutage.recovered(laneId)
      ctx.outbox.accepted(laneId, aggregate)
      if (accepted.shardId !== aggregate.shard.shardId) ctx.shardsChanged.notify() // the stream was resharded
      const events = [...aggregate.labels.values()].reduce((a, b) => a + b, 0)
      ctx.stats.records++
      ctx.stats.recordBytes += aggregate.data.byteLength + aggregate.partitionKey.length
      ctx.stats.userRecordBytes += aggregate.entryBytes
      ctx.stats.published += events
      ctx.stats.publishRetries += retries
      for (const [label, n] of aggregate.labels) {
        ctx.stats.byTableOp[label] = (ctx.stats.byTableOp[label] ?? 0) + n
        ctx.pendingMetrics.byTableOp.set(label, (ctx.pendingMetrics.byTableOp.get(label) ?? 0) + n)
      }
      ctx.pendingMetrics.publishLatency.push(performance.now() - started)
      ctx.pendingMetrics.eventsPerRecord.push(aggregate.records)
      ctx.pendingMetrics.retries += retries
      ctx.intake.onAccepted()
      ctx.accepted.notify()
    }
  })
