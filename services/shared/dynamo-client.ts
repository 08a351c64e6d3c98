import { DynamoDBClient } from "@aws-sdk/client-dynamodb"
import { localOptions, region, type Env } from "./aws-client-options.ts"

/**
 * One attempt per call: the checkpoint store (checkpoint-store.ts) retries with its own jittered
 * backoff, the one retry policy for DynamoDB, so the SDK's retries are not stacked under it.
 */
export const dynamoClient = (env: Env = process.env) =>
  new DynamoDBClient({ region: region(env), maxAttempts: 1, ...localOptions("AWS_ENDPOINT_URL_DYNAMODB", env) })
