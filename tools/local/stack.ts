/**
 * The local stack: the real thing in miniature. PostgreSQL (source `totesys` + `warehouse`),
 * Kinesis, DynamoDB and S3 servers, all from npm packages, on free loopback ports, with the
 * pipeline's resources created. Components reach them only through the returned variables.
 */
import { mkdirSync } from "node:fs"
import { startDynamo, startKinesis, startS3, type LocalServer } from "./aws-servers.ts"
import { startPostgres, type LocalPostgres } from "./postgres.ts"
import { provisionPipeline } from "./provision.ts"

export interface LocalStack {
  readonly env: Readonly<Record<string, string>>
  readonly postgres: LocalPostgres
  readonly stop: () => Promise<void>
}

export interface StackOptions {
  readonly dir: string
  readonly shards?: number
  readonly onProgress?: (message: string) => void
}

export const DEFAULT_NAMES = {
  TOTES_STREAM: "totes-changes",
  TOTES_LAKE_BUCKET: "totes-lake",
  TOTES_CHECKPOINT_TABLE: "totes-checkpoints",
  TOTES_SLOT: "totes_cdc",
  TOTES_PUBLICATION: "totes_cdc"
} as const

export const startStack = async (options: StackOptions): Promise<LocalStack> => {
  const progress = options.onProgress ?? (() => {})
  mkdirSync(options.dir, { recursive: true })
  const started: Array<{ stop: () => Promise<void> }> = []
  const stopAll = async () => {
    for (const service of started.reverse()) await service.stop().catch(() => {})
  }
  try {
    progress("starting postgres")
    const postgres = await startPostgres({ dir: options.dir, databases: ["totesys", "warehouse"] })
    started.push(postgres)
    progress("starting kinesis, dynamodb, s3")
    const [kinesis, dynamo, s3] = await Promise.all([startKinesis(), startDynamo(), startS3()])
    started.push(kinesis as LocalServer, dynamo as LocalServer, s3 as LocalServer)
    const env: Record<string, string> = {
      SOURCE_DATABASE_URL: postgres.url("totesys"),
      WAREHOUSE_DATABASE_URL: postgres.url("warehouse"),
      AWS_ENDPOINT_URL_KINESIS: kinesis.endpoint,
      AWS_ENDPOINT_URL_DYNAMODB: dynamo.endpoint,
      AWS_ENDPOINT_URL_S3: s3.endpoint,
      AWS_REGION: "eu-west-2",
      // The local servers accept any credentials; these are placeholders, not secrets.
      AWS_ACCESS_KEY_ID: "local",
      AWS_SECRET_ACCESS_KEY: "local",
      AWS_EC2_METADATA_DISABLED: "true",
      ...DEFAULT_NAMES
    }
    progress("creating stream, bucket, checkpoint table")
    await provisionPipeline(env, {
      stream: env.TOTES_STREAM!,
      bucket: env.TOTES_LAKE_BUCKET!,
      table: env.TOTES_CHECKPOINT_TABLE!,
      shards: options.shards ?? 4
    })
    return { env, postgres, stop: stopAll }
  } catch (error) {
    await stopAll()
    throw error
  }
}
