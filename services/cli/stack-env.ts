/**
 * The files of a running local stack (`totes stack up`) and the `stack.env` format: KEY=value
 * lines, so `set -a; . .totes/stack.env` configures any component (psql included). The local
 * stack (tools/local) writes them; the CLI reads them, also where tools/ is not installed.
 */
import { existsSync, readFileSync, writeFileSync } from "node:fs"
import { join, resolve } from "node:path"

export const stackFiles = (dir: string) => ({
  env: join(dir, "stack.env"),
  pid: join(dir, "stack.pid"),
  log: join(dir, "stack.log")
})

export const writeStackEnv = (dir: string, env: Readonly<Record<string, string>>) => {
  const path = stackFiles(dir).env
  const lines = Object.entries(env).map(([key, value]) => `${key}=${value}`)
  writeFileSync(path, `${lines.join("\n")}\n`, { mode: 0o600 })
  return path
}

export const readStackEnv = (dirArg: string): Record<string, string> => {
  const path = stackFiles(resolve(dirArg)).env
  if (!existsSync(path)) throw new Error(`no local stack at ${path}: run 'totes stack up' first`)
  const env: Record<string, string> = {}
  for (const line of readFileSync(path, "utf8").split("\n")) {
    const match = /^([A-Z0-9_]+)=(.*)$/.exec(line)
    if (match) env[match[1]!] = match[2]!
  }
  return env
}
