/**
 * Checkpoints in DynamoDB: single-item conditional writes (DynamoDB Local emulators have no
 * TransactWriteItems), monotonic by a sortable `position` attribute.
 */
import { ConditionalCheckFailedException, GetItemCommand, PutItemCommand } from "@aws-sdk/client-dynamodb"
import { Context, Effect, Layer, Option, Schedule, Schema } from "effect"
import { CheckpointTable, readConfig } from "./config.ts"
import { dynamoClient } from "./dynamo-client.ts"

export class CheckpointError extends Schema.TaggedError<CheckpointError>()("CheckpointError", {
  key: Schema.String,
  message: Schema.String
}) {}

export interface StoredCheckpoint<A> {
  readonly position: string
  readonly data: A
}

export interface CheckpointStoreShape {
  readonly get: <A>(key: string) => Effect.Effect<Option.Option<StoredCheckpoint<A>>, CheckpointError>
  /** Writes if no item exists or its position is ≤ `position`; false if a newer one is stored. */
  readonly advance: <A>(key: string, position: string, data: A) => Effect.Effect<boolean, CheckpointError>
  /** Unconditional write (state that is not a position, e.g. snapshot progress). */
  readonly put: <A>(key: string, data: A) => Effect.Effect<void, CheckpointError>
}

const retry = Schedule.exponential("100 millis").pipe(Schedule.jittered, Schedule.upTo({ times: 5 }))

export class CheckpointStore extends Context.Service<CheckpointStore, CheckpointStoreShape>()("totes/shared/CheckpointStore") {
  static readonly make = (env: Record<string, string | undefined> = process.env) =>
    Effect.sync(() => {
      const table = readConfig(CheckpointTable, env)
      const client = dynamoClient(env)
      const fail = (key: string) => (cause: unknown) => new CheckpointError({ key, message: `${table}: ${String((cause as Error)?.message ?? cause)}` })
      return CheckpointStore.of({
        get: <A>(key: string) =>
          Effect.tryPromise({
            try: () => client.send(new GetItemCommand({ TableName: table, Key: { pk: { S: key } }, ConsistentRead: true })),
            catch: fail(key)
          }).pipe(
            Effect.retry(retry),
            Effect.map((out) =>
              out.Item
                ? Option.some({ position: out.Item.position?.S ?? "", data: JSON.parse(out.Item.data?.S ?? "null") as A })
                : Option.none()
            )
          ),
        advance: <A>(key: string, position: string, data: A) =>
          Effect.tryPromise({
            try: async () => {
              try {
                await client.send(
                  new PutItemCommand({
                    TableName: table,
                    Item: { pk: { S: key }, position: { S: position }, data: { S: JSON.stringify(data) }, updatedAt: { S: new Date().toISOString() } },
                    ConditionExpression: "attribute_not_exists(pk) OR #position <= :position",
                    ExpressionAttributeNames: { "#position": "position" },
                    ExpressionAttributeValues: { ":position": { S: position } }
                  })
                )
                return true
              } catch (error) {
                if (error instanceof ConditionalCheckFailedException) return false
                throw error
              }
            },
            catch: fail(key)
          }).pipe(Effect.retry(retry)),
        put: <A>(key: string, data: A) =>
          Effect.tryPromise({
            try: () =>
              client.send(
                new PutItemCommand({
                  TableName: table,
                  Item: { pk: { S: key }, position: { S: "" }, data: { S: JSON.stringify(data) }, updatedAt: { S: new Date().toISOString() } }
                })
              ),
            catch: fail(key)
          }).pipe(Effect.retry(retry), Effect.asVoid)
      })
    })

  static readonly layer = Layer.effect(CheckpointStore, CheckpointStore.make())

  /** In-memory, same semantics, for unit tests. */
  static readonly layerTest = Layer.sync(CheckpointStore, () => CheckpointStore.of(makeMemoryCheckpointStore()))
}

/** In-memory checkpoints with the same monotonic semantics; `failAdvances` makes the first N advances fail. */
export const makeMemoryCheckpointStore = (
  faults: { failAdvances?: number } = {}
): CheckpointStoreShape & { readonly items: Map<string, StoredCheckpoint<unknown>> } => {
  const items = new Map<string, StoredCheckpoint<unknown>>()
  let failures = faults.failAdvances ?? 0
  return {
    items,
    get: <A>(key: string) => Effect.sync(() => Option.fromNullishOr(items.get(key) as StoredCheckpoint<A> | undefined)),
    advance: (key, position, data) =>
      Effect.suspend(() => {
        if (failures > 0) {
          failures--
          return Effect.fail(new CheckpointError({ key, message: "injected checkpoint failure" }))
        }
        const current = items.get(key)
        if (current && current.position > position) return Effect.succeed(false)
        items.set(key, { position, data })
        return Effect.succeed(true)
      }),
    put: (key, data) => Effect.sync(() => void items.set(key, { position: "", data }))
  }
}
