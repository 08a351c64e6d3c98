# syntax=docker/dockerfile:1
# The pipeline's container: the reader service (default command) and the on-demand tasks
# (replay, lake compaction), which override the command. Built by `sst deploy` (infra/reader.ts,
# infra/replay.ts); TypeScript runs through tsx, as locally.

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
COPY package.json tsconfig.json ./
COPY bin ./bin
COPY contracts ./contracts
COPY services ./services
# development tooling is still imported by the CLI at start (to be loaded on demand, then dropped here)
COPY tools ./tools
USER node
ENTRYPOINT ["/usr/bin/tini", "--"]
CMD ["node", "bin/totes.mjs", "run", "--components", "reader"]
