/** Every shard of a stream, open and closed. The SDK has no paginator for ListShards: NextToken is followed here, for every caller. */
import { ListShardsCommand, type KinesisClient, type Shard } from "@aws-sdk/client-kinesis"

export const listShards = async (client: KinesisClient, stream: string): Promise<ReadonlyArray<Shard>> => {
  const shards: Array<Shard> = []
  let token: string | undefined
  do {
    // A request with NextToken must not name the stream.
    const page = await client.send(new ListShardsCommand(token ? { NextToken: token } : { StreamName: stream }))
    shards.push(...(page.Shards ?? []))
    token = page.NextToken
  } while (token)
  return shards
}

/** A shard a reshard has closed has an ending sequence number; it takes no new records. */
export const isOpenShard = (shard: Shard): boolean => !shard.SequenceNumberRange?.EndingSequenceNumber
