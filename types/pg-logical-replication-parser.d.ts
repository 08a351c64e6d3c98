declare module "pg-logical-replication/dist/output-plugins/pgoutput/pgoutput-parser.js" {
  export class PgoutputParser {
    parse(buf: Buffer): unknown
  }
}
declare module "kinesalite"
declare module "dynalite"
