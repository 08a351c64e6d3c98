/**
 * In-process servers that speak the real AWS wire protocols, for local runs and tests:
 * kinesalite (Kinesis), dynalite (DynamoDB), fauxqs (S3). See README "Local stack" for why these.
 */
import type { Server } from "node:http"
import kinesalite from "kinesalite"
import dynalite from "dynalite"
import { startFauxqs } from "fauxqs"
import { freePort } from "./ports.ts"
import { ServiceStartError } from "./postgres.ts"

export interface LocalServer {
  readonly endpoint: string
  readonly stop: () => Promise<void>
}

const listen = async (name: string, server: Server): Promise<LocalServer> => {
  const port = await freePort()
  try {
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject)
      server.listen(port, "127.0.0.1", () => resolve())
    })
  } catch (cause) {
    throw new ServiceStartError(name, "", cause)
  }
  return {
    endpoint: `http://127.0.0.1:${port}`,
    stop: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections?.()
        server.close(() => resolve())
      })
  }
}

export const startKinesis = (): Promise<LocalServer> =>
  listen("kinesis (kinesalite)", kinesalite({ createStreamMs: 0, deleteStreamMs: 0, updateStreamMs: 0, shardLimit: 200 }))

export const startDynamo = (): Promise<LocalServer> =>
  listen("dynamodb (dynalite)", dynalite({ createTableMs: 0, deleteTableMs: 0, updateTableMs: 0 }))

export const startS3 = async (): Promise<LocalServer> => {
  try {
    const server = await startFauxqs({ port: 0, host: "127.0.0.1", logger: false })
    return { endpoint: `http://127.0.0.1:${server.port}`, stop: () => server.stop() }
  } catch (cause) {
    throw new ServiceStartError("s3 (fauxqs)", "", cause)
  }
}
