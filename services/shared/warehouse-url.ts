/**
 * Where the consumer Lambda finds the warehouse URL (password included): never a plain
 * environment variable in AWS. There the function is given TOTES_WAREHOUSE_SECRET_ARN, the
 * Secrets Manager secret infra/databases.ts stores the URL in, and reads it once per cold start;
 * locally (and in tests) WAREHOUSE_DATABASE_URL is used as everywhere else.
 */
import { GetSecretValueCommand } from "@aws-sdk/client-secrets-manager"
import { Result } from "effect"
import { secretsManagerClient } from "./secrets-manager-client.ts"
import { ConfigurationError, parsePostgresUrl, readConfig, reveal, WarehouseDatabaseUrl, WarehouseSecretArn } from "./config.ts"

type Env = Record<string, string | undefined>

const isSet = (value: string | undefined) => value !== undefined && value.trim() !== ""

export const warehouseUrlFromEnvOrSecret = async (env: Env = process.env): Promise<string> => {
  if (isSet(env.WAREHOUSE_DATABASE_URL) || !isSet(env.TOTES_WAREHOUSE_SECRET_ARN)) return reveal(readConfig(WarehouseDatabaseUrl, env))
  const secretId = readConfig(WarehouseSecretArn, env)
  const client = secretsManagerClient(env)
  try {
    const { SecretString } = await client.send(new GetSecretValueCommand({ SecretId: secretId }))
    return Result.getOrThrowWith(
      parsePostgresUrl(SecretString ?? ""),
      (problem) => new ConfigurationError({ variable: "TOTES_WAREHOUSE_SECRET_ARN", message: `TOTES_WAREHOUSE_SECRET_ARN: the secret's value is not accepted: ${problem}` })
    )
  } finally {
    client.destroy()
  }
}
