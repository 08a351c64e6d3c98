import { describe, expect, it } from "vitest"
import { claimCheckKey, deadLetterKey, rawObjectKey } from "../../contracts/lake.ts"
import {
  analystStatements,
  CHECKPOINT_ACTIONS,
  LAKE_PREFIXES,
  compactionStatements,
  consumerEffectiveStatements,
  consumerStatements,
  firehoseStatements,
  firehoseTrustPolicy,
  grantedActions,
  lakeWatermarkStatements,
  policyDocument,
  readerStatements,
  replayStatements,
  type LakeArns,
  type Statement
} from "../../infra/policies.ts"

const STREAM = "arn:aws:kinesis:eu-west-2:111122223333:stream/totes-dev-changes"
const TABLE = "arn:aws:dynamodb:eu-west-2:111122223333:table/totes-dev-checkpoints"
const BUCKET = "arn:aws:s3:::totes-dev-lake"
const QUEUE = "arn:aws:sqs:eu-west-2:111122223333:totes-dev-consumer-failures"
const SECRET = "arn:aws:secretsmanager:eu-west-2:111122223333:secret:WarehouseUrlSecret-AbC123"
const LOG_STREAM = "arn:aws:logs:eu-west-2:111122223333:log-group:/totes/dev/firehose:log-stream:S3Delivery"
const lake: LakeArns<string> = { bucket: BUCKET, objects: (prefix) => `${BUCKET}/${prefix}*` }

/** Every (action, resource) pair a set of statements grants. */
const grants = (statements: ReadonlyArray<Statement<string>>) => statements.flatMap((s) => s.actions.flatMap((a) => s.resources.map((r) => `${a} ${r}`))).sort()

/** Is `key` an object the statements allow `action` on (resource patterns with a trailing *)? */
const allows = (statements: ReadonlyArray<Statement<string>>, action: string, key: string) =>
  statements.some((s) => s.actions.includes(action) && s.resources.some((r) => (r.endsWith("*") ? `${BUCKET}/${key}`.startsWith(r.slice(0, -1)) : r === `${BUCKET}/${key}`)))

const noWildcards = (statements: ReadonlyArray<Statement<string>>) => {
  for (const s of statements) {
    for (const a of s.actions) expect(a).not.toMatch(/\*/)
    for (const r of s.resources) expect(r === "*" || r.endsWith(":*") || r === `${BUCKET}/*`).toBe(false)
  }
}

describe("lake prefixes", () => {
  it("match the key layout of contracts/lake.ts", () => {
    const at = new Date("2026-11-20T10:00:00Z")
    expect(rawObjectKey(at, "s", "1", "u").startsWith(LAKE_PREFIXES.raw)).toBe(true)
    expect(claimCheckKey("0/16B3748", "0/16B3748:0").startsWith(LAKE_PREFIXES.claims)).toBe(true)
    expect(deadLetterKey(at, "e").startsWith(LAKE_PREFIXES.deadLetter)).toBe(true)
    expect(Object.values(LAKE_PREFIXES).every((p) => p.endsWith("/"))).toBe(true)
  })
})

describe("reader policy", () => {
  const statements = readerStatements({ stream: STREAM, checkpointTable: TABLE, lake })

  it("may only put to the stream, read/write checkpoints and write claim checks", () => {
    expect(grants(statements)).toEqual(
      [
        `kinesis:DescribeStreamSummary ${STREAM}`,
        `kinesis:ListShards ${STREAM}`,
        `kinesis:PutRecord ${STREAM}`,
        `kinesis:PutRecords ${STREAM}`,
        `dynamodb:GetItem ${TABLE}`,
        `dynamodb:PutItem ${TABLE}`,
        `dynamodb:UpdateItem ${TABLE}`,
        `s3:PutObject ${BUCKET}/claims/*`,
        `s3:PutObject ${BUCKET}/snapshots/*`
      ].sort()
    )
    noWildcards(statements)
  })

  it("cannot read the stream, delete checkpoints or touch other lake prefixes", () => {
    const actions = grantedActions(statements)
    for (const forbidden of ["kinesis:GetRecords", "kinesis:GetShardIterator", "dynamodb:DeleteItem", "dynamodb:Scan", "s3:GetObject", "s3:DeleteObject"]) {
      expect(actions).not.toContain(forbidden)
    }
    expect(allows(statements, "s3:PutObject", claimCheckKey("0/16B3748", "0/16B3748:3"))).toBe(true)
    expect(allows(statements, "s3:PutObject", rawObjectKey(new Date(), "s", "1", "u"))).toBe(false)
    expect(allows(statements, "s3:PutObject", "parquet/x.parquet")).toBe(false)
  })
})

describe("consumer policy", () => {
  const own = consumerStatements({ checkpointTable: TABLE, lake, failureQueue: QUEUE, warehouseSecret: SECRET })
  const effective = consumerEffectiveStatements({ stream: STREAM, checkpointTable: TABLE, lake, failureQueue: QUEUE, warehouseSecret: SECRET })

  it("has no kinesis:Put* (the subscription only reads)", () => {
    expect(grantedActions(effective).filter((a) => a.startsWith("kinesis:Put"))).toEqual([])
    expect(grantedActions(own).filter((a) => a.startsWith("kinesis:"))).toEqual([])
  })

  it("reads claim checks, writes dead letters, sends failed batches, uses checkpoints, reads the warehouse URL's secret", () => {
    expect(grants(own)).toEqual(
      [
        ...CHECKPOINT_ACTIONS.map((a) => `${a} ${TABLE}`),
        `s3:GetObject ${BUCKET}/claims/*`,
        `s3:GetObject ${BUCKET}/snapshots/*`,
        `s3:PutObject ${BUCKET}/dead-letter/*`,
        `sqs:SendMessage ${QUEUE}`,
        `secretsmanager:GetSecretValue ${SECRET}`
      ].sort()
    )
    expect(allows(own, "s3:PutObject", deadLetterKey(new Date(), "e"))).toBe(true)
    expect(allows(own, "s3:PutObject", "raw/2026/11/20/10/x.ndjson.gz")).toBe(false)
    noWildcards(own)
  })
})

describe("replay and compaction policies", () => {
  it("replay reads raw/, claims/, parquet/ and writes nothing to the lake", () => {
    const statements = replayStatements({ checkpointTable: TABLE, lake })
    expect(grantedActions(statements).filter((a) => a.startsWith("s3:"))).toEqual(["s3:GetObject", "s3:ListBucket"])
    expect(allows(statements, "s3:GetObject", "raw/2026/11/20/10/a.ndjson.gz")).toBe(true)
    expect(allows(statements, "s3:GetObject", "errors/x")).toBe(false)
    const list = statements.find((s) => s.actions.includes("s3:ListBucket"))!
    expect(list.resources).toEqual([BUCKET])
    expect(list.conditions).toEqual([{ test: "StringLike", variable: "s3:prefix", values: ["raw/", "raw/*", "claims/", "claims/*", "parquet/", "parquet/*"] }])
  })

  it("compaction writes only parquet/", () => {
    const statements = compactionStatements({ lake })
    expect(allows(statements, "s3:PutObject", "parquet/sales_order/date=2026-11-20/u.parquet")).toBe(true)
    expect(allows(statements, "s3:PutObject", "raw/2026/11/20/10/a.ndjson.gz")).toBe(false)
    expect(grantedActions(statements)).not.toContain("s3:DeleteObject")
  })
})

describe("lake watermark policy", () => {
  const statements = lakeWatermarkStatements({ lake })

  it("lists and reads raw/ only, and writes nothing", () => {
    expect(grants(statements)).toEqual([`s3:GetObject ${BUCKET}/raw/*`, `s3:ListBucket ${BUCKET}`])
    expect(statements.find((s) => s.actions.includes("s3:ListBucket"))!.conditions).toEqual([
      { test: "StringLike", variable: "s3:prefix", values: ["raw/", "raw/*"] }
    ])
    expect(allows(statements, "s3:GetObject", rawObjectKey(new Date(), "s", "1", "u"))).toBe(true)
    for (const other of [claimCheckKey("0/1", "0/1:0"), deadLetterKey(new Date(), "e"), "parquet/t/x.parquet", "errors/x"]) {
      expect(allows(statements, "s3:GetObject", other), other).toBe(false)
    }
    expect(grantedActions(statements).filter((a) => !["s3:GetObject", "s3:ListBucket"].includes(a))).toEqual([])
    noWildcards(statements)
  })
})

describe("firehose policy", () => {
  const statements = firehoseStatements({ stream: STREAM, lake, logStream: LOG_STREAM })

  it("reads the stream without writing to it", () => {
    const kinesis = grantedActions(statements).filter((a) => a.startsWith("kinesis:"))
    expect(kinesis).toEqual(["kinesis:DescribeStream", "kinesis:DescribeStreamSummary", "kinesis:GetRecords", "kinesis:GetShardIterator", "kinesis:ListShards"])
    for (const s of statements.filter((s) => s.actions.some((a) => a.startsWith("kinesis:")))) expect(s.resources).toEqual([STREAM])
  })

  it("writes only its raw/ and errors/ prefixes", () => {
    const writes = statements.filter((s) => s.actions.includes("s3:PutObject"))
    expect(writes.flatMap((s) => s.resources)).toEqual([`${BUCKET}/raw/*`, `${BUCKET}/errors/*`])
    expect(allows(statements, "s3:PutObject", "raw/2026/11/20/10/totes-dev-lake-1-2026-11-20-10-00-00-uuid.ndjson.gz")).toBe(true)
    expect(allows(statements, "s3:PutObject", "errors/2026/11/20/10/processing-failed/x")).toBe(true)
    for (const other of ["claims/a.json", "parquet/t/x.parquet", "dead-letter/x.json", "x"]) expect(allows(statements, "s3:PutObject", other)).toBe(false)
    expect(grantedActions(statements)).not.toContain("s3:GetObject")
    expect(grantedActions(statements)).not.toContain("s3:DeleteObject")
    noWildcards(statements)
  })

  it("renders a valid IAM policy document and an account-scoped trust policy", () => {
    const doc = JSON.parse(policyDocument(statements))
    expect(doc.Version).toBe("2012-10-17")
    expect(doc.Statement.every((s: any) => s.Effect === "Allow" && Array.isArray(s.Action) && Array.isArray(s.Resource))).toBe(true)
    const list = doc.Statement.find((s: any) => s.Action.includes("s3:ListBucket"))
    expect(list.Condition).toEqual({ StringLike: { "s3:prefix": ["raw/", "raw/*", "errors/", "errors/*"] } })
    const trust = JSON.parse(firehoseTrustPolicy("111122223333"))
    expect(trust.Statement[0]).toEqual({
      Effect: "Allow",
      Principal: { Service: "firehose.amazonaws.com" },
      Action: "sts:AssumeRole",
      Condition: { StringEquals: { "sts:ExternalId": "111122223333" } }
    })
  })
})

describe("lake analyst policy (Athena)", () => {
  const WORKGROUP = "arn:aws:athena:eu-west-2:111122223333:workgroup/totes-dev-lake"
  const RESULTS = "arn:aws:s3:::totes-dev-queryresults"
  const GLUE = "arn:aws:glue:eu-west-2:111122223333"
  const statements = analystStatements({
    lake,
    workgroup: WORKGROUP,
    results: { bucket: RESULTS, objects: `${RESULTS}/athena-results/*`, prefix: "athena-results/" },
    glue: { catalog: `${GLUE}:catalog`, database: `${GLUE}:database/totes_dev_lake`, tables: `${GLUE}:table/totes_dev_lake/*` }
  })

  it("queries in its workgroup, reads the lake database's catalog and the lake's tables, writes query results only", () => {
    expect(grants(statements)).toEqual(
      [
        ...[
          "athena:BatchGetNamedQuery",
          "athena:BatchGetQueryExecution",
          "athena:GetNamedQuery",
          "athena:GetQueryExecution",
          "athena:GetQueryResults",
          "athena:GetQueryRuntimeStatistics",
          "athena:GetWorkGroup",
          "athena:ListNamedQueries",
          "athena:ListQueryExecutions",
          "athena:StartQueryExecution",
          "athena:StopQueryExecution"
        ].map((a) => `${a} ${WORKGROUP}`),
        ...["glue:GetDatabase", "glue:GetTable", "glue:GetTables"].flatMap((a) => [`${a} ${GLUE}:catalog`, `${a} ${GLUE}:database/totes_dev_lake`, `${a} ${GLUE}:table/totes_dev_lake/*`]),
        `s3:GetBucketLocation ${BUCKET}`,
        `s3:ListBucket ${BUCKET}`,
        `s3:GetObject ${BUCKET}/parquet/*`,
        `s3:GetObject ${BUCKET}/raw/*`,
        `s3:GetBucketLocation ${RESULTS}`,
        `s3:ListBucketMultipartUploads ${RESULTS}`,
        `s3:ListBucket ${RESULTS}`,
        ...["s3:GetObject", "s3:PutObject", "s3:AbortMultipartUpload", "s3:ListMultipartUploadParts"].map((a) => `${a} ${RESULTS}/athena-results/*`)
      ].sort()
    )
    noWildcards(statements)
  })

  it("cannot write the lake, read claims or dead letters, or change the catalog", () => {
    for (const key of ["parquet/sales_order/date=2024-02-26/x.parquet", "raw/2024/02/26/08/x.ndjson.gz"]) {
      expect(allows(statements, "s3:GetObject", key)).toBe(true)
      expect(allows(statements, "s3:PutObject", key)).toBe(false)
    }
    for (const key of ["claims/0000000003000000/x.json", "dead-letter/2024/02/26/08/x.json", "errors/x"]) expect(allows(statements, "s3:GetObject", key), key).toBe(false)
    const actions = grantedActions(statements)
    for (const forbidden of ["s3:DeleteObject", "glue:CreateTable", "glue:UpdateTable", "glue:DeleteTable", "glue:CreateDatabase", "athena:CreateNamedQuery", "athena:UpdateWorkGroup", "athena:DeleteWorkGroup"]) {
      expect(actions).not.toContain(forbidden)
    }
    const doc = JSON.parse(policyDocument(statements))
    const lists = doc.Statement.filter((s: any) => s.Action.includes("s3:ListBucket"))
    expect(lists.map((s: any) => s.Condition)).toEqual([
      { StringLike: { "s3:prefix": ["parquet/", "parquet/*", "raw/", "raw/*"] } },
      { StringLike: { "s3:prefix": ["athena-results/", "athena-results/*"] } }
    ])
  })
})
