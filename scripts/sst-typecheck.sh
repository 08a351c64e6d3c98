#!/usr/bin/env bash
# Offline type-check of the SST app (sst.config.ts + infra/), no AWS access needed.
#
#   scripts/sst-typecheck.sh                 sst install (writes .sst/platform: config.d.ts,
#                                            @pulumi/aws types), then tsc -p infra/tsconfig.json
#   scripts/sst-typecheck.sh --prove-fails   shows the check can fail: type-checks a copy of the
#                                            app with one deliberate error in a real infra file
#                                            and an injected file with one per line (SST Bucket,
#                                            Glue CatalogTable, Athena Workgroup and NamedQuery),
#                                            and succeeds only if tsc reports exactly those errors
#   --skip-install                           reuse an existing .sst/platform
#
# The root tsconfig.json excludes sst.config.ts and infra/ (they need SST's generated globals);
# the pure modules under infra/ are also checked by the root config through their unit tests.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

PROVE_FAILS=false
INSTALL=true
for arg in "$@"; do
  case "$arg" in
    --prove-fails) PROVE_FAILS=true ;;
    --skip-install) INSTALL=false ;;
    -h|--help) sed -n '2,14p' "$0"; exit 0 ;;
    *) echo "unknown argument: $arg" >&2; exit 2 ;;
  esac
done

# Offline: no Pulumi download, no telemetry, no EC2 metadata probes for credentials.
export SST_SKIP_DEPENDENCY_CHECK=true
export SST_TELEMETRY_DISABLED=1
export SST_BUN_PATH="$ROOT/node_modules/.bin/bun"
export SST_STAGE="${SST_STAGE:-dev}"
export AWS_EC2_METADATA_DISABLED=true

SST="$ROOT/node_modules/.bin/sst"
TSC="$ROOT/node_modules/.bin/tsc"
for bin in "$SST" "$TSC" "$SST_BUN_PATH"; do
  [[ -x "$bin" ]] || { echo "missing $bin: run npm install" >&2; exit 2; }
done

started=$(date +%s)
elapsed() { echo "$(( $(date +%s) - started ))s"; }

if [[ "$INSTALL" == true || ! -f .sst/platform/config.d.ts ]]; then
  echo "sst install (stage $SST_STAGE)…"
  "$SST" install >/dev/null
fi
[[ -f .sst/platform/config.d.ts ]] || { echo "sst install did not write .sst/platform/config.d.ts" >&2; exit 1; }

if [[ "$PROVE_FAILS" == false ]]; then
  echo "tsc --noEmit -p infra/tsconfig.json…"
  if "$TSC" --noEmit -p infra/tsconfig.json; then
    echo "sst type-check passed ($(elapsed))"
  else
    echo "sst type-check FAILED ($(elapsed))" >&2
    exit 1
  fi
  exit 0
fi

# --prove-fails: a copy of the app (sst.config.ts, infra/) next to links to the real .sst,
# contracts and services, with two deliberate errors.
WORK="$(mktemp -d "${TMPDIR:-/tmp}/sst-typecheck-prove.XXXXXX")"
trap 'rm -rf "$WORK"' EXIT
cp sst.config.ts "$WORK/"
cp -R infra "$WORK/infra"
for dir in .sst contracts services node_modules; do ln -s "$ROOT/$dir" "$WORK/$dir"; done

# 1. a real file made wrong: an invalid Lambda runtime in the consumer
MUTATED="$WORK/infra/consumer.ts"
grep -q 'runtime: "nodejs22.x"' "$MUTATED" || { echo "prove-fails: mutation target not found in infra/consumer.ts" >&2; exit 1; }
sed -i.bak 's/runtime: "nodejs22.x"/runtime: "nodejs22.y"/' "$MUTATED" && rm -f "$MUTATED.bak"
# 2. an injected file: a component argument of the wrong type
# (one per line: an SST component and raw Pulumi AWS v7 resources the app uses, Glue and Athena)
cat > "$WORK/infra/prove-fails.ts" <<'TS'
export const proveFails = () => [
  new sst.aws.Bucket("ProveFails", { versioning: "yes" }),
  new aws.glue.CatalogTable("ProveFailsTable", { databaseName: "d", storageDescriptor: { columns: [{ name: "c", type: 1 }] } }),
  new aws.athena.Workgroup("ProveFailsWorkgroup", { configuration: { bytesScannedCutoffPerQuery: "10 MiB" } }),
  new aws.athena.NamedQuery("ProveFailsQuery", { database: "d" })
]
TS
INJECTED_LINES="2 3 4 5"

echo "tsc on a copy with deliberate errors (must fail)…"
set +e
OUTPUT="$(cd "$WORK" && "$TSC" --noEmit -p infra/tsconfig.json 2>&1)"
STATUS=$?
set -e
ERRORS="$(printf '%s\n' "$OUTPUT" | grep -E '^[^ ].*\([0-9]+,[0-9]+\): error TS' || true)"
UNEXPECTED="$(printf '%s\n' "$ERRORS" | grep -vE '^infra/(consumer|prove-fails)\.ts\(' | grep -v '^$' || true)"

fail() { echo "prove-fails FAILED: $1 ($(elapsed))" >&2; printf '%s\n' "$OUTPUT" >&2; exit 1; }
[[ $STATUS -ne 0 ]] || fail "tsc accepted code with deliberate type errors"
printf '%s\n' "$ERRORS" | grep -qE '^infra/consumer\.ts\([0-9]+,[0-9]+\): error TS' || fail "the invalid runtime in infra/consumer.ts was not reported"
for line in $INJECTED_LINES; do
  printf '%s\n' "$ERRORS" | grep -qE "^infra/prove-fails\.ts\($line,[0-9]+\): error TS" || fail "the injected error on line $line of infra/prove-fails.ts was not reported"
done
[[ -z "$UNEXPECTED" ]] || fail "errors outside the deliberate ones: the real app does not type-check"
printf '%s\n' "$ERRORS"
echo "prove-fails passed: tsc rejected exactly the deliberate errors ($(elapsed))"
