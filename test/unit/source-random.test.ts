import { describe, expect, it } from "vitest"
import { Random } from "../../tools/source/random.ts"
import {
  formatDate,
  formatTimestamp,
  inBusinessHours,
  isoDayOfWeek,
  nextBusinessOpen,
  paymentJobDays,
  toInstant
} from "../../tools/source/sim-time.ts"

const draw = (rng: Random, n: number) => Array.from({ length: n }, () => rng.uint32())

describe("Random (seeded sfc32)", () => {
  it("gives the same sequence for the same seed and another for another seed", () => {
    expect(draw(new Random(42), 100)).toEqual(draw(new Random(42), 100))
    expect(draw(new Random("42"), 100)).toEqual(draw(new Random(42), 100))
    expect(draw(new Random(43), 100)).not.toEqual(draw(new Random(42), 100))
    expect(draw(new Random("a"), 10)).not.toEqual(draw(new Random("b"), 10))
  })

  it("pins the sequence (a change of algorithm changes every generated database)", () => {
    expect(draw(new Random(1), 4)).toEqual([2565821905, 2171371824, 1283520597, 3174639913])
  })

  it("forks independent, reproducible streams without advancing the parent", () => {
    const a = new Random(7)
    const before = draw(new Random(7), 5)
    const fork1 = draw(a.fork("x"), 5)
    expect(draw(a, 5)).toEqual(before)
    expect(draw(new Random(7).fork("x"), 5)).toEqual(fork1)
    expect(draw(new Random(7).fork("y"), 5)).not.toEqual(fork1)
  })

  it("draws uniform floats in [0,1) and integers in inclusive ranges", () => {
    const rng = new Random("uniform")
    const counts = new Map<number, number>()
    let sum = 0
    let min = 1
    let max = 0
    for (let i = 0; i < 60_000; i++) {
      const x = rng.next()
      min = Math.min(min, x)
      max = Math.max(max, x)
      sum += x
      const k = rng.int(-2, 3)
      counts.set(k, (counts.get(k) ?? 0) + 1)
    }
    expect(min).toBeGreaterThanOrEqual(0)
    expect(max).toBeLessThan(1)
    expect(sum / 60_000).toBeCloseTo(0.5, 2)
    expect([...counts.keys()].sort((a, b) => a - b)).toEqual([-2, -1, 0, 1, 2, 3])
    for (const n of counts.values()) expect(n).toBeGreaterThan(9_500)
    expect(() => rng.int(3, 2)).toThrow(RangeError)
  })

  it("weights, Poisson means, shuffles and picks behave", () => {
    const rng = new Random("dist")
    const hits = [0, 0, 0]
    for (let i = 0; i < 30_000; i++) hits[rng.weightedIndex([1, 0, 3])]!++
    expect(hits[1]).toBe(0)
    expect(hits[2]! / hits[0]!).toBeGreaterThan(2.7)
    expect(hits[2]! / hits[0]!).toBeLessThan(3.3)
    for (const mean of [0.85, 9, 23, 100]) {
      let total = 0
      for (let i = 0; i < 5_000; i++) total += rng.poisson(mean)
      expect(total / 5_000).toBeGreaterThan(mean * 0.95)
      expect(total / 5_000).toBeLessThan(mean * 1.05)
    }
    const items = [...Array(50).keys()]
    const shuffled = rng.shuffle([...items])
    expect(shuffled).not.toEqual(items)
    expect([...shuffled].sort((a, b) => a - b)).toEqual(items)
    for (let i = 0; i < 100; i++) expect(rng.pickOther([1, 2, 3], 2)).not.toBe(2)
    expect(rng.chars("AB", 8)).toMatch(/^[AB]{8}$/)
  })
})

describe("source time helpers", () => {
  it("formats and reads naive UTC timestamps with milliseconds", () => {
    const ms = Date.UTC(2024, 10, 15, 14, 40, 10, 188)
    expect(formatTimestamp(ms)).toBe("2024-11-15 14:40:10.188")
    expect(formatDate(ms)).toBe("2024-11-15")
    expect(toInstant("2024-11-15 14:40:10.188")).toBe(ms)
    expect(toInstant("2024-11-15T14:40:10.188Z")).toBe(ms)
    expect(toInstant("2024-11-15")).toBe(Date.UTC(2024, 10, 15))
    expect(toInstant(new Date(ms))).toBe(ms)
    expect(() => toInstant("yesterday")).toThrow(RangeError)
  })

  it("knows the weekdays and business hours of the real database", () => {
    expect(isoDayOfWeek(toInstant("2024-11-15"))).toBe(5) // Friday
    expect(isoDayOfWeek(toInstant("2024-11-17"))).toBe(7)
    expect(inBusinessHours(toInstant("2024-11-15 08:00:00.000"))).toBe(true)
    expect(inBusinessHours(toInstant("2024-11-15 18:59:59.999"))).toBe(true)
    expect(inBusinessHours(toInstant("2024-11-15 19:00:00.000"))).toBe(false)
    expect(inBusinessHours(toInstant("2024-11-15 07:59:59.999"))).toBe(false)
    expect(inBusinessHours(toInstant("2024-11-16 12:00"))).toBe(false)
    expect(formatTimestamp(nextBusinessOpen(toInstant("2024-11-15 19:00")))).toBe("2024-11-18 08:00:00.000")
    expect(formatTimestamp(nextBusinessOpen(toInstant("2024-11-16 03:00")))).toBe("2024-11-18 08:00:00.000")
    expect(formatTimestamp(nextBusinessOpen(toInstant("2024-11-18 07:00")))).toBe("2024-11-18 08:00:00.000")
    expect(formatTimestamp(nextBusinessOpen(toInstant("2024-11-18 09:30")))).toBe("2024-11-18 09:30:00.000")
  })

  it("lists the weekday payment jobs a span of time passes", () => {
    const days = paymentJobDays(toInstant("2024-11-15 08:00"), toInstant("2024-11-19 08:00")).map(formatDate)
    expect(days).toEqual(["2024-11-18", "2024-11-19"])
    expect(paymentJobDays(toInstant("2024-11-18 07:55"), toInstant("2024-11-18 18:00"))).toEqual([])
    expect(paymentJobDays(toInstant("2024-11-18 07:54:59.999"), toInstant("2024-11-18 07:55")).map(formatDate)).toEqual(["2024-11-18"])
  })
})
