# syntax=docker/dockerfile:1
# The pipeline's container: the reader service (default command) and the on-demand tasks
# (replay, lake compaction), which override the command. Built by `sst deploy` (infra/reader.ts,
# infra/replay.ts). The CLI runs as prebuilt JavaScript (scripts/build.mjs --production), without
# tools/ (development tooling: local stack, generator, simulator, dashboard).

FROM node:22-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
# every dependency (esbuild is a devDependency); install scripts are not needed to build
RUN npm ci --ignore-scripts --no-audit --no-fund
COPY bin ./bin
COPY scripts/build.mjs ./scripts/build.mjs
COPY contracts ./contracts
COPY services ./services
RUN node scripts/build.mjs --production

FROM node:22-bookworm-slim AS deps
WORKDIR /app
COPY package.json package-lock.json ./
# production dependencies only; no install scripts are needed at run time
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund

FROM node:22-bookworm-slim
# tini as PID 1 forwards SIGTERM from ECS so the reader can finish its in-flight batch,
# checkpoint and acknowledge before it stops
RUN apt-get update \
  && apt-get install -y --no-install-recommends tini \
  && rm -rf /var/lib/apt/lists/*
# RDS certificate authorities, for sslmode=verify-full
ADD --chmod=644 https://truststore.pki.rds.amazonaws.com/global/global-bundle.pem /etc/ssl/certs/rds-global-bundle.pem
ENV NODE_ENV=production \
    NODE_EXTRA_CA_CERTS=/etc/ssl/certs/rds-global-bundle.pem \
    TOTES_METRICS=stdout
WORKDIR /app
COPY --from=deps /app/node_modules ./node_modules
COPY package.json ./
COPY bin ./bin
COPY --from=build /app/dist ./dist
# read at run time, beside the module that applies them
COPY services/warehouse/migrations ./services/warehouse/migrations
USER node
ENTRYPOINT ["/usr/bin/tini", "--"]
# The reader with a capped heap (its outbox is bounded; see services/cli/component-processes.ts NODE_FLAGS)
CMD ["node", "--max-old-space-size=160", "bin/totes.mjs", "run", "--components", "reader"]
