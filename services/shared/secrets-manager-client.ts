import { SecretsManagerClient } from "@aws-sdk/client-secrets-manager"
import { localOptions, region, type Env } from "./aws-client-options.ts"

export const secretsManagerClient = (env: Env = process.env) =>
  new SecretsManagerClient({ region: region(env), ...localOptions("AWS_ENDPOINT_URL_SECRETS_MANAGER", env) })
