#!/usr/bin/env node
// The `totes` command: runs the prebuilt CLI (dist/, built by `npm ci` through the `prepare`
// script). In a checkout whose TypeScript changed since that build, it rebuilds first (esbuild,
// a few seconds); without esbuild (an install without devDependencies) it runs the existing
// build and says so. In the production image (NODE_ENV=production) the build is used as it is.
import { join } from "node:path"
import { pathToFileURL } from "node:url"
import { enableCompileCache } from "node:module"
import { currentBuild, DIST, isStale } from "./build-state.mjs"

// V8 keeps the compiled bundle on disk (tmpdir): later starts skip most of the parsing.
enableCompileCache?.()

// fauxqs (the local S3 server) uses node:sqlite, which Node 22 flags as experimental on every start.
const emitWarning = process.emitWarning
process.emitWarning = (warning, ...rest) => {
  if (String(warning?.message ?? warning).includes("SQLite is an experimental feature")) return
  return emitWarning.call(process, warning, ...rest)
}

const note = (text) => {
  if (process.stderr.isTTY) process.stderr.write(`(${text})\n`)
}

const importable = async (specifier) => {
  try {
    return await import(specifier)
  } catch (error) {
    if (error?.code === "ERR_MODULE_NOT_FOUND" && String(error.message).includes(`'${specifier}'`)) return undefined
    throw error
  }
}

const run = (build) => import(pathToFileURL(join(DIST, build.entry)).href)

const build = currentBuild()
if (process.env.NODE_ENV === "production" || !isStale(build)) {
  if (!build) throw new Error("totes: no build in dist/ (run npm run build)")
  await run(build)
} else if (await importable("esbuild")) {
  const { buildCli } = await import("../scripts/build.mjs")
  const rebuilt = await buildCli({ production: build?.production ?? false })
  note(`sources changed: rebuilt dist/ in ${rebuilt.ms} ms`)
  await run(rebuilt)
} else if (build) {
  note("sources changed, but esbuild (a devDependency) is not installed: running the existing build")
  await run(build)
} else throw new Error("totes: no build in dist/ and no esbuild to make one (npm ci)")
