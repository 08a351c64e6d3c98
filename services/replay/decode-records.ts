/**
 * Lake lines → stream records, fast: JSON.parse and a hand-written check of the event contract
 * (contracts/change-event.ts) instead of the Schema decoder on every line. The Schema decoder
 * stays the authority: a line the check does not accept as it is goes through it, so the result
 * is the Schema's for every line (test/unit/replay-decode.test.ts compares both on valid events
 * and on mutations of every field).
 *
 *   decodeRecordLines(lines) → { records, undecodable }   as parseRawRecords (services/lake/raw.ts)
 *
 * The check accepts a parsed value only when the Schema would return it unchanged: the known
 * fields with the right types and nothing else (the Schema drops unknown fields), so the parsed
 * object itself can be used.
 */
import { Result } from "effect"
import { decodeStreamRecordResult, SCHEMA_VERSION, type StreamRecord } from "../../contracts/change-event.ts"
import { isLsn } from "../../contracts/lsn.ts"
import type { UndecodableLine } from "../lake/raw.ts"

type Value = unknown

const isObject = (value: Value): value is Record<string, Value> => typeof value === "object" && value !== null && !Array.isArray(value)

const keyCount = (value: Record<string, Value>): number => {
  let n = 0
  for (const key in value) if (Object.hasOwn(value, key)) n++
  return n
}

const OPERATIONS = new Set(["c", "u", "d", "t", "r"])

/** A row image (or null): an object whose values are JSON (always so after JSON.parse). */
const isRowOrNull = (value: Value): boolean => value === null || isObject(value)

const isStringArray = (value: Value): boolean => {
  if (!Array.isArray(value)) return false
  for (const item of value) if (typeof item !== "string") return false
  return true
}

const isSource = (value: Value): boolean =>
  isObject(value) &&
  keyCount(value) === 9 &&
  typeof value.db === "string" &&
  typeof value.schema === "string" &&
  typeof value.table === "string" &&
  typeof value.commitLsn === "string" &&
  isLsn(value.commitLsn) &&
  (value.lsn === null || (typeof value.lsn === "string" && isLsn(value.lsn))) &&
  (value.xid === null || typeof value.xid === "number") &&
  typeof value.committedAt === "string" &&
  Number.isSafeInteger(value.index) &&
  typeof value.snapshot === "boolean"

const isClaimCheck = (value: Value): boolean =>
  isObject(value) && keyCount(value) === 3 && typeof value.bucket === "string" && typeof value.key === "string" && typeof value.bytes === "number"

const isNonEmptyString = (value: Value): boolean => typeof value === "string" && value.length > 0

/** Whether the Schema decoder would accept `value` and return it as it is. */
export const isPlainStreamRecord = (value: Value): value is StreamRecord => {
  if (!isObject(value) || value.schemaVersion !== SCHEMA_VERSION || !isNonEmptyString(value.id)) return false
  if (value.kind === "change") {
    const claim = value.claimCheck
    return (
      keyCount(value) === (claim === undefined ? 9 : 10) &&
      typeof value.op === "string" &&
      OPERATIONS.has(value.op) &&
      isSource(value.source) &&
      isRowOrNull(value.key) &&
      isRowOrNull(value.before) &&
      isRowOrNull(value.after) &&
      isStringArray(value.unchanged) &&
      (claim === undefined || (Object.hasOwn(value, "claimCheck") && isClaimCheck(claim)))
    )
  }
  return (
    value.kind === "heartbeat" &&
    keyCount(value) === 6 &&
    typeof value.commitLsn === "string" &&
    isLsn(value.commitLsn) &&
    typeof value.committedAt === "string" &&
    typeof value.emittedAt === "string"
  )
}

/** The Schema's answer for one line (the slow path): the record, or why it is not one. */
const decodeWithSchema = (line: string): { record: StreamRecord } | { reason: string } => {
  const result = decodeStreamRecordResult(line)
  return Result.isSuccess(result)
    ? { record: result.success }
    : { reason: `${result.failure.field ? `${result.failure.field}: ` : ""}${result.failure.message}` }
}

/** Every line as a validated record, or reported as undecodable (same answers as parseRawRecords). */
export const decodeRecordLines = (lines: ReadonlyArray<string>): { records: Array<StreamRecord>; undecodable: Array<UndecodableLine> } => {
  const records: Array<StreamRecord> = []
  const undecodable: Array<UndecodableLine> = []
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!
    let parsed: Value
    try {
      parsed = JSON.parse(line)
    } catch {
      parsed = undefined
    }
    if (isPlainStreamRecord(parsed)) {
      records.push(parsed)
      continue
    }
    const slow = decodeWithSchema(line)
    if ("record" in slow) records.push(slow.record)
    else undecodable.push({ line: i + 1, reason: slow.reason })
  }
  return { records, undecodable }
}
