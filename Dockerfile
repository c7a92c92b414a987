# syntax=docker/dockerfile:1.7
# swipe-authorizer: one image for every command.
#   docker run IMAGE serve | persist | hydrate | reconcile | migrate
# Stages: deps (production node_modules only) -> build (full install, lua + tsc)
# -> runtime (slim, non-root, tini as PID 1, read-only root FS friendly).
# The uWebSockets.js native binary needs glibc: keep a Debian (bookworm) base,
# never alpine.
ARG NODE_IMAGE=node:20-bookworm-slim

# ---------------------------------------------------------------- deps
FROM ${NODE_IMAGE} AS deps
WORKDIR /app
ENV NODE_ENV=production \
    npm_config_fund=false \
    npm_config_audit=false \
    npm_config_update_notifier=false
COPY package.json package-lock.json ./
# Production dependencies only; then keep just the uWebSockets.js binary this
# platform and Node ABI load (the package ships ~18 of them, >100 MB).
RUN --mount=type=cache,target=/root/.npm \
    npm ci --omit=dev --no-audit --no-fund \
 && node -e "const fs=require('fs'),p='node_modules/uWebSockets.js/binaries';\
if(fs.existsSync(p)){const keep='uws_'+process.platform+'_'+process.arch+'_'+process.versions.modules+'.node';\
if(!fs.existsSync(p+'/'+keep))throw new Error('uWebSockets.js has no binary '+keep);\
for(const f of fs.readdirSync(p))if(f!==keep)fs.rmSync(p+'/'+f);}"

# ---------------------------------------------------------------- build
FROM ${NODE_IMAGE} AS build
WORKDIR /app
ENV npm_config_fund=false npm_config_audit=false npm_config_update_notifier=false
COPY package.json package-lock.json ./
RUN --mount=type=cache,target=/root/.npm npm ci --no-audit --no-fund
# `npm run build` = node scripts/build-lua.mjs (lua/ -> src/redis/scripts.generated.ts) + tsc.
COPY tsconfig.json ./
COPY scripts ./scripts
COPY lua ./lua
COPY src ./src
RUN npm run build

# ---------------------------------------------------------------- runtime
FROM ${NODE_IMAGE} AS runtime
ARG VERSION=dev
ARG REVISION=unknown
LABEL org.opencontainers.image.title="swipe-authorizer" \
      org.opencontainers.image.description="Approves or declines company-card swipes (api, persister, hydrate, reconcile, migrate)" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}"
# tini as PID 1. The fail-open journal lives on a mounted volume (emptyDir in
# Kubernetes); the directory exists in the image so plain `docker run` works too.
RUN apt-get update \
 && apt-get install -y --no-install-recommends tini \
 && rm -rf /var/lib/apt/lists/* \
 && mkdir -p /var/lib/swipe-authorizer \
 && chown 1000:1000 /var/lib/swipe-authorizer
WORKDIR /app
ENV NODE_ENV=production \
    PORT=8080 \
    METRICS_PORT=9464 \
    FAILOPEN_JOURNAL_PATH=/var/lib/swipe-authorizer/failopen.jsonl
# Code and dependencies stay owned by root and read-only for the app user.
COPY --from=deps /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY package.json ./
VOLUME ["/var/lib/swipe-authorizer"]
# 1000 = `node` in the official image; numeric so runAsNonRoot can verify it.
USER 1000:1000
EXPOSE 8080 9464
# The api answers /healthz on PORT, the persister on METRICS_PORT: try both.
# (Kubernetes ignores HEALTHCHECK and uses the chart's probes instead.)
HEALTHCHECK --interval=10s --timeout=3s --start-period=15s --retries=3 \
  CMD ["node", "-e", "const g=(p)=>fetch('http://127.0.0.1:'+p+'/healthz',{signal:AbortSignal.timeout(1500)}).then((r)=>{if(!r.ok)throw 0;});g(process.env.PORT||8080).catch(()=>g(process.env.METRICS_PORT||9464)).then(()=>process.exit(0),()=>process.exit(1));"]
# tini is PID 1: it reaps zombies and forwards SIGTERM to node, which then
# drains in-flight requests and flushes the journal within SHUTDOWN_GRACE_MS.
ENTRYPOINT ["/usr/bin/tini", "--", "node", "dist/cli.js"]
CMD ["serve"]
