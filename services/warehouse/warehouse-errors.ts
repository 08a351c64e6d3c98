/** Which warehouse errors are worth retrying: the same classification for live apply and replay. */

/** SQLSTATE classes worth retrying: connection, resources, operator intervention, serialization/deadlock. */
export const isTransientWarehouseError = (error: unknown): boolean => {
  const e = error as { code?: string; message?: string }
  const code = e?.code ?? ""
  if (/^(08|53|57|40)/.test(code) || code === "55P03") return true
  if (["ECONNREFUSED", "ECONNRESET", "ETIMEDOUT", "EPIPE", "ENOTFOUND", "EHOSTUNREACH"].includes(code)) return true
  return /Connection terminated|connection timeout|timeout exceeded when trying to connect|Client has encountered a connection error/i.test(e?.message ?? "")
}

/** The warehouse cannot be reached or is not serving (an outage), as opposed to a conflict between transactions. */
export const isWarehouseUnavailable = (error: unknown): boolean => {
  const code = (error as { code?: string })?.code ?? ""
  return isTransientWarehouseError(error) && !/^40/.test(code) && code !== "55P03"
}
