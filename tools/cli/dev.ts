import { Command, Flag } from "effect/cli"
import { runDev } from "../dev/dev.ts"
import { portFlag } from "./console.ts"
import { numberIn } from "../../services/cli/arguments.ts"
import { untilSignal } from "../../services/cli/effects.ts"
import { dirFlag } from "./stack.ts"
import { COMMAND_DESCRIPTIONS } from "../../services/cli/command-descriptions.ts"

export const devCommand = Command.make(
  "dev",
  {
    dir: dirFlag,
    seed: Flag.String("seed").pipe(Flag.withDescription("Seed of the generated totesys and of the simulated workload"), Flag.withDefault("1")),
    rate: Flag.Finite("rate").pipe(
      numberIn({ min: 0, exclusiveMin: true, max: 1_000, unit: "transactions per second" }),
      Flag.withDescription("Simulated source transactions per second"),
      Flag.withDefault(5)
    ),
    days: Flag.Int("days").pipe(numberIn({ min: 1, max: 3_650, unit: "days" }), Flag.withDescription("Days of history to generate"), Flag.withDefault(60)),
    port: portFlag,
    plain: Flag.Boolean("plain").pipe(Flag.withDescription("Print status lines instead of redrawing a dashboard (default when not a terminal)"), Flag.withDefault(false))
  },
  ({ dir, seed, rate, days, port, plain }) =>
    untilSignal((signal) => runDev({ dir, seed, rate, days, port, signal, plain: plain || !process.stdout.isTTY }))
).pipe(Command.withDescription(COMMAND_DESCRIPTIONS.dev))
