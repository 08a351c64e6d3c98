import { S3Client } from "@aws-sdk/client-s3"
import { localOptions, region, type Env } from "./aws-client-options.ts"

export const s3Client = (env: Env = process.env) =>
  new S3Client({
    region: region(env),
    // Local S3 servers are addressed by path, not by bucket sub-domain.
    forcePathStyle: Boolean(env.AWS_ENDPOINT_URL_S3 || env.AWS_ENDPOINT_URL),
    ...localOptions("AWS_ENDPOINT_URL_S3", env)
  })
