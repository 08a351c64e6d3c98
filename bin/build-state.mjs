/**
 * Where the prebuilt CLI is and whether it is older than its sources (plain JavaScript: read at
 * every start by bin/totes.mjs, before anything is loaded, so it must stay small and fast).
 *
 *   dist/current.json      { entry: "<build>/cli.js", sourcesMtimeMs, production, builtAt }
 *   dist/<build>/…         one build: the entry and its chunks (scripts/build.mjs)
 *
 * A build is stale when a file or folder of its sources changed after the build read them
 * (editing, adding, deleting or checking out a file all change an mtime).
 */
import { readdirSync, readFileSync, statSync } from "node:fs"
import { join } from "node:path"
import { fileURLToPath } from "node:url"

export const ROOT = fileURLToPath(new URL("..", import.meta.url))
export const DIST = join(ROOT, "dist")
export const CURRENT = join(DIST, "current.json")

/** What the build is made from: source folders, walked recursively, and single files. */
export const SOURCE_DIRS = ["services", "contracts", "tools"]
export const SOURCE_FILES = ["scripts/build.mjs", "bin/build-state.mjs", "package.json", "package-lock.json"]

const newestUnder = (dir) => {
  let newest
  let entries
  try {
    newest = statSync(dir).mtimeMs
    entries = readdirSync(dir, { withFileTypes: true })
  } catch {
    return 0
  }
  for (const entry of entries) {
    const path = join(dir, entry.name)
    const mtime = entry.isDirectory() ? newestUnder(path) : statSync(path, { throwIfNoEntry: false })?.mtimeMs ?? 0
    if (mtime > newest) newest = mtime
  }
  return newest
}

/** The newest mtime among the sources (0 where they are absent, as in the production image). */
export const newestSourceMtime = (root = ROOT) => {
  let newest = 0
  for (const dir of SOURCE_DIRS) newest = Math.max(newest, newestUnder(join(root, dir)))
  for (const file of SOURCE_FILES) newest = Math.max(newest, statSync(join(root, file), { throwIfNoEntry: false })?.mtimeMs ?? 0)
  return newest
}

/** The current build, or undefined when there is none. */
export const currentBuild = (dist = DIST) => {
  try {
    return JSON.parse(readFileSync(join(dist, "current.json"), "utf8"))
  } catch {
    return undefined
  }
}

export const isStale = (build, root = ROOT) => build === undefined || newestSourceMtime(root) > build.sourcesMtimeMs
