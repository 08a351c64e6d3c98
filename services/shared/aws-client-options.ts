/**
 * What every AWS SDK v3 client of the pipeline shares. Endpoints come from the SDK's standard
 * `AWS_ENDPOINT_URL_*` variables; when one is set (a local server) the client is given an
 * HTTP/1.1 handler, because the current Kinesis client speaks HTTP/2 by default and no local
 * server handles it. One module per client (dynamo-client.ts, s3-client.ts, …), so that a
 * command loads only the SDK clients it uses.
 */
import { NodeHttpHandler } from "@smithy/node-http-handler"

export type Env = Record<string, string | undefined>

/**
 * Options taken from `env` explicitly (not only process.env), so that tests and the local
 * stack can run several configurations in one process.
 */
export const localOptions = (endpointVariable: string, env: Env) => {
  const endpoint = env[endpointVariable] ?? env.AWS_ENDPOINT_URL
  const credentials =
    env.AWS_ACCESS_KEY_ID && env.AWS_SECRET_ACCESS_KEY
      ? { credentials: { accessKeyId: env.AWS_ACCESS_KEY_ID, secretAccessKey: env.AWS_SECRET_ACCESS_KEY, ...(env.AWS_SESSION_TOKEN ? { sessionToken: env.AWS_SESSION_TOKEN } : {}) } }
      : {}
  return endpoint
    ? { endpoint, ...credentials, requestHandler: new NodeHttpHandler({ connectionTimeout: 5_000, requestTimeout: 30_000 }) }
    : credentials
}

export const region = (env: Env) => env.AWS_REGION ?? env.AWS_DEFAULT_REGION ?? "eu-west-2"
