import { DynamoDBClient } from "@aws-sdk/client-dynamodb"
import { localOptions, region, type Env } from "./aws-client-options.ts"

export const dynamoClient = (env: Env = process.env) =>
  new DynamoDBClient({ region: region(env), ...localOptions("AWS_ENDPOINT_URL_DYNAMODB", env) })
