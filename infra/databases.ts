/**
 * The source (totesys, logical replication on) and the warehouse: either RDS Postgres managed
 * here (sst.aws.Postgres in the VPC's private subnets) or existing databases whose URLs are
 * the sst secrets SourceDatabaseUrl / WarehouseDatabaseUrl.
 *
 * Either way each URL is stored in a Secrets Manager secret: ECS tasks receive it through the
 * task definition's `secrets`, the consumer Lambda reads it at cold start (never in plain
 * environment), and the URL carries the stage's sslmode (verify-full in production, with
 * rds.force_ssl=1 on managed instances).
 */
import { statefulOptions } from "./iam.ts"
import { databaseUrl, withSslMode, type DatabaseTls, type StageConfig } from "./stage-config.ts"

export interface DatabaseOutputs {
  /** Secrets Manager secret holding the URL with its password (ECS `ssm`; the Lambda reads it at cold start). */
  readonly secret: aws.secretsmanager.Secret
  /** Linkable without credentials: host/port/database when managed, and the secret ARN. */
  readonly link: sst.Linkable<Record<string, any>>
  /** The RDS instance identifier when managed here. */
  readonly instanceId?: $util.Output<string>
}

const storeUrl = (name: string, url: $util.Output<string>, production: boolean) => {
  const secret = new aws.secretsmanager.Secret(`${name}UrlSecret`, {
    description: `totes-cdc ${$app.stage}: ${name} database URL`,
    recoveryWindowInDays: production ? 7 : 0
  })
  new aws.secretsmanager.SecretVersion(`${name}UrlSecretVersion`, { secretId: secret.id, secretString: url })
  return secret
}

const urlOf = (db: sst.aws.Postgres, tls: DatabaseTls) =>
  $util.secret(
    $resolve({ username: db.username, password: db.password, host: db.host, port: db.port, database: db.database }).apply((parts) => databaseUrl(parts, tls))
  )

const managed = (
  name: "Source" | "Warehouse",
  settings: { instance: string; storage: `${number} GB`; multiAz: boolean; version: string },
  parameters: ReadonlyArray<{ name: string; value: string; applyMethod?: string }>,
  vpc: sst.aws.Vpc,
  config: StageConfig
) =>
  new sst.aws.Postgres(
    name,
    {
      vpc,
      version: settings.version,
      instance: settings.instance,
      storage: settings.storage,
      multiAz: settings.multiAz,
      database: name === "Source" ? "totesys" : "warehouse",
      transform: {
        parameterGroup: (args) => {
          args.parameters = parameters.map((p) => ({ ...p }))
        },
        instance: (args) => {
          args.deletionProtection = config.production
          args.skipFinalSnapshot = !config.production
          args.finalSnapshotIdentifier = config.production ? `totes-${$app.stage}-${name.toLowerCase()}-final` : undefined
          args.backupRetentionPeriod = config.production ? 14 : 1
          args.copyTagsToSnapshot = true
        }
      }
    },
    statefulOptions(config.production)
  )

export const databases = (config: StageConfig, deps: { readonly vpc: sst.aws.Vpc }): { source: DatabaseOutputs; warehouse: DatabaseOutputs } => {
  const { production } = config
  const settings = config.databases
  if (settings.mode === "existing") {
    const existing = (name: "Source" | "Warehouse"): DatabaseOutputs => {
      const given = new sst.Secret(`${name}DatabaseUrl`)
      const url = $util.secret(given.value.apply((value) => withSslMode(value, settings.tls)))
      const secret = storeUrl(name, url, production)
      return { secret, link: new sst.Linkable(`${name}Database`, { properties: { secretArn: secret.arn } }) }
    }
    return { source: existing("Source"), warehouse: existing("Warehouse") }
  }
  const forceSsl = { name: "rds.force_ssl", value: settings.tls === "disable" ? "0" : "1" }
  const source = managed(
    "Source",
    settings.source,
    [
      forceSsl,
      { name: "rds.logical_replication", value: "1", applyMethod: "pending-reboot" },
      // bound the WAL a stalled slot can pin (the slot is invalidated beyond it; the reader
      // then refuses to run and asks for a lake repair + resnapshot instead of filling the disk)
      { name: "max_slot_wal_keep_size", value: String(settings.source.maxSlotWalKeepSizeMb) },
      { name: "wal_sender_timeout", value: "60000" }
    ],
    deps.vpc,
    config
  )
  const warehouse = managed(
    "Warehouse",
    settings.warehouse,
    [forceSsl, { name: "rds.logical_replication", value: "0", applyMethod: "pending-reboot" }],
    deps.vpc,
    config
  )
  const outputs = (name: "Source" | "Warehouse", db: sst.aws.Postgres): DatabaseOutputs => {
    const url = urlOf(db, settings.tls)
    const secret = storeUrl(name, url, production)
    return {
      secret,
      link: new sst.Linkable(`${name}Database`, { properties: { host: db.host, port: db.port, database: db.database, secretArn: secret.arn } }),
      instanceId: db.id
    }
  }
  return { source: outputs("Source", source), warehouse: outputs("Warehouse", warehouse) }
}
