/** PostgreSQL LSN text: parse, format, normalise, compare, sortable form. */
import { describe, expect, it } from "vitest"
import { compareLsn, isLsn, lsnFromBigInt, lsnSortable, lsnToBigInt, maxLsn, normalizeLsn, ZERO_LSN } from "../../contracts/lsn.ts"
import { Random } from "../../tools/source/random.ts"

const MAX = 2n ** 64n - 1n

const randomValue = (rng: Random): bigint => {
  const hi = rng.chance(0.3) ? 0 : rng.chance(0.1) ? 0xffffffff : rng.uint32()
  const lo = rng.chance(0.1) ? rng.pick([0, 1, 0xffffffff]) : rng.uint32()
  return (BigInt(hi) << 32n) | BigInt(lo)
}

describe("isLsn", () => {
  it.each(["0/0", "0/16B3748", "16/B374D848", "FFFFFFFF/FFFFFFFF", "00000000/0150AFD0", "0/150afd0", "a/B"])("accepts %j", (text) => {
    expect(isLsn(text)).toBe(true)
  })

  it.each(["", "0", "0/", "/0", "0//0", "G/0", "0/G", "123456789/0", "0/123456789", " 0/0", "0/0 ", "0x1/2", "-1/0", "1/-0", "0/0/0", "０/0"])("rejects %j", (text) => {
    expect(isLsn(text)).toBe(false)
    expect(() => lsnToBigInt(text)).toThrow(RangeError)
    expect(() => normalizeLsn(text)).toThrow(RangeError)
  })
})

describe("lsnToBigInt and lsnFromBigInt", () => {
  it.each([
    ["0/0", 0n],
    ["0/1", 1n],
    ["0/FFFFFFFF", 0xffffffffn],
    ["1/0", 0x100000000n],
    ["16/B374D848", 0x16b374d848n],
    ["FFFFFFFF/FFFFFFFF", MAX]
  ])("%s is %s", (text, value) => {
    expect(lsnToBigInt(text)).toBe(value)
    expect(lsnFromBigInt(value)).toBe(text)
  })

  it("padded and lower-case text parse to the same value", () => {
    expect(lsnToBigInt("00000000/0150AFD0")).toBe(0x150afd0n)
    expect(lsnToBigInt("0/150afd0")).toBe(0x150afd0n)
    expect(lsnToBigInt("00000001/00000000")).toBe(2n ** 32n)
  })

  it("refuses values outside 0..2^64-1", () => {
    expect(() => lsnFromBigInt(-1n)).toThrow(RangeError)
    expect(() => lsnFromBigInt(2n ** 64n)).toThrow(RangeError)
    expect(lsnFromBigInt(MAX)).toBe("FFFFFFFF/FFFFFFFF")
  })

  it("round-trips random values, and formats like Postgres (unpadded upper-case hex halves)", () => {
    const rng = new Random("lsn-roundtrip")
    for (let i = 0; i < 2000; i++) {
      const value = randomValue(rng)
      const text = lsnFromBigInt(value)
      expect(text).toBe(`${(value >> 32n).toString(16).toUpperCase()}/${(value & 0xffffffffn).toString(16).toUpperCase()}`)
      expect(text).toMatch(/^(0|[1-9A-F][0-9A-F]{0,7})\/(0|[1-9A-F][0-9A-F]{0,7})$/)
      expect(lsnToBigInt(text)).toBe(value)
    }
  })
})

describe("normalizeLsn", () => {
  it.each([
    ["00000000/0150AFD0", "0/150AFD0"],
    ["00000000/00000000", "0/0"],
    ["0/150afd0", "0/150AFD0"],
    ["000000aB/0000000c", "AB/C"],
    ["0/16B3748", "0/16B3748"]
  ])("%s → %s", (text, expected) => {
    expect(normalizeLsn(text)).toBe(expected)
  })
})

describe("compareLsn, maxLsn", () => {
  it("compares by value, not as text", () => {
    expect(compareLsn("0/9", "0/10")).toBe(-1)
    expect(compareLsn("A/0", "10/0")).toBe(-1)
    expect(compareLsn("0/FFFFFFFF", "1/0")).toBe(-1)
    expect(compareLsn("1/0", "0/FFFFFFFF")).toBe(1)
    expect(compareLsn("00000000/0150AFD0", "0/150afd0")).toBe(0)
  })

  it("agrees with BigInt order for random pairs", () => {
    const rng = new Random("lsn-compare")
    for (let i = 0; i < 2000; i++) {
      const a = randomValue(rng)
      const b = rng.chance(0.1) ? a : randomValue(rng)
      expect(compareLsn(lsnFromBigInt(a), lsnFromBigInt(b))).toBe(a < b ? -1 : a > b ? 1 : 0)
    }
  })

  it("maxLsn returns the larger argument as given (the first when equal)", () => {
    expect(maxLsn("0/9", "0/10")).toBe("0/10")
    expect(maxLsn("0/10", "0/9")).toBe("0/10")
    expect(maxLsn("00000000/00000010", "0/10")).toBe("00000000/00000010")
    expect(maxLsn("0/10", "00000000/00000010")).toBe("0/10")
  })
})

describe("lsnSortable", () => {
  it("is 16 upper-case hex digits", () => {
    expect(lsnSortable("0/0")).toBe("0000000000000000")
    expect(lsnSortable("0/150afd0")).toBe("000000000150AFD0")
    expect(lsnSortable("16/B374D848")).toBe("00000016B374D848")
    expect(lsnSortable("FFFFFFFF/FFFFFFFF")).toBe("FFFFFFFFFFFFFFFF")
  })

  it("sorts as text exactly as the LSNs sort by value", () => {
    const rng = new Random("lsn-sortable")
    const values = Array.from({ length: 2000 }, () => randomValue(rng))
    const byValue = [...values].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0)).map(lsnFromBigInt)
    const byText = values
      .map((v) => ({ lsn: lsnFromBigInt(v), sortable: lsnSortable(lsnFromBigInt(v)) }))
      .sort((a, b) => (a.sortable < b.sortable ? -1 : a.sortable > b.sortable ? 1 : 0))
      .map((x) => x.lsn)
    expect(byText).toEqual(byValue)
  })

  it("ZERO_LSN is 0/0", () => {
    expect(ZERO_LSN).toBe("0/0")
    expect(lsnToBigInt(ZERO_LSN)).toBe(0n)
  })
})
