/**
 * The consumer's and the archiver's callbacks wired to an outage reporter (shared/outage-reporter.ts):
 * each failed attempt is counted against the dependency behind it, and a delivered batch (read,
 * applied, checkpointed) or a written object ends the outages of what it proves to work. Used by
 * `totes run` and `totes dev`.
 */
import type { ArchiverOptions } from "../archiver/archiver.ts"
import type { PollerOptions } from "../consumer/poller.ts"
import { dependencyOf, type OutageReporter } from "../shared/outage-reporter.ts"

type Env = Record<string, string | undefined>

/** A batch the warehouse (or the lake, for claim checks) could not take: retried from the failed record. */
const BATCH_NOT_APPLIED = "a batch could not be applied (the warehouse or the lake is unavailable); retrying from the failed record"

export const consumerOutageCallbacks = (
  outages: OutageReporter,
  env: Env
): Pick<PollerOptions, "onError" | "onBatch"> & { readonly onWarehouseRetry: (error: unknown) => void } => ({
  // Told at the first failed attempt inside a batch, not after its retries are spent.
  onWarehouseRetry: (error) => outages.failure(dependencyOf(error, "warehouse", env), error, "apply"),
  onError: (shardId, error) => outages.failure(dependencyOf(error, "Kinesis", env), error, `read ${shardId}`),
  onBatch: (shardId, outcome) => {
    if (outcome.response.batchItemFailures.length > 0) {
      outages.failure("warehouse", new Error(BATCH_NOT_APPLIED), `apply ${shardId}`)
      return
    }
    for (const dependency of ["Kinesis", "DynamoDB", "warehouse"]) outages.success(dependency)
  }
})

export const archiverOutageCallbacks = (outages: OutageReporter, env: Env): Pick<ArchiverOptions, "onError" | "onFlush"> => ({
  onError: (shardId, error) => outages.failure(dependencyOf(error, "Kinesis", env), error, shardId === "*" ? "list shards" : `archive ${shardId}`),
  // A written object proves S3 only: the records may have been read before an outage of Kinesis,
  // and the checkpoint after the write reports its own failure. Those outages end by quiet period.
  onFlush: () => outages.success("S3")
})
