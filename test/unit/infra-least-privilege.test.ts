/**
 * Least privilege beyond actions and resources: each role's checkpoint access is limited to its
 * own keys (dynamodb:LeadingKeys), and the consumer Lambda's environment holds no credential.
 */
import { readdirSync, readFileSync } from "node:fs"
import { join } from "node:path"
import { describe, expect, it } from "vitest"
import {
  archiverCheckpointKey,
  CHECKPOINT_KEY_PREFIXES,
  readerCheckpointKey,
  replayCheckpointKey,
  shardCheckpointKey,
  snapshotStateKey
} from "../../contracts/checkpoint.ts"
import { consumerEnvironment } from "../../infra/environment-spec.ts"
import { CHECKPOINT_ACTIONS, consumerStatements, leadingKeys, policyDocument, readerStatements, replayStatements, type LakeArns, type Statement } from "../../infra/policies.ts"
import { archiverCheckpointKey as archiverKeyOfTheArchiver } from "../../services/archiver/archiver.ts"
import { redact } from "../../services/shared/logger.ts"

const TABLE = "arn:aws:dynamodb:eu-west-2:111122223333:table/totes-dev-checkpoints"
const BUCKET = "arn:aws:s3:::totes-dev-lake"
const QUEUE = "arn:aws:sqs:eu-west-2:111122223333:totes-dev-consumer-failures"
const SECRET = "arn:aws:secretsmanager:eu-west-2:111122223333:secret:WarehouseUrlSecret-AbC123"
const STREAM = "arn:aws:kinesis:eu-west-2:111122223333:stream/totes-dev-changes"
const lake: LakeArns<string> = { bucket: BUCKET, objects: (prefix) => `${BUCKET}/${prefix}*` }

/** IAM's StringLike: `*` any run of characters, `?` one character. */
const like = (pattern: string, value: string) =>
  new RegExp(`^${pattern.replace(/[.+^${}()|[\]\\]/g, "\\$&").replace(/\*/g, ".*").replace(/\?/g, ".")}$`).test(value)

/** Can these statements apply `action` to the checkpoint item `key` (conditions evaluated as IAM does for one key)? */
const mayTouch = (statements: ReadonlyArray<Statement<string>>, action: string, key: string) =>
  statements.some(
    (s) =>
      s.actions.includes(action) &&
      s.resources.includes(TABLE) &&
      (s.conditions ?? []).every((c) => {
        if (c.test !== "ForAllValues:StringLike" || c.variable !== "dynamodb:LeadingKeys") throw new Error(`unexpected condition ${c.test} ${c.variable}`)
        return c.values.some((pattern) => like(pattern, key))
      })
  )

describe("checkpoint access (dynamodb:LeadingKeys)", () => {
  const roles = {
    reader: readerStatements({ stream: STREAM, checkpointTable: TABLE, lake }),
    consumer: consumerStatements({ checkpointTable: TABLE, lake, failureQueue: QUEUE, warehouseSecret: SECRET }),
    replay: replayStatements({ checkpointTable: TABLE, lake })
  }
  const keys: Record<string, ReadonlyArray<string>> = {
    reader: [readerCheckpointKey("totes_cdc"), snapshotStateKey("totes_cdc")],
    consumer: [shardCheckpointKey("totes-dev-changes", "shardId-000000000003")],
    archiver: [archiverCheckpointKey("totes-dev-changes", "shardId-000000000003")],
    replay: [replayCheckpointKey("replay"), replayCheckpointKey("rebuild-2024")]
  }

  it("lets each role get, put and update only its own keys", () => {
    for (const [role, statements] of Object.entries(roles)) {
      for (const [owner, ownerKeys] of Object.entries(keys)) {
        for (const key of ownerKeys) {
          for (const action of CHECKPOINT_ACTIONS) expect(mayTouch(statements, action, key), `${role} ${action} ${key}`).toBe(owner === role)
        }
      }
    }
    // the evaluation itself can say no: a statement without the condition would allow every key
    expect(mayTouch([{ sid: "x", actions: ["dynamodb:PutItem"], resources: [TABLE] }], "dynamodb:PutItem", keys.reader![0]!)).toBe(true)
  })

  it("puts the condition on every checkpoint grant, and into the policy document", () => {
    for (const [role, statements] of Object.entries(roles)) {
      const dynamo = statements.filter((s) => s.actions.some((a) => a.startsWith("dynamodb:")))
      expect(dynamo.map((s) => s.conditions)).toEqual([[leadingKeys(role as "reader" | "consumer" | "replay")]])
    }
    const doc = JSON.parse(policyDocument(roles.reader))
    expect(doc.Statement.find((s: { Sid: string }) => s.Sid === "OwnCheckpoints").Condition).toEqual({
      "ForAllValues:StringLike": { "dynamodb:LeadingKeys": ["reader#*", "snapshot#*"] }
    })
  })

  it("knows every checkpoint key prefix the code writes (a new prefix needs an owner and a policy)", () => {
    const root = new URL("../../", import.meta.url).pathname
    const files = readdirSync(root, { recursive: true, encoding: "utf8" }).filter((f) => /^(services|contracts|tools)\/.*\.ts$/.test(f))
    const used = new Set(files.flatMap((f) => [...readFileSync(join(root, f), "utf8").matchAll(/`([a-z]+)#\$\{/g)].map((m) => `${m[1]}#`)))
    expect([...used].sort()).toEqual(Object.values(CHECKPOINT_KEY_PREFIXES).flat().sort())
    expect(archiverKeyOfTheArchiver("s", "shardId-1")).toBe(archiverCheckpointKey("s", "shardId-1"))
  })
})

describe("the consumer Lambda's environment", () => {
  /** Why an environment holds a credential: a credential's name, or a value shaped like one (a URL with a password, keys, tokens). */
  const credentialProblems = (environment: Readonly<Record<string, string>>) =>
    Object.entries(environment).flatMap(([name, value]) => [
      ...(/PASSWORD|PASSWD|TOKEN|ACCESS_KEY|PRIVATE_KEY|DATABASE_URL|CONNECTION_STRING|(?:^|_)SECRET(?!_ARN$)/i.test(name) ? [`${name}: a credential's name`] : []),
      // a Secrets Manager ARN names a secret (`…:secret:<name>`), it does not hold one
      ...(!/^arn:aws[a-z-]*:secretsmanager:/.test(value) && (redact(value) !== value || /:\/\/[^/@\s]*:[^/@\s]*@/.test(value)) ? [`${name}: a value holding a secret`] : [])
    ])

  it("holds names and references only: the warehouse URL is read from its secret at cold start", () => {
    const environment = consumerEnvironment({
      stage: "prod",
      stream: "totes-prod-changes",
      checkpointTable: "totes-prod-checkpoints",
      lakeBucket: "totes-prod-lake",
      warehouseSecretArn: SECRET
    })
    expect(Object.keys(environment).sort()).toEqual([
      "NODE_EXTRA_CA_CERTS",
      "TOTES_CHECKPOINT_TABLE",
      "TOTES_LAKE_BUCKET",
      "TOTES_LOG_LEVEL",
      "TOTES_STAGE",
      "TOTES_STREAM",
      "TOTES_WAREHOUSE_SECRET_ARN"
    ])
    expect(credentialProblems(environment)).toEqual([])
    // the oracle can fail: the environment the Lambda had before
    expect(credentialProblems({ ...environment, WAREHOUSE_DATABASE_URL: "postgres://totes:hunter2@db:5432/warehouse" })).toEqual([
      "WAREHOUSE_DATABASE_URL: a credential's name",
      "WAREHOUSE_DATABASE_URL: a value holding a secret"
    ])
  })

  it("is what infra/consumer.ts declares, and no infra file puts a credential in a plain environment", () => {
    const infra = new URL("../../infra/", import.meta.url).pathname
    expect(readFileSync(join(infra, "consumer.ts"), "utf8")).toMatch(/environment: consumerEnvironment</)
    let blocks = 0
    for (const file of readdirSync(infra).filter((f) => f.endsWith(".ts"))) {
      const source = readFileSync(join(infra, file), "utf8")
      for (const block of source.matchAll(/environment: \{([^}]*)\}/g)) {
        blocks++
        const names = [...block[1]!.matchAll(/([A-Z][A-Z0-9_]+):/g)].map((m) => m[1]!)
        expect(credentialProblems(Object.fromEntries(names.map((n) => [n, "x"]))), `${file}: ${names.join(", ")}`).toEqual([])
      }
    }
    expect(blocks).toBe(4) // reader, replay, compaction, the lake-watermark Lambda
  })
})
