#!/usr/bin/env node
// The dependency rules of .dependency-cruiser.cjs, checked with dependency-cruiser.
//
//   node scripts/dependency-check.mjs                the repository follows the rules (part of npm test)
//   node scripts/dependency-check.mjs --prove-fails  shows the check can fail: cruises a copy of the
//                                                    code with planted violations (a cycle, forbidden
//                                                    imports of each kind, a devDependency in production
//                                                    code) and allowed imports beside them, and succeeds
//                                                    only if exactly the planted violations are reported
import { execFileSync } from "node:child_process"
import { cpSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { dirname, join, resolve } from "node:path"
import { fileURLToPath } from "node:url"

const root = resolve(dirname(fileURLToPath(import.meta.url)), "..")
const SCANNED = ["contracts", "services", "tools", "infra", "sst.config.ts", "bench", "test", "scripts", "bin"]
const depcruise = join(root, "node_modules", ".bin", "depcruise")

/** The violations dependency-cruiser reports for the code under `cwd`, as "rule: from → to". */
const violations = (cwd) => {
  let output
  try {
    output = execFileSync(depcruise, ["--config", ".dependency-cruiser.cjs", "--output-type", "json", ...SCANNED], {
      cwd,
      encoding: "utf8",
      maxBuffer: 256 * 1024 * 1024
    })
  } catch (error) {
    // depcruise exits non-zero when it finds errors; the JSON is still on stdout.
    if (typeof error.stdout !== "string" || !error.stdout.startsWith("{")) throw error
    output = error.stdout
  }
  const result = JSON.parse(output)
  return result.summary.violations.map((v) =>
    v.rule.name === "no-cycles"
      ? `${v.rule.name}: ${[v.from, ...(v.cycle ?? []).map((step) => step.name ?? step)].join(" → ")}`
      : `${v.rule.name}: ${v.from} → ${v.to.replace(/^.*\/node_modules\//, "node_modules/")}`
  )
}

/** Files planted into a copy of the repository: the violations they must produce, and allowed imports. */
const PLANTED = {
  "contracts/planted-cycle-a.ts": `import { b } from "./planted-cycle-b.ts"\nexport const a = () => b`,
  "contracts/planted-cycle-b.ts": `import { a } from "./planted-cycle-a.ts"\nexport const b = () => a`,
  "contracts/planted-impure.ts": `export { applyRecords } from "../services/warehouse/apply.ts"`,
  "services/shared/planted-upward.ts": `export { projectBatch } from "../warehouse/projection.ts"`,
  "services/lake/planted-sideways.ts": `export { applyRecords } from "../warehouse/apply.ts"`,
  "services/reader/planted-sibling.ts": `export { processKinesisEvent } from "../consumer/process-batch.ts"`,
  "services/consumer/planted-tooling.ts": `export * from "../../tools/local/ports.ts"`,
  "services/archiver/planted-dev-dependency.ts": `import kinesalite from "kinesalite"\nexport default kinesalite`,
  "services/replay/planted-dynamic-tooling.ts": `export const load = () => import("../../tools/lake/duckdb.ts")`,
  "services/status/planted-upward.ts": `export * from "../cli/usage.ts"`,
  "infra/planted-tooling.ts": `export * from "../tools/local/ports.ts"`,
  // Allowed: a deployable using the stores, shared and its own folder; a store using shared.
  "services/replay/planted-allowed.ts": `export { applyRecords } from "../warehouse/apply.ts"\nexport { listRawObjects } from "../lake/raw.ts"\nexport { replay } from "./replay.ts"`,
  "services/lake/planted-allowed.ts": `export { makeLakeStore } from "../shared/lake-store.ts"\nexport { encodeRawObject } from "./raw.ts"`
}

const EXPECTED = [
  "no-cycles: contracts/planted-cycle-a.ts → contracts/planted-cycle-b.ts → contracts/planted-cycle-a.ts",
  "contracts-are-pure: contracts/planted-impure.ts → services/warehouse/apply.ts",
  "shared-is-the-bottom: services/shared/planted-upward.ts → services/warehouse/projection.ts",
  "stores-below-deployables: services/lake/planted-sideways.ts → services/warehouse/apply.ts",
  "deployables-are-independent: services/reader/planted-sibling.ts → services/consumer/process-batch.ts",
  "production-code-without-tooling: services/consumer/planted-tooling.ts → tools/local/ports.ts",
  "tooling-loaded-only-by-the-cli: services/replay/planted-dynamic-tooling.ts → tools/lake/duckdb.ts",
  "status-below-cli: services/status/planted-upward.ts → services/cli/usage.ts",
  "infra-without-tooling: infra/planted-tooling.ts → tools/local/ports.ts",
  "production-code-without-dev-dependencies: services/archiver/planted-dev-dependency.ts → node_modules/kinesalite/index.js"
]

const proveFails = () => {
  const copy = mkdtempSync(join(tmpdir(), "totes-depcheck-"))
  try {
    for (const entry of [...SCANNED, "tsconfig.json", "package.json", ".dependency-cruiser.cjs", "types"]) {
      cpSync(join(root, entry), join(copy, entry), { recursive: true })
    }
    symlinkSync(join(root, "node_modules"), join(copy, "node_modules"))
    for (const [path, text] of Object.entries(PLANTED)) {
      mkdirSync(dirname(join(copy, path)), { recursive: true })
      writeFileSync(join(copy, path), text + "\n")
    }
    const found = violations(copy)
    const missing = EXPECTED.filter((v) => !found.includes(v))
    const unexpected = found.filter((v) => !EXPECTED.includes(v))
    for (const v of found) console.log(`  reported  ${v}`)
    if (missing.length > 0 || unexpected.length > 0) {
      for (const v of missing) console.error(`  MISSING   ${v}`)
      for (const v of unexpected) console.error(`  UNEXPECTED ${v}`)
      console.error("dependency check proof FAILED: the rules do not catch exactly the planted violations")
      process.exit(1)
    }
    console.log(`dependency check proven: all ${EXPECTED.length} planted violations reported, the allowed imports beside them not`)
  } finally {
    rmSync(copy, { recursive: true, force: true })
  }
}

if (process.argv.includes("--prove-fails")) {
  proveFails()
} else {
  const found = violations(root)
  if (found.length > 0) {
    for (const v of found) console.error(`  ${v}`)
    console.error(`dependency check FAILED: ${found.length} violation(s) of .dependency-cruiser.cjs`)
    process.exit(1)
  }
  console.log("dependency check passed: no cycles, every import runs the allowed way")
}
