/**
 * The lake as a dataset: a Glue Data Catalog database with one table per source table over
 * parquet/ and one over raw/ (lake-catalog-spec.ts), an Athena workgroup whose results go to its
 * own prefix of a separate, expiring results bucket (the lake bucket is write-once with Object
 * Lock: no place for query scratch files), the example named queries
 * (services/lake/queries.ts), and a managed policy to attach to whoever queries
 * (policies.ts analystStatements).
 */
import { EXAMPLE_QUERIES } from "../services/lake/queries.ts"
import { lakeArnStrings, physicalName } from "./iam.ts"
import { ATHENA_RESULTS_PREFIX, lakeDatabaseName, lakeTableSpecs, workgroupConfiguration } from "./lake-catalog-spec.ts"
import { analystStatements, policyDocument } from "./policies.ts"
import type { StageConfig } from "./stage-config.ts"

const pascal = (name: string) => name.replace(/(^|[-_])([a-z])/g, (_, __, letter: string) => letter.toUpperCase())

export const lakeCatalog = (config: StageConfig, deps: { readonly bucket: sst.aws.Bucket }) => {
  const results = new sst.aws.Bucket("QueryResults", {
    enforceHttps: true,
    transform: {
      bucket: (args) => {
        args.forceDestroy = !config.production
      }
    }
  })
  new aws.s3.BucketLifecycleConfiguration("QueryResultsLifecycle", {
    bucket: results.name,
    rules: [
      {
        id: "expire-query-results",
        status: "Enabled",
        filter: { prefix: ATHENA_RESULTS_PREFIX },
        expiration: { days: config.analytics.resultsExpireAfterDays },
        abortIncompleteMultipartUpload: { daysAfterInitiation: 1 }
      }
    ]
  })

  const database = new aws.glue.CatalogDatabase("LakeDatabase", {
    name: lakeDatabaseName($app.stage),
    description: `totes-cdc lake of stage ${$app.stage}: every committed change of totesys, per source table (Parquet) and as raw stream records`
  })
  const specs = lakeTableSpecs({ location: (prefix) => $interpolate`s3://${deps.bucket.name}/${prefix}`, firstDate: config.analytics.firstDate })
  const tables = specs.map(
    (spec) =>
      new aws.glue.CatalogTable(`LakeTable${pascal(spec.name)}`, {
        name: spec.name,
        databaseName: database.name,
        description: spec.description,
        tableType: "EXTERNAL_TABLE",
        parameters: { ...spec.parameters },
        partitionKeys: spec.partitionKeys.map((key) => ({ ...key })),
        storageDescriptor: {
          location: spec.location,
          inputFormat: spec.inputFormat,
          outputFormat: spec.outputFormat,
          columns: spec.columns.map((column) => ({ ...column })),
          serDeInfo: { serializationLibrary: spec.serializationLibrary, parameters: { ...spec.serdeParameters } }
        }
      })
  )

  const workgroup = new aws.athena.Workgroup("LakeWorkgroup", {
    name: physicalName("lake"),
    description: "Queries over the totes-cdc lake (Glue database of the same stage)",
    forceDestroy: !config.production,
    configuration: workgroupConfiguration(config.analytics, $interpolate`s3://${results.name}/${ATHENA_RESULTS_PREFIX}`)
  })
  const queries = EXAMPLE_QUERIES.map(
    (query) =>
      new aws.athena.NamedQuery(`LakeQuery${pascal(query.id)}`, {
        name: `totes-${query.id}`,
        description: `${query.title}: ${query.description}`.slice(0, 1024),
        database: database.name,
        workgroup: workgroup.name,
        query: query.sql
      })
  )

  const account = aws.getCallerIdentityOutput({})
  const region = aws.getRegionOutput()
  const partition = aws.getPartitionOutput()
  const analystPolicy = new aws.iam.Policy("LakeAnalystPolicy", {
    name: physicalName("lake-analyst", 128),
    description: "Query the totes-cdc lake with Athena (its workgroup, Glue database and lake prefixes only)",
    policy: $resolve({
      lake: deps.bucket.arn,
      results: results.arn,
      workgroup: workgroup.arn,
      database: database.name,
      account: account.accountId,
      region: region.region,
      partition: partition.partition
    }).apply(({ lake, results, workgroup, database, account, region, partition }) => {
      const glue = `arn:${partition}:glue:${region}:${account}`
      return policyDocument(
        analystStatements({
          lake: lakeArnStrings(lake),
          workgroup,
          results: { bucket: results, objects: `${results}/${ATHENA_RESULTS_PREFIX}*`, prefix: ATHENA_RESULTS_PREFIX },
          glue: { catalog: `${glue}:catalog`, database: `${glue}:database/${database}`, tables: `${glue}:table/${database}/*` }
        })
      )
    })
  })
  return { database, tables, workgroup, queries, results, analystPolicy }
}
