/**
 * Least-privilege IAM statements for every component, as plain data (no SST imports: unit-tested).
 *
 * The statement builders are generic in the ARN type `A`: infra passes Pulumi outputs, tests pass
 * strings. Object ARNs are built by `lake.objects(prefix)` (infra: `${bucket.arn}/${prefix}*`).
 *
 *   reader      Kinesis PutRecord(s)/DescribeStreamSummary/ListShards on the stream; checkpoint
 *               Get/Put/UpdateItem on its own keys (reader#…, snapshot#…); PutObject under
 *               claims/ (oversize events, claim checks) and snapshots/ (initial-snapshot chunks).
 *   consumer    (stream read actions come from SST's subscriber) checkpoint Get/Put/UpdateItem on
 *               consumer#… keys; GetObject under claims/ and snapshots/; PutObject under dead-letter/;
 *               SendMessage to the on-failure queue (the event source mapping sends with the
 *               function's role); GetSecretValue on the warehouse URL's secret (read at cold start).
 *   replay      List + GetObject under raw/, claims/, parquet/, GetObject under snapshots/; checkpoint Get/Put/UpdateItem on
 *               replay#… keys.
 *   compaction  List + GetObject under raw/, GetObject under claims/ and snapshots/; List + PutObject under parquet/.
 *   lake watermark (scheduled Lambda) List + GetObject under raw/ only: heartbeats are never
 *               claim-checked; it writes nothing (its metric goes out as EMF on stdout).
 *   firehose    Kinesis read actions on the stream; PutObject/AbortMultipartUpload under raw/
 *               and errors/ only; its CloudWatch log stream.
 *   analyst     (a managed policy to attach to people or roles that query the lake) Athena query
 *               actions on the lake's workgroup only; Glue catalog reads of the lake database;
 *               List + GetObject under parquet/ and raw/; read/write of query results under the
 *               workgroup's prefix of the results bucket. Nothing else of the lake (claims/,
 *               dead-letter/), no writes to it, no catalog changes.
 */
import { CHECKPOINT_KEY_PREFIXES } from "../contracts/checkpoint.ts"
import { DEAD_LETTER_PREFIX, PARQUET_PREFIX, RAW_PREFIX, SNAPSHOTS_PREFIX } from "../contracts/lake.ts"

export const ERRORS_PREFIX = "errors/"
export const CLAIMS_PREFIX = "claims/"

export const LAKE_PREFIXES = {
  raw: RAW_PREFIX,
  errors: ERRORS_PREFIX,
  deadLetter: DEAD_LETTER_PREFIX,
  claims: CLAIMS_PREFIX,
  snapshots: SNAPSHOTS_PREFIX,
  parquet: PARQUET_PREFIX
} as const
export type LakePrefix = (typeof LAKE_PREFIXES)[keyof typeof LAKE_PREFIXES]

export interface Condition {
  readonly test: string
  readonly variable: string
  readonly values: ReadonlyArray<string>
}

export interface Statement<A = string> {
  readonly sid: string
  readonly actions: ReadonlyArray<string>
  readonly resources: ReadonlyArray<A>
  readonly conditions?: ReadonlyArray<Condition>
}

export interface LakeArns<A> {
  readonly bucket: A
  /** The ARN pattern of the objects under a prefix: `${bucketArn}/${prefix}*`. */
  readonly objects: (prefix: LakePrefix) => A
}

export const READER_STREAM_ACTIONS = ["kinesis:PutRecord", "kinesis:PutRecords", "kinesis:DescribeStreamSummary", "kinesis:ListShards"] as const
export const CHECKPOINT_ACTIONS = ["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem"] as const
/** What SST's KinesisStream.subscribe grants the subscriber function (read only). */
export const SST_SUBSCRIBER_STREAM_ACTIONS = [
  "kinesis:DescribeStream",
  "kinesis:DescribeStreamSummary",
  "kinesis:GetRecords",
  "kinesis:GetShardIterator",
  "kinesis:ListShards",
  "kinesis:ListStreams",
  "kinesis:SubscribeToShard"
] as const
export const FIREHOSE_STREAM_ACTIONS = ["kinesis:DescribeStream", "kinesis:DescribeStreamSummary", "kinesis:GetShardIterator", "kinesis:GetRecords", "kinesis:ListShards"] as const

const listUnder = <A>(sid: string, lake: LakeArns<A>, prefixes: ReadonlyArray<LakePrefix>): Statement<A> => ({
  sid,
  actions: ["s3:ListBucket"],
  resources: [lake.bucket],
  conditions: [{ test: "StringLike", variable: "s3:prefix", values: prefixes.flatMap((p) => [p, `${p}*`]) }]
})

export type CheckpointOwner = keyof typeof CHECKPOINT_KEY_PREFIXES

/** The IAM condition that limits checkpoint items to an owner's key prefixes (every key of a request must match). */
export const leadingKeys = (owner: CheckpointOwner): Condition => ({
  test: "ForAllValues:StringLike",
  variable: "dynamodb:LeadingKeys",
  values: CHECKPOINT_KEY_PREFIXES[owner].map((prefix) => `${prefix}*`)
})

const checkpoints = <A>(table: A, owner: CheckpointOwner): Statement<A> => ({
  sid: "OwnCheckpoints",
  actions: [...CHECKPOINT_ACTIONS],
  resources: [table],
  conditions: [leadingKeys(owner)]
})

export const readerStatements = <A>(arns: { readonly stream: A; readonly checkpointTable: A; readonly lake: LakeArns<A> }): Array<Statement<A>> => [
  { sid: "PublishToStream", actions: [...READER_STREAM_ACTIONS], resources: [arns.stream] },
  checkpoints(arns.checkpointTable, "reader"),
  { sid: "WriteClaimChecks", actions: ["s3:PutObject"], resources: [arns.lake.objects(CLAIMS_PREFIX), arns.lake.objects(SNAPSHOTS_PREFIX)] }
]

export interface ConsumerArns<A> {
  readonly checkpointTable: A
  readonly lake: LakeArns<A>
  readonly failureQueue: A
  /** The Secrets Manager secret holding the warehouse URL (the Lambda reads it at cold start). */
  readonly warehouseSecret: A
}

export const consumerStatements = <A>(arns: ConsumerArns<A>): Array<Statement<A>> => [
  checkpoints(arns.checkpointTable, "consumer"),
  { sid: "ReadClaimChecks", actions: ["s3:GetObject"], resources: [arns.lake.objects(CLAIMS_PREFIX), arns.lake.objects(SNAPSHOTS_PREFIX)] },
  { sid: "WriteDeadLetters", actions: ["s3:PutObject"], resources: [arns.lake.objects(DEAD_LETTER_PREFIX)] },
  { sid: "SendFailedBatches", actions: ["sqs:SendMessage"], resources: [arns.failureQueue] },
  { sid: "ReadWarehouseUrl", actions: ["secretsmanager:GetSecretValue"], resources: [arns.warehouseSecret] }
]

/** The consumer's statements plus what SST's subscriber adds: everything its role can do. */
export const consumerEffectiveStatements = <A>(arns: ConsumerArns<A> & { readonly stream: A }): Array<Statement<A>> => [
  { sid: "SubscriberReadsStream", actions: [...SST_SUBSCRIBER_STREAM_ACTIONS], resources: [arns.stream] },
  ...consumerStatements(arns)
]

export const replayStatements = <A>(arns: { readonly checkpointTable: A; readonly lake: LakeArns<A> }): Array<Statement<A>> => [
  listUnder("ListLake", arns.lake, [RAW_PREFIX, CLAIMS_PREFIX, PARQUET_PREFIX]),
  { sid: "ReadLake", actions: ["s3:GetObject"], resources: ([RAW_PREFIX, CLAIMS_PREFIX, PARQUET_PREFIX, SNAPSHOTS_PREFIX] as const).map((p) => arns.lake.objects(p)) },
  checkpoints(arns.checkpointTable, "replay")
]

export const compactionStatements = <A>(arns: { readonly lake: LakeArns<A> }): Array<Statement<A>> => [
  listUnder("ListLake", arns.lake, [RAW_PREFIX, PARQUET_PREFIX]),
  { sid: "ReadRaw", actions: ["s3:GetObject"], resources: [arns.lake.objects(RAW_PREFIX), arns.lake.objects(CLAIMS_PREFIX), arns.lake.objects(SNAPSHOTS_PREFIX)] },
  { sid: "WriteParquet", actions: ["s3:PutObject"], resources: [arns.lake.objects(PARQUET_PREFIX)] }
]

export const lakeWatermarkStatements = <A>(arns: { readonly lake: LakeArns<A> }): Array<Statement<A>> => [
  listUnder("ListRaw", arns.lake, [RAW_PREFIX]),
  { sid: "ReadRaw", actions: ["s3:GetObject"], resources: [arns.lake.objects(RAW_PREFIX)] }
]

export const firehoseStatements = <A>(arns: { readonly stream: A; readonly lake: LakeArns<A>; readonly logStream: A }): Array<Statement<A>> => [
  { sid: "ReadStream", actions: [...FIREHOSE_STREAM_ACTIONS], resources: [arns.stream] },
  { sid: "LocateBucket", actions: ["s3:GetBucketLocation", "s3:ListBucketMultipartUploads"], resources: [arns.lake.bucket] },
  listUnder("ListOwnPrefixes", arns.lake, [RAW_PREFIX, ERRORS_PREFIX]),
  { sid: "WriteOwnPrefixes", actions: ["s3:PutObject", "s3:AbortMultipartUpload"], resources: [arns.lake.objects(RAW_PREFIX), arns.lake.objects(ERRORS_PREFIX)] },
  { sid: "LogDeliveryErrors", actions: ["logs:PutLogEvents"], resources: [arns.logStream] }
]

const conditionBlock = (conditions: ReadonlyArray<Condition>): Record<string, Record<string, Array<string>>> => {
  const block: Record<string, Record<string, Array<string>>> = {}
  for (const c of conditions) {
    const operator = (block[c.test] ??= {})
    operator[c.variable] = [...(operator[c.variable] ?? []), ...c.values]
  }
  return block
}

/** An IAM policy document (for raw aws.iam roles such as Firehose's). */
export const policyDocument = (statements: ReadonlyArray<Statement<string>>): string =>
  JSON.stringify({
    Version: "2012-10-17",
    Statement: statements.map((s) => ({
      Sid: s.sid,
      Effect: "Allow",
      Action: [...s.actions],
      Resource: [...s.resources],
      ...(s.conditions && s.conditions.length > 0 ? { Condition: conditionBlock(s.conditions) } : {})
    }))
  })

/** Trust policy for Firehose, limited to this account (confused-deputy guard). */
export const firehoseTrustPolicy = (accountId: string): string =>
  JSON.stringify({
    Version: "2012-10-17",
    Statement: [
      {
        Effect: "Allow",
        Principal: { Service: "firehose.amazonaws.com" },
        Action: "sts:AssumeRole",
        Condition: { StringEquals: { "sts:ExternalId": accountId } }
      }
    ]
  })

/** Every action a set of statements grants (for assertions). */
export const grantedActions = <A>(statements: ReadonlyArray<Statement<A>>): Array<string> => [...new Set(statements.flatMap((s) => s.actions))].sort()

export const ATHENA_QUERY_ACTIONS = [
  "athena:StartQueryExecution",
  "athena:StopQueryExecution",
  "athena:GetQueryExecution",
  "athena:GetQueryResults",
  "athena:GetQueryRuntimeStatistics",
  "athena:BatchGetQueryExecution",
  "athena:ListQueryExecutions",
  "athena:GetWorkGroup",
  "athena:GetNamedQuery",
  "athena:BatchGetNamedQuery",
  "athena:ListNamedQueries"
] as const
export const GLUE_READ_ACTIONS = ["glue:GetDatabase", "glue:GetTable", "glue:GetTables"] as const

export interface AnalystArns<A> {
  readonly lake: LakeArns<A>
  readonly workgroup: A
  /** The query-results bucket and the ARN pattern of the objects under the workgroup's prefix. */
  readonly results: { readonly bucket: A; readonly objects: A; readonly prefix: string }
  /** Glue: the account's catalog, the lake database, and the pattern of its tables. */
  readonly glue: { readonly catalog: A; readonly database: A; readonly tables: A }
}

export const analystStatements = <A>(arns: AnalystArns<A>): Array<Statement<A>> => [
  { sid: "QueryInLakeWorkgroup", actions: [...ATHENA_QUERY_ACTIONS], resources: [arns.workgroup] },
  { sid: "ReadLakeCatalog", actions: [...GLUE_READ_ACTIONS], resources: [arns.glue.catalog, arns.glue.database, arns.glue.tables] },
  { sid: "LocateLake", actions: ["s3:GetBucketLocation"], resources: [arns.lake.bucket] },
  listUnder("ListLakeTables", arns.lake, [PARQUET_PREFIX, RAW_PREFIX]),
  { sid: "ReadLakeTables", actions: ["s3:GetObject"], resources: [arns.lake.objects(PARQUET_PREFIX), arns.lake.objects(RAW_PREFIX)] },
  // The results bucket holds query results only.
  { sid: "LocateQueryResults", actions: ["s3:GetBucketLocation", "s3:ListBucketMultipartUploads"], resources: [arns.results.bucket] },
  {
    sid: "ListQueryResults",
    actions: ["s3:ListBucket"],
    resources: [arns.results.bucket],
    conditions: [{ test: "StringLike", variable: "s3:prefix", values: [arns.results.prefix, `${arns.results.prefix}*`] }]
  },
  { sid: "WriteQueryResults", actions: ["s3:GetObject", "s3:PutObject", "s3:AbortMultipartUpload", "s3:ListMultipartUploadParts"], resources: [arns.results.objects] }
]
