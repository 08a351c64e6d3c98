import { FirehoseClient } from "@aws-sdk/client-firehose"
import { localOptions, region, type Env } from "./aws-client-options.ts"

export const firehoseClient = (env: Env = process.env) =>
  new FirehoseClient({ region: region(env), ...localOptions("AWS_ENDPOINT_URL_FIREHOSE", env) })
