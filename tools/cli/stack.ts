import { Console, Effect } from "effect"
import { Command, Flag } from "effect/cli"
import { readStackEnv, runningStackPid, serveStack, stackDown, stackUp } from "../local/stack-process.ts"
import { numberIn, textMatching } from "../../services/cli/arguments.ts"
import { task, untilSignal } from "../../services/cli/effects.ts"
import { COMMAND_DESCRIPTIONS } from "../../services/cli/command-descriptions.ts"

export const dirFlag = Flag.String("dir").pipe(
  textMatching(/\S/, "a folder path"),
  Flag.withDescription("Folder for the local stack's data, pid, log and stack.env"),
  Flag.withDefault(".totes")
)

const up = Command.make("up", { dir: dirFlag }, ({ dir }) =>
  Effect.gen(function* () {
    const result = yield* task(() => stackUp(dir))
    yield* Console.log(
      `${result.already ? "local stack already running" : "local stack started"} (pid ${result.pid})\nconfigure a shell with:  set -a; . ${result.envPath}; set +a`
    )
  })
).pipe(Command.withDescription("Start the local stack (PostgreSQL, Kinesis, DynamoDB, S3) in the background and write <dir>/stack.env"))

const ownerPid = Flag.Int("owner-pid").pipe(
  numberIn({ min: 1, max: 4_194_304, unit: "(a process id)" }),
  Flag.withDescription("Stop when this process is gone (what totes dev passes)"),
  Flag.optional
)

const serve = Command.make("serve", { dir: dirFlag, ownerPid }, ({ dir, ownerPid }) =>
  untilSignal((signal) => serveStack(dir, signal, ownerPid._tag === "Some" ? { ownerPid: ownerPid.value } : {}))
).pipe(
  Command.withDescription("Run the local stack in the foreground (what 'stack up' starts in the background)")
)

const down = Command.make("down", { dir: dirFlag }, ({ dir }) =>
  Effect.gen(function* () {
    const stopped = yield* task(() => stackDown(dir))
    yield* Console.log(stopped ? "local stack stopped and removed" : "no local stack was running; removed its folder")
  })
).pipe(Command.withDescription("Stop the local stack and remove what it made"))

const status = Command.make("status", { dir: dirFlag }, ({ dir }) =>
  Effect.gen(function* () {
    const pid = runningStackPid(dir)
    if (!pid) return yield* Console.log("local stack: not running")
    const env = yield* task(async () => readStackEnv(dir))
    yield* Console.log(`local stack: running (pid ${pid})`)
    for (const [key, value] of Object.entries(env)) if (!key.startsWith("AWS_SECRET")) yield* Console.log(`  ${key}=${value.replace(/:[^:@/]+@/, ":***@")}`)
  })
).pipe(Command.withDescription("Show whether the local stack runs, and its endpoints"))

export const stackCommand = Command.make("stack").pipe(
  Command.withDescription(COMMAND_DESCRIPTIONS.stack),
  Command.withSubcommands([up, serve, down, status])
)
