/**
 * In-process servers that speak the real AWS wire protocols, for local runs and tests:
 * kinesalite (Kinesis), dynalite (DynamoDB), fauxqs (S3). See README "Local stack" for why these.
 */
import type { Server } from "node:http"
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

// The servers are development dependencies, loaded only when a local stack starts: the
// production image (npm ci --omit=dev) runs the same CLI without them.

export const startKinesis = async (): Promise<LocalServer> => {
  const { default: kinesalite } = await import("kinesalite")
  return listen("kinesis (kinesalite)", kinesalite({ createStreamMs: 0, deleteStreamMs: 0, updateStreamMs: 0, shardLimit: 200 }))
}

export const startDynamo = async (): Promise<LocalServer> => {
  const { default: dynalite } = await import("dynalite")
  return listen("dynamodb (dynalite)", dynalite({ createTableMs: 0, deleteTableMs: 0, updateTableMs: 0 }))
}

export const startS3 = async (): Promise<LocalServer> => {
  try {
    const { startFauxqs } = await import("fauxqs")
    const server = await startFauxqs({ port: 0, host: "127.0.0.1", logger: false })
    return { endpoint: `http://127.0.0.1:${server.port}`, stop: () => server.stop() }
  } catch (cause) {
    throw new ServiceStartError("s3 (fauxqs)", "", cause)
  }
}
