#!/usr/bin/env node
// The `totes` command: runs the TypeScript CLI through tsx's loader (no build step).
import { register } from "tsx/esm/api"

// fauxqs (the local S3 server) uses node:sqlite, which Node 22 flags as experimental on every start.
const emitWarning = process.emitWarning
process.emitWarning = (warning, ...rest) => {
  if (String(warning?.message ?? warning).includes("SQLite is an experimental feature")) return
  return emitWarning.call(process, warning, ...rest)
}

register()
await import("../services/cli/main.ts")
