/**
 * Parallel apply: one backlog applied by one applier and by four concurrent appliers, each into a
 * fresh warehouse, on the same machine in the same run.
 *
 *   node --import tsx bench/appliers.ts     (BENCH_EVENTS=200000, BENCH_BATCH=2000)
 *
 * The backlog is the synthetic workload (orders, their transactions and payments, the payment
 * job) routed to four shards as Kinesis routes them (MD5 of the partition key, an even split of
 * the hash space), cut into batches per shard. The snapshot rows are applied first, untimed.
 * - 1 applier: one connection applies every shard's batches in turn (what one consumer polling
 *   four shards one after the other would do);
 * - 4 appliers: one connection per shard, all at once (what four Lambda invocations do).
 * Both go through `applyRecords`, the consumer's own apply (pipelined statements, shared apply
 * lock, position guard). While the four run, the warehouse connections are sampled every 20 ms
 * (pg_stat_activity): on CPU, waiting for a lock, waiting for the client (Node), or other waits;
 * and the benchmark's own CPU time is read: that says what limits the scaling on this machine.
 * Exactness: both warehouses must be equal, table for table.
 */
import pg from "pg"
import type { ChangeEvent } from "../contracts/change-event.ts"
import { PRIMARY_KEYS, type TotesysTable } from "../contracts/totesys.ts"
import { hashKeyOf, partitionKeyFor } from "../services/shared/kinesis/shard-map.ts"
import { metrics, nullSink } from "../services/shared/metrics.ts"
import { applyRecords } from "../services/warehouse/apply.ts"
import { migrateWarehouse } from "../services/warehouse/migrate.ts"
import { dumpOf } from "../test/support/lake.ts"
import { syntheticEvents } from "../test/support/synthetic-lake.ts"
import { createDatabase } from "./copy-reference.ts"
import { perSecond, seconds, withStack } from "./support.ts"

const EVENTS = Number(process.env.BENCH_EVENTS ?? 200_000)
const BATCH = Number(process.env.BENCH_BATCH ?? 2_000)
const SHARDS = 4
const STREAM = "bench-appliers"

metrics.setSink(nullSink)

/** The shard Kinesis would put a row's events on: four shards split the 128-bit hash space evenly. */
const shardOf = (event: ChangeEvent): number => {
  const table = event.source.table as TotesysTable
  const image = event.after ?? event.before ?? event.key
  return Number(hashKeyOf(partitionKeyFor(table, image?.[PRIMARY_KEYS[table]])) >> 126n)
}

const batchesOf = (events: ReadonlyArray<ChangeEvent>): Array<Array<ChangeEvent>> => {
  const out: Array<Array<ChangeEvent>> = []
  for (let i = 0; i < events.length; i += BATCH) out.push(events.slice(i, i + BATCH))
  return out
}

const connect = async (url: string) => {
  const client = new pg.Client({ connectionString: url, application_name: "totes-consumer", pipeline: true } as pg.ClientConfig)
  await client.connect()
  return client
}

interface Waits {
  samples: number
  onCpu: number
  lock: number
  client: number
  other: number
}

/** Samples what the apply connections are doing until `stop` resolves. */
const sampleWaits = async (url: string, stop: Promise<unknown>): Promise<Waits> => {
  const client = new pg.Client({ connectionString: url, application_name: "bench-sampler" })
  await client.connect()
  const waits: Waits = { samples: 0, onCpu: 0, lock: 0, client: 0, other: 0 }
  let done = false
  void stop.finally(() => (done = true))
  try {
    while (!done) {
      const { rows } = await client.query(
        "SELECT state, wait_event_type FROM pg_stat_activity WHERE application_name = 'totes-consumer' AND state <> 'idle'"
      )
      for (const row of rows) {
        waits.samples++
        if (row.state === "idle in transaction") waits.client++
        else if (row.wait_event_type === null) waits.onCpu++
        else if (row.wait_event_type === "Lock" || row.wait_event_type === "LWLock") waits.lock++
        else if (row.wait_event_type === "Client") waits.client++
        else waits.other++
      }
      await new Promise((resolve) => setTimeout(resolve, 20))
    }
  } finally {
    await client.end()
  }
  return waits
}

const freshWarehouse = async (base: string, name: string, snapshot: ReadonlyArray<ChangeEvent>) => {
  const url = await createDatabase(base, `${name}_${Date.now()}`)
  const client = await connect(url)
  try {
    await migrateWarehouse(client)
    for (const batch of batchesOf(snapshot)) await applyRecords(client, batch)
  } finally {
    await client.end()
  }
  return url
}

/** Applies each applier's batches in order, the appliers at once; returns the wall time and Node's CPU time. */
const applyWith = async (url: string, appliers: ReadonlyArray<ReadonlyArray<{ shard: number; batch: ReadonlyArray<ChangeEvent> }>>) => {
  const clients = await Promise.all(appliers.map(() => connect(url)))
  const cpu = process.cpuUsage()
  const started = performance.now()
  const work = Promise.all(
    appliers.map(async (batches, i) => {
      for (const { shard, batch } of batches) await applyRecords(clients[i]!, batch, { shard: { stream: STREAM, shardId: `shardId-00000000000${shard}`, lastSequenceNumber: null } })
    })
  )
  const waits = await sampleWaits(url, work)
  await work
  const ms = performance.now() - started
  const used = process.cpuUsage(cpu)
  await Promise.all(clients.map((c) => c.end()))
  return { ms, nodeCpuMs: (used.user + used.system) / 1000, waits }
}


const share = (part: number, whole: number) => `${whole === 0 ? 0 : Math.round((part / whole) * 100)} %`

await withStack(async ({ env }) => {
  const events = [...syntheticEvents(EVENTS)]
  const snapshot = events.filter((e) => e.source.snapshot)
  const changes = events.filter((e) => !e.source.snapshot)
  const perShard = Array.from({ length: SHARDS }, () => [] as Array<ChangeEvent>)
  for (const event of changes) perShard[shardOf(event)]!.push(event)
  const shardBatches = perShard.map((list, shard) => batchesOf(list).map((batch) => ({ shard, batch })))
  // One applier takes the shards' batches in turn: shard 0's first, shard 1's first, … (as a poller of four shards).
  const interleaved: Array<{ shard: number; batch: ReadonlyArray<ChangeEvent> }> = []
  for (let i = 0; i < Math.max(...shardBatches.map((b) => b.length)); i++) for (const batches of shardBatches) if (batches[i]) interleaved.push(batches[i]!)
  console.log(
    `backlog: ${changes.length.toLocaleString("en-GB")} change events (after ${snapshot.length} snapshot rows) on ${SHARDS} shards ` +
      `(${perShard.map((l) => l.length.toLocaleString("en-GB")).join(" / ")}), batches of ${BATCH}`
  )

  const base = env.SOURCE_DATABASE_URL!
  const oneUrl = await freshWarehouse(base, "bench_one", snapshot)
  const one = await applyWith(oneUrl, [interleaved])
  const fourUrl = await freshWarehouse(base, "bench_four", snapshot)
  const four = await applyWith(fourUrl, shardBatches)

  const [a, b] = [await dumpOf(oneUrl), await dumpOf(fourUrl)]
  const differing = Object.keys(a).filter((table) => JSON.stringify(a[table]) !== JSON.stringify(b[table]))

  console.log(`\n| appliers | events | seconds | events/s | × 1 applier | Node CPU / wall |`)
  console.log(`|---|---:|---:|---:|---:|---:|`)
  console.log(`| 1 (every shard in turn, reference) | ${changes.length.toLocaleString("en-GB")} | ${seconds(one.ms)} | ${perSecond(changes.length, one.ms)} | 1.00 | ${(one.nodeCpuMs / one.ms).toFixed(2)} |`)
  console.log(`| 4 at once (one per shard) | ${changes.length.toLocaleString("en-GB")} | ${seconds(four.ms)} | ${perSecond(changes.length, four.ms)} | ${(one.ms / four.ms).toFixed(2)} | ${(four.nodeCpuMs / four.ms).toFixed(2)} |`)
  for (const [label, run] of [["1 applier", one], ["4 appliers", four]] as const) {
    const w = run.waits
    console.log(
      `${label}: apply connections sampled ${w.samples} times: on CPU ${share(w.onCpu, w.samples)}, waiting for a lock ${share(w.lock, w.samples)}, ` +
        `waiting for Node ${share(w.client, w.samples)}, other waits ${share(w.other, w.samples)}`
    )
  }
  console.log(differing.length === 0 ? `exactness: both warehouses equal, table for table (${Object.keys(a).length} tables)` : `EXACTNESS FAILED: ${differing.join(", ")} differ`)
  if (differing.length > 0) process.exitCode = 1
})
