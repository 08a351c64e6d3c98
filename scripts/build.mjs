/**
 * Builds the `totes` CLI into plain JavaScript with esbuild, so that a start loads prebuilt
 * modules instead of compiling TypeScript (tsx) every time. Run by `npm ci` / `npm install`
 * (the `prepare` script), by bin/totes.mjs when the sources changed since the last build, and by
 * the Dockerfile's build stage.
 *
 *   node scripts/build.mjs                 development build (includes tools/: dev, stack, source)
 *   node scripts/build.mjs --production    without tools/: the development commands report that
 *                                          they are not part of this build
 *
 * Output: dist/<build>/cli.js plus chunks (code splitting: each command's modules load only when
 * that command runs), then dist/current.json names the new build. Each build gets its own folder
 * and current.json is replaced atomically, so a CLI starting during a rebuild never reads a
 * half-written build. Packages are bundled (tree-shaken: effect alone is hundreds of modules)
 * except development dependencies, which only tools/ loads, and packages that read their own
 * files at run time.
 */
import { randomUUID } from "node:crypto"
import { mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from "node:fs"
import { dirname, join, relative, sep } from "node:path"
import { fileURLToPath } from "node:url"
import * as esbuild from "esbuild"
import { newestSourceMtime } from "../bin/build-state.mjs"

const ROOT = fileURLToPath(new URL("..", import.meta.url))

/** Packages kept as run-time imports from node_modules. */
const externalPackages = (root) => {
  const pkg = JSON.parse(readFileSync(join(root, "package.json"), "utf8"))
  const devOnly = Object.keys(pkg.devDependencies ?? {}).filter((name) => !(name in (pkg.dependencies ?? {})))
  // parquetjs-lite: loaded with createRequire and its generated Thrift files; pg-native: pg's optional native client;
  // protobufjs: an optional require of pg-logical-replication's decoderbufs plugin, which the pipeline does not use
  // (installed only as a development dependency of the tests' independent KPL decoder).
  return [...devOnly, "parquetjs-lite", "pg-native", "protobufjs"]
}

/**
 * `import.meta.url` in a bundled module would name the bundle's chunk; modules that find files
 * beside them (the warehouse migrations, the totesys schema) need their own source location, so
 * it is rewritten to the source file's URL relative to the output folder.
 */
const sourceUrlPlugin = (outdir) => ({
  name: "source-import-meta-url",
  setup(build) {
    build.onLoad({ filter: /\.ts$/, namespace: "file" }, (args) => {
      if (args.path.includes(`${sep}node_modules${sep}`)) return undefined
      const text = readFileSync(args.path, "utf8")
      if (!text.includes("import.meta.url")) return undefined
      const fromOutput = relative(outdir, args.path).split(sep).join("/")
      return { contents: text.replaceAll("import.meta.url", `new URL(${JSON.stringify(fromOutput)}, import.meta.url).href`), loader: "ts" }
    })
  }
})

/** Production builds leave tools/ out: an import of it becomes a module that throws when loaded. */
const withoutToolsPlugin = (root) => ({
  name: "without-tools",
  setup(build) {
    const tools = join(root, "tools") + sep
    build.onResolve({ filter: /tools\// }, (args) => {
      const target = join(args.resolveDir, args.path)
      return target.startsWith(tools) ? { path: relative(root, target), namespace: "absent-tools" } : undefined
    })
    build.onLoad({ filter: /.*/, namespace: "absent-tools" }, (args) => ({
      contents: `throw new Error(${JSON.stringify(`${args.path}: tools/ (development tooling) is not part of this production build`)})`,
      loader: "js"
    }))
  }
})

/** Build folders other than the current one, older than an hour (a running CLI may still load chunks from a recent one). */
const removeOldBuilds = (dist, keep) => {
  for (const name of readdirSync(dist)) {
    const path = join(dist, name)
    if (name === keep || name === "current.json") continue
    const stat = statSync(path, { throwIfNoEntry: false })
    if (stat && Date.now() - stat.mtimeMs > 3_600_000) rmSync(path, { recursive: true, force: true })
  }
}

export const buildCli = async ({ root = ROOT, production = false } = {}) => {
  const started = performance.now()
  const sourcesMtimeMs = newestSourceMtime(root)
  const dist = join(root, "dist")
  const build = `${new Date().toISOString().replace(/[-:.TZ]/g, "").slice(0, 14)}-${randomUUID().slice(0, 8)}`
  const outdir = join(dist, build)
  mkdirSync(outdir, { recursive: true })
  const result = await esbuild.build({
    absWorkingDir: root,
    entryPoints: { cli: join(root, "services/cli/main.ts") },
    outdir,
    bundle: true,
    splitting: true,
    format: "esm",
    platform: "node",
    // ES module builds of packages where they have one: tree-shaken, and no CommonJS wrappers to run at start.
    mainFields: ["module", "main"],
    target: "node22",
    external: externalPackages(root),
    // Bundled CommonJS packages call require(); an ES module has none of its own.
    banner: { js: 'import { createRequire as __totesCreateRequire } from "node:module"; const require = __totesCreateRequire(import.meta.url);' },
    plugins: [sourceUrlPlugin(outdir), ...(production ? [withoutToolsPlugin(root)] : [])],
    metafile: true,
    logLevel: "warning"
  })
  const manifest = { entry: `${build}/cli.js`, production, sourcesMtimeMs, builtAt: new Date().toISOString() }
  const temporary = join(dist, `current.json.${process.pid}.${randomUUID().slice(0, 8)}`)
  writeFileSync(temporary, `${JSON.stringify(manifest, null, 1)}\n`)
  renameSync(temporary, join(dist, "current.json"))
  removeOldBuilds(dist, build)
  return { ...manifest, dist, metafile: result.metafile, ms: Math.round(performance.now() - started) }
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const production = process.argv.includes("--production")
  const built = await buildCli({ production })
  const bytes = Object.values(built.metafile.outputs).reduce((sum, output) => sum + output.bytes, 0)
  console.log(`built ${relative(ROOT, join(built.dist, dirname(built.entry)))}/ (${production ? "production" : "development"}, ${(bytes / 1048576).toFixed(1)} MiB) in ${built.ms} ms`)
}
