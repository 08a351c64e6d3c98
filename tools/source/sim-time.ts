/**
 * Time as totesys stores it: naive UTC `timestamp(3)` ('YYYY-MM-DD HH:MM:SS.mmm') and text dates
 * ('YYYY-MM-DD'), and the real database's calendar (orders Monday–Friday 08:00–18:59 UTC, the
 * payment job at 07:55 on weekdays). Instants are epoch milliseconds (UTC) throughout.
 */

export const SECOND_MS = 1_000
export const MINUTE_MS = 60 * SECOND_MS
export const HOUR_MS = 60 * MINUTE_MS
export const DAY_MS = 24 * HOUR_MS

/** Orders are inserted from 08:00:00 to 18:59:59.999 UTC. */
export const BUSINESS_OPEN_MS = 8 * HOUR_MS
export const BUSINESS_CLOSE_MS = 19 * HOUR_MS
/** The daily payment job starts at 07:55 UTC (the real one's rows carry 07:55:11.6–11.9). */
export const PAYMENT_JOB_MS = 7 * HOUR_MS + 55 * MINUTE_MS

/** 'YYYY-MM-DD HH:MM:SS.mmm', the text form of a naive UTC timestamp(3). */
export const formatTimestamp = (ms: number): string => {
  const iso = new Date(ms).toISOString()
  return `${iso.slice(0, 10)} ${iso.slice(11, 23)}`
}

/** 'YYYY-MM-DD' (UTC). */
export const formatDate = (ms: number): string => new Date(ms).toISOString().slice(0, 10)

/**
 * Epoch ms of a Date, a number, an ISO string with zone, or a naive 'YYYY-MM-DD[ HH:MM[:SS[.mmm]]]'
 * (read as UTC, as totesys means it).
 */
export const toInstant = (value: Date | string | number): number => {
  if (typeof value === "number") return value
  if (value instanceof Date) return value.getTime()
  const naive = /^(\d{4}-\d{2}-\d{2})(?:[ T](\d{2}:\d{2}(?::\d{2}(?:\.\d{1,3})?)?))?$/.exec(value.trim())
  const ms = naive ? Date.parse(`${naive[1]}T${naive[2] ?? "00:00"}Z`) : Date.parse(value)
  if (Number.isNaN(ms)) throw new RangeError(`not a timestamp: ${value}`)
  return ms
}

export const dayStart = (ms: number): number => Math.floor(ms / DAY_MS) * DAY_MS

export const timeOfDay = (ms: number): number => ms - dayStart(ms)

/** ISO day of week: 1 = Monday … 7 = Sunday. */
export const isoDayOfWeek = (ms: number): number => ((new Date(ms).getUTCDay() + 6) % 7) + 1

export const isWeekday = (ms: number): boolean => isoDayOfWeek(ms) <= 5

export const inBusinessHours = (ms: number): boolean => {
  const tod = timeOfDay(ms)
  return isWeekday(ms) && tod >= BUSINESS_OPEN_MS && tod < BUSINESS_CLOSE_MS
}

/** `ms` itself when inside business hours, else the next weekday 08:00:00.000. */
export const nextBusinessOpen = (ms: number): number => {
  if (inBusinessHours(ms)) return ms
  let day = dayStart(ms)
  if (!(isWeekday(day) && timeOfDay(ms) < BUSINESS_OPEN_MS)) day += DAY_MS
  while (!isWeekday(day)) day += DAY_MS
  return day + BUSINESS_OPEN_MS
}

/** Start-of-day instants of the weekdays whose 07:55 job time lies in (afterMs, untilMs]. */
export const paymentJobDays = (afterMs: number, untilMs: number): Array<number> => {
  const days: Array<number> = []
  for (let day = dayStart(afterMs); day + PAYMENT_JOB_MS <= untilMs; day += DAY_MS) {
    const job = day + PAYMENT_JOB_MS
    if (job > afterMs && isWeekday(day)) days.push(day)
  }
  return days
}
