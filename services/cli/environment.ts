/**
 * Where the CLI's configuration comes from: the process environment; for local work, when no
 * database is configured and `.totes/stack.env` exists (a running `totes stack up`), that file.
 */
import { existsSync } from "node:fs"
import { readStackEnv, stackFiles } from "./stack-env.ts"

export const loadLocalStackEnvIfUnset = (dir = ".totes"): string | undefined => {
  if (process.env.SOURCE_DATABASE_URL || process.env.WAREHOUSE_DATABASE_URL) return undefined
  if (!existsSync(stackFiles(dir).env)) return undefined
  const env = readStackEnv(dir)
  for (const [key, value] of Object.entries(env)) process.env[key] ??= value
  return stackFiles(dir).env
}
