/** Starts the shared local stack once per test run and hands its variables to every test. */
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import type { TestProject } from "vitest/node"
import { startStack, type LocalStack } from "../../tools/local/stack.ts"

declare module "vitest" {
  export interface ProvidedContext {
    stackEnv: Record<string, string>
  }
}

let stack: LocalStack | undefined
let dir: string | undefined

export async function setup(project: TestProject) {
  dir = mkdtempSync(join(tmpdir(), "totes-test-"))
  stack = await startStack({ dir })
  project.provide("stackEnv", { ...stack.env })
}

export async function teardown() {
  await stack?.stop()
  if (dir) rmSync(dir, { recursive: true, force: true })
}
