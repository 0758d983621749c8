# The snapcat service: `docker build -t snapcat .`, then, with SNAPCAT_SECRET_KEY exported (32+ characters,
# e.g. `openssl rand -base64 32`, the same key every time: it seals webhook secrets),
#   docker run -e SNAPCAT_SECRET_KEY -e SNAPCAT_TOKENS -e SNAPCAT_REDIS_URL=redis://<host>:6379 \
#     -v snapcat-data:/var/lib/snapcat -p 8080:8080 snapcat
# SNAPCAT_TOKENS (the lines `npx snapcat token create` prints) makes the API listen on every interface; without
# tokens it listens on the container's loopback only (authentication off), where -p cannot reach it.
# Compiled JavaScript (npm run build: dist/, docs/decisions/0013-compiled-build.md) and the production
# dependencies only, run by node as the unprivileged user `node`; the compilers better-sqlite3 needs stay in
# the build stages.
ARG NODE_IMAGE=node:20-bookworm-slim

# The package manifests alone (the root's, every workspace's, the lockfile, and the `prepare` script that
# `npm ci` runs: without the sources it builds nothing; `npm run build` bundles the web console), so that the
# `npm ci` layers below are rebuilt only when one of them changes, not on every source edit.
FROM ${NODE_IMAGE} AS manifests
WORKDIR /src
COPY . .
RUN mkdir /out && cp package-lock.json /out/ \
  && find . -name node_modules -prune -o -name package.json -exec cp --parents {} /out/ \; \
  && cp --parents tools/build/prepare.mjs /out/

# Compilers for node-gyp: better-sqlite3 is built from source when no prebuilt binary can be downloaded.
FROM ${NODE_IMAGE} AS toolchain
# hadolint ignore=DL3008
RUN apt-get update \
  && apt-get install -y --no-install-recommends python3 make g++ \
  && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY --from=manifests /out/ ./

# The full install and the compiled build.
FROM toolchain AS build
RUN npm ci --no-audit --no-fund
COPY . .
RUN npm run build

# The production dependencies, without what dist/ never loads (tools/build/slim-node-modules.sh: tsx, the
# workspace links, better-sqlite3's sources and object files).
FROM toolchain AS prod-deps
COPY tools/build/slim-node-modules.sh /usr/local/bin/
RUN npm ci --omit=dev --no-audit --no-fund && sh /usr/local/bin/slim-node-modules.sh /app

FROM ${NODE_IMAGE}
# tini as PID 1 forwards SIGTERM (docker stop) to node and reaps; node runs the service itself, with no
# wrapper process (npm, npx) that would swallow the signal. /var/lib/snapcat is the volume: the SQLite store
# and the local snapshot root; it is the only place the `node` user may write (the code is root's).
# hadolint ignore=DL3008
RUN apt-get update \
  && apt-get install -y --no-install-recommends tini \
  && rm -rf /var/lib/apt/lists/* \
  && install -d -o node -g node /var/lib/snapcat /var/lib/snapcat/snapshots
# Two glibc malloc arenas, not one per thread (decision 0029): as `npm start` runs the service.
ENV NODE_ENV=production \
  MALLOC_ARENA_MAX=2 \
  SNAPCAT_EVENT_STORE=sqlite:/var/lib/snapcat/snapcat.db \
  SNAPCAT_STORAGE_ROOTS=/var/lib/snapcat/snapshots
WORKDIR /app
COPY --from=prod-deps /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
USER node
VOLUME /var/lib/snapcat
EXPOSE 8080
# Ready: the event store answers and Redis is connected (503 otherwise). No curl in the slim image: node
# asks. A SNAPCAT_ROLE=workers process serves no HTTP: run it with --no-healthcheck.
HEALTHCHECK --interval=10s --timeout=5s --start-period=30s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:' + (process.env.SNAPCAT_OPS_PORT || process.env.SNAPCAT_PORT || 8080) + '/readyz', { signal: AbortSignal.timeout(4000) }).then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
ENTRYPOINT ["/usr/bin/tini", "--"]
CMD ["node", "--enable-source-maps", "dist/services/server/src/main.js"]
