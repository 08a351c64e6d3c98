import { KinesisClient } from "@aws-sdk/client-kinesis"
import { localOptions, region, type Env } from "./aws-client-options.ts"

export const kinesisClient = (env: Env = process.env) =>
  new KinesisClient({ region: region(env), maxAttempts: 1, ...localOptions("AWS_ENDPOINT_URL_KINESIS", env) })
