import { S3Client } from "@aws-sdk/client-s3"
import { localOptions, region, type Env } from "./aws-client-options.ts"

/**
 * One attempt per call: the lake store (lake-store.ts) retries with its own jittered backoff, the
 * one retry policy for S3, so the SDK's retries are not stacked under it.
 */
export const s3Client = (env: Env = process.env) =>
  new S3Client({
    region: region(env),
    maxAttempts: 1,
    // Local S3 servers are addressed by path, not by bucket sub-domain.
    forcePathStyle: Boolean(env.AWS_ENDPOINT_URL_S3 || env.AWS_ENDPOINT_URL),
    ...localOptions("AWS_ENDPOINT_URL_S3", env)
  })
