/**
 * Fault injection on a REAL Kinesis client (SDK middleware): PutRecords calls may be throttled
 * before sending, time out after the server accepted them, or come back with some entries
 * failed (those entries are removed from the request, so the server really never saw them).
 */
import type { KinesisClient, PutRecordsCommandInput, PutRecordsCommandOutput } from "@aws-sdk/client-kinesis"

export interface FaultPlan {
  readonly throttleRate: number
  readonly timeoutRate: number
  readonly partialRate: number
  readonly seed: number
}

export interface FaultCounts {
  throttled: number
  timedOut: number
  partial: number
  failedEntries: number
  calls: number
}

const namedError = (name: string, message: string) => Object.assign(new Error(message), { name, $metadata: {} })

export const injectKinesisFaults = (client: KinesisClient, plan: FaultPlan): FaultCounts => {
  let seed = plan.seed
  const random = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31), seed / 2 ** 31)
  const counts: FaultCounts = { throttled: 0, timedOut: 0, partial: 0, failedEntries: 0, calls: 0 }
  client.middlewareStack.add(
    (next: any, context: any) => async (args: any): Promise<any> => {
      if (context.commandName !== "PutRecordsCommand") return next(args)
      counts.calls++
      const input = args.input as PutRecordsCommandInput
      const roll = random()
      if (roll < plan.throttleRate) {
        counts.throttled++
        throw namedError("ProvisionedThroughputExceededException", "Rate exceeded for shard (injected)")
      }
      if (roll < plan.throttleRate + plan.timeoutRate) {
        await next(args) // the server accepts the records…
        counts.timedOut++
        throw namedError("TimeoutError", "socket timed out (injected, after the server accepted)")
      }
      if (roll < plan.throttleRate + plan.timeoutRate + plan.partialRate) {
        const failing = new Set(input.Records!.map((_, i) => i).filter(() => random() < 0.3))
        if (failing.size === 0) failing.add(0)
        counts.partial++
        counts.failedEntries += failing.size
        const sent = input.Records!.filter((_, i) => !failing.has(i))
        if (sent.length === 0) {
          // Every entry failed: Kinesis answers without writing anything.
          const failed = input.Records!.map(() => ({ ErrorCode: "ProvisionedThroughputExceededException", ErrorMessage: "injected partial failure" }))
          return { output: { Records: failed, FailedRecordCount: failed.length, $metadata: {} }, response: {} }
        }
        const result = (await next({ ...args, input: { ...input, Records: sent } })) as { output: PutRecordsCommandOutput }
        const accepted = [...(result.output.Records ?? [])]
        const merged = input.Records!.map((_, i) =>
          failing.has(i) ? { ErrorCode: "ProvisionedThroughputExceededException", ErrorMessage: "injected partial failure" } : accepted.shift()!
        )
        return { ...result, output: { ...result.output, Records: merged, FailedRecordCount: (result.output.FailedRecordCount ?? 0) + failing.size } } as typeof result
      }
      return next(args)
    },
    { step: "initialize", name: "injectKinesisFaults" }
  )
  return counts
}
