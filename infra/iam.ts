/**
 * Glue between the pure statements of policies.ts and SST/Pulumi inputs.
 */
import type { LakeArns, Statement } from "./policies.ts"

type Arn = $util.Input<string>

/** SST `permissions` entries (for sst.aws.Function, Service, Task) from pure statements. */
export const toPermissions = (statements: ReadonlyArray<Statement<Arn>>) =>
  statements.map((s) => ({
    actions: [...s.actions],
    resources: [...s.resources],
    ...(s.conditions ? { conditions: s.conditions.map((c) => ({ test: c.test, variable: c.variable, values: [...c.values] })) } : {})
  }))

/** The lake's bucket ARN and object ARN patterns, as Pulumi outputs. */
export const lakeArns = (bucketArn: $util.Output<string>): LakeArns<$util.Output<string>> => ({
  bucket: bucketArn,
  objects: (prefix) => $interpolate`${bucketArn}/${prefix}*`
})

/** Same, for code that runs inside an `apply` with resolved strings. */
export const lakeArnStrings = (bucketArn: string): LakeArns<string> => ({
  bucket: bucketArn,
  objects: (prefix) => `${bucketArn}/${prefix}*`
})

/** Resource options for stateful resources: production ones cannot be deleted by a deploy. */
export const statefulOptions = (production: boolean): $util.ComponentResourceOptions =>
  production ? { protect: true, retainOnDelete: true } : {}

/** A physical name `totes-<stage>-<suffix>` cut to `max` characters. */
export const physicalName = (suffix: string, max = 64): string => `totes-${$app.stage}-${suffix}`.slice(0, max)
