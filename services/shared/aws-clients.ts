/**
 * AWS SDK v3 clients. Endpoints come from the SDK's standard `AWS_ENDPOINT_URL_*` variables;
 * when one is set (a local server) the client is given an HTTP/1.1 handler, because the
 * current Kinesis client speaks HTTP/2 by default and no local server handles it.
 */
import { DynamoDBClient } from "@aws-sdk/client-dynamodb"
import { FirehoseClient } from "@aws-sdk/client-firehose"
import { KinesisClient } from "@aws-sdk/client-kinesis"
import { S3Client } from "@aws-sdk/client-s3"
import { SecretsManagerClient } from "@aws-sdk/client-secrets-manager"
import { NodeHttpHandler } from "@smithy/node-http-handler"

type Env = Record<string, string | undefined>

/**
 * Options taken from `env` explicitly (not only process.env), so that tests and the local
 * stack can run several configurations in one process.
 */
const localOptions = (endpointVariable: string, env: Env) => {
  const endpoint = env[endpointVariable] ?? env.AWS_ENDPOINT_URL
  const credentials =
    env.AWS_ACCESS_KEY_ID && env.AWS_SECRET_ACCESS_KEY
      ? { credentials: { accessKeyId: env.AWS_ACCESS_KEY_ID, secretAccessKey: env.AWS_SECRET_ACCESS_KEY, ...(env.AWS_SESSION_TOKEN ? { sessionToken: env.AWS_SESSION_TOKEN } : {}) } }
      : {}
  return endpoint
    ? { endpoint, ...credentials, requestHandler: new NodeHttpHandler({ connectionTimeout: 5_000, requestTimeout: 30_000 }) }
    : credentials
}

const region = (env: Env) => env.AWS_REGION ?? env.AWS_DEFAULT_REGION ?? "eu-west-2"

export const kinesisClient = (env: Env = process.env) =>
  new KinesisClient({ region: region(env), maxAttempts: 1, ...localOptions("AWS_ENDPOINT_URL_KINESIS", env) })

export const dynamoClient = (env: Env = process.env) =>
  new DynamoDBClient({ region: region(env), ...localOptions("AWS_ENDPOINT_URL_DYNAMODB", env) })

export const s3Client = (env: Env = process.env) =>
  new S3Client({
    region: region(env),
    // Local S3 servers are addressed by path, not by bucket sub-domain.
    forcePathStyle: Boolean(env.AWS_ENDPOINT_URL_S3 || env.AWS_ENDPOINT_URL),
    ...localOptions("AWS_ENDPOINT_URL_S3", env)
  })

export const secretsManagerClient = (env: Env = process.env) =>
  new SecretsManagerClient({ region: region(env), ...localOptions("AWS_ENDPOINT_URL_SECRETS_MANAGER", env) })

export const firehoseClient = (env: Env = process.env) =>
  new FirehoseClient({ region: region(env), ...localOptions("AWS_ENDPOINT_URL_FIREHOSE", env) })
