/**
 * Pure: turns a column's text value (from pgoutput, a SELECT, or COPY … TO in text format) into
 * the contract's lossless JSON value.
 * The decoder receives the server's text output untouched (no pg-types parsing), so nothing
 * is rounded: numeric/int8 stay strings, timestamps keep their microseconds.
 */
export const PgType = {
  bool: 16,
  bytea: 17,
  int8: 20,
  int2: 21,
  int4: 23,
  oid: 26,
  json: 114,
  float4: 700,
  float8: 701,
  date: 1082,
  timestamp: 1114,
  timestamptz: 1184,
  numeric: 1700,
  jsonb: 3802
} as const

export type JsonValue = string | number | boolean | null | { readonly [key: string]: JsonValue } | ReadonlyArray<JsonValue>

/** `2024-02-23 11:11:10.072` → `2024-02-23T11:11:10.072` (no zone: the source's naive UTC). */
export const timestampText = (text: string): string => text.replace(" ", "T")

/**
 * `2024-02-23 11:11:10.072345+05:30` → `2024-02-23T05:41:10.072345Z`. Sub-millisecond digits are
 * carried over as text because a JS Date only holds milliseconds.
 */
export const timestamptzText = (text: string): string => {
  const match = /^(\d{4,}-\d{2}-\d{2}) (\d{2}:\d{2}:\d{2})(\.\d+)?([+-]\d{2})(?::?(\d{2}))?(?::?(\d{2}))?( BC)?$/.exec(text)
  if (!match || match[7]) return text // infinity, BC dates: keep the server's text
  const [, date, time, fraction = "", offH, offM = "00", offS = "00"] = match
  const sign = offH!.startsWith("-") ? -1 : 1
  const offsetMs = sign * ((Math.abs(Number(offH)) * 3600 + Number(offM) * 60 + Number(offS)) * 1000)
  const utc = new Date(Date.parse(`${date}T${time}Z`) - offsetMs)
  // Past year 9999 a JS Date cannot say it in ISO form: keep the server's text.
  if (Number.isNaN(utc.getTime()) || utc.getUTCFullYear() > 9999) return text
  return `${utc.toISOString().slice(0, 19)}${fraction}Z`
}

/** bytea in the hex format (`\\x…`, the default) or the escape format (`bytea_output = escape`). */
const byteaToBase64 = (text: string): string => {
  if (text.startsWith("\\x")) return Buffer.from(text.slice(2), "hex").toString("base64")
  const bytes: Array<number> = []
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i)
    if (c === 0x5c /* \\ */ && text[i + 1] === "\\") {
      bytes.push(0x5c)
      i++
    } else if (c === 0x5c && /^[0-3][0-7]{2}$/.test(text.slice(i + 1, i + 4))) {
      bytes.push(parseInt(text.slice(i + 1, i + 4), 8))
      i += 3
    } else bytes.push(c & 0xff)
  }
  return Buffer.from(bytes).toString("base64")
}

export const decodeValue = (typeOid: number, text: string | null): JsonValue => {
  if (text === null) return null
  switch (typeOid) {
    case PgType.int2:
    case PgType.int4:
    case PgType.oid:
      return Number(text)
    case PgType.bool:
      return text === "t"
    case PgType.float4:
    case PgType.float8: {
      // NaN and ±Infinity have no JSON number: keep their text.
      const n = Number(text)
      return Number.isFinite(n) ? n : text
    }
    case PgType.json:
    case PgType.jsonb:
      return JSON.parse(text) as JsonValue
    case PgType.bytea:
      return byteaToBase64(text)
    case PgType.timestamp:
      return timestampText(text)
    case PgType.timestamptz:
      return timestamptzText(text)
    default:
      // int8, numeric, date (YYYY-MM-DD), text, varchar, enums, uuid, arrays…: the exact text.
      return text
  }
}

/** Microseconds since the Unix epoch (pgoutput's commit time) → ISO UTC with microseconds. */
export const microsToIso = (micros: bigint): string => {
  const millis = micros / 1000n
  const rest = Number(micros % 1000n)
  const iso = new Date(Number(millis)).toISOString()
  return `${iso.slice(0, 23)}${String(rest).padStart(3, "0")}Z`
}
