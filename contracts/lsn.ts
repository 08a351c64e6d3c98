/**
 * PostgreSQL log sequence numbers. The text form is `HI/LO` in hex; pg-logical-replication
 * gives commit LSNs zero-padded (`00000000/0150AFD0`) and row LSNs not (`0/150ACD0`), so
 * every LSN is normalised to Postgres' own unpadded upper-case form before it is compared.
 */
export type Lsn = string

const LSN_PATTERN = /^[0-9A-Fa-f]{1,8}\/[0-9A-Fa-f]{1,8}$/

export const isLsn = (text: string): boolean => LSN_PATTERN.test(text)

export const lsnToBigInt = (lsn: Lsn): bigint => {
  if (!isLsn(lsn)) throw new RangeError(`not an LSN: ${JSON.stringify(lsn)}`)
  const [hi, lo] = lsn.split("/") as [string, string]
  return (BigInt(`0x${hi}`) << 32n) | BigInt(`0x${lo}`)
}

export const lsnFromBigInt = (value: bigint): Lsn => {
  if (value < 0n || value > 0xffffffffffffffffn) throw new RangeError(`LSN out of range: ${value}`)
  return `${(value >> 32n).toString(16).toUpperCase()}/${(value & 0xffffffffn).toString(16).toUpperCase()}`
}

/** The canonical form: unpadded, upper case, as `pg_lsn` prints it. */
export const normalizeLsn = (lsn: Lsn): Lsn => lsnFromBigInt(lsnToBigInt(lsn))

export const compareLsn = (a: Lsn, b: Lsn): number => {
  const x = lsnToBigInt(a)
  const y = lsnToBigInt(b)
  return x < y ? -1 : x > y ? 1 : 0
}

export const maxLsn = (a: Lsn, b: Lsn): Lsn => (compareLsn(a, b) >= 0 ? a : b)

/** Fixed-width form that sorts as text (for DynamoDB conditions and lake keys). */
export const lsnSortable = (lsn: Lsn): string => lsnToBigInt(lsn).toString(16).toUpperCase().padStart(16, "0")

export const ZERO_LSN: Lsn = "0/0"
