/**
 * Runs one replay in a child process, for crash tests: `node --import tsx test/support/replay-child.ts`
 * with REPLAY_CHILD = JSON {env, target, name, batchSize, segmentSize?, rowByRow?, listingMarginMs}. Prints
 * `batch <events> <objects done>` after every applied batch, `checkpoint <objects>` after every
 * checkpoint written (bulk writes it after its segment's commit, in the background, so a batch line
 * does not say what is durable) and `done <report JSON>` at the end.
 */
import { Effect } from "effect"
import { replay } from "../../services/replay/replay.ts"
import { s3Client } from "../../services/shared/aws-clients.ts"
import { CheckpointStore, type CheckpointStoreShape } from "../../services/shared/checkpoint-store.ts"
import { makeLakeStore } from "../../services/shared/lake-store.ts"

const config = JSON.parse(process.env.REPLAY_CHILD ?? "{}") as {
  env: Record<string, string>
  target: string
  name: string
  batchSize: number
  segmentSize?: number
  rowByRow?: boolean
  listingMarginMs: number
}

const store = Effect.runSync(CheckpointStore.make(config.env))
const checkpoints: CheckpointStoreShape = {
  ...store,
  advance: (key, position, data) =>
    store.advance(key, position, data).pipe(
      Effect.tap((written) => Effect.sync(() => written && process.stdout.write(`checkpoint ${(data as { objects?: number }).objects ?? 0}\n`)))
    )
}

const report = await Effect.runPromise(replay({
  lake: makeLakeStore(config.env.TOTES_LAKE_BUCKET!, s3Client(config.env)),
  targetUrl: config.target,
  checkpoints,
  name: config.name,
  batchSize: config.batchSize,
  ...(config.segmentSize !== undefined ? { segmentSize: config.segmentSize } : {}),
  ...(config.rowByRow !== undefined ? { rowByRow: config.rowByRow } : {}),
  listingMarginMs: config.listingMarginMs,
  progressIntervalMs: 0,
  onProgress: (p) => process.stdout.write(`batch ${p.events} ${p.objectsDone}\n`)
}))
process.stdout.write(`done ${JSON.stringify(report)}\n`)
process.exit(0)
