/**
 * Writes contracts/change-event.schema.json from the Effect Schema (the single source of truth).
 *   node --import tsx scripts/export-json-schema.ts
 * A unit test fails when the committed file is stale.
 */
import { writeFileSync } from "node:fs"
import { changeEventJsonSchemaText } from "../contracts/change-event.ts"

const path = new URL("../contracts/change-event.schema.json", import.meta.url)
writeFileSync(path, changeEventJsonSchemaText())
console.log(`wrote ${path.pathname}`)
