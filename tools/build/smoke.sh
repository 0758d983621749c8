#!/usr/bin/env bash
# Smoke check of the compiled build (run `npm run build` first), with plain node and no tsx: the CLI answers
# --help; the API starts on a free port (in-memory store, Redis at SNAPCAT_REDIS_URL or 127.0.0.1:6379 under a
# key prefix of its own, deleted afterwards), /readyz answers 200, and SIGTERM stops it with exit 0.
set -euo pipefail
cd "$(dirname "$0")/../.."
export NODE_OPTIONS=

node dist/services/cli/src/main.js --help | grep -q '^usage: ' || { echo "smoke: the CLI did not answer --help" >&2; exit 1; }

prefix="snapcat-smoke-$$"
redis_url="${SNAPCAT_REDIS_URL:-redis://127.0.0.1:6379}"
log=$(mktemp)
roots="${TMPDIR:-/tmp}/$prefix"
cleanup() {
  if [[ -n "${pid:-}" ]]; then kill -KILL "$pid" 2>/dev/null || true; fi
  # shellcheck disable=SC2016 # JavaScript, not shell
  SMOKE_PREFIX="$prefix" SMOKE_REDIS="$redis_url" node -e '
    const Redis = require("ioredis");
    const redis = new Redis(process.env.SMOKE_REDIS, { maxRetriesPerRequest: 1 });
    (async () => {
      let cursor = "0";
      do {
        const [next, keys] = await redis.scan(cursor, "MATCH", `${process.env.SMOKE_PREFIX}*`, "COUNT", 1000);
        if (keys.length) await redis.del(...keys);
        cursor = next;
      } while (cursor !== "0");
    })().catch(() => {}).finally(() => redis.disconnect());' || true
  rm -rf "$log" "$roots"
}
trap cleanup EXIT

SNAPCAT_PORT=0 SNAPCAT_HOST=127.0.0.1 SNAPCAT_EVENT_STORE=memory: SNAPCAT_REDIS_URL="$redis_url" \
  SNAPCAT_QUEUE_PREFIX="$prefix" SNAPCAT_STORAGE_ROOTS="$roots" \
  node --enable-source-maps dist/services/server/src/main.js >"$log" 2>&1 &
pid=$!
port=
for _ in $(seq 1 300); do
  port=$(sed -n 's/.*"port":\([0-9]*\).*"msg":"listening".*/\1/p; s/.*"msg":"listening".*"port":\([0-9]*\).*/\1/p' "$log" | head -1)
  [[ -n "$port" ]] && break
  kill -0 "$pid" 2>/dev/null || { echo "smoke: the compiled API exited:" >&2; cat "$log" >&2; exit 1; }
  sleep 0.1
done
[[ -n "$port" ]] || { echo "smoke: the compiled API did not start within 30 s:" >&2; cat "$log" >&2; exit 1; }
# shellcheck disable=SC2016 # JavaScript, not shell
SMOKE_URL="http://127.0.0.1:$port/readyz" node -e '
  (async () => {
    for (let i = 0; i < 100; i++) {
      const res = await fetch(process.env.SMOKE_URL).catch(() => undefined);
      if (res?.status === 200) return;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    throw new Error("/readyz did not answer 200 within 10 s");
  })().catch((error) => { console.error(`smoke: ${error.message}`); process.exit(1); });' || { cat "$log" >&2; exit 1; }
# The web console from dist/: its page, and the script the page names.
# shellcheck disable=SC2016 # JavaScript, not shell
SMOKE_URL="http://127.0.0.1:$port" node -e '
  (async () => {
    const page = await fetch(`${process.env.SMOKE_URL}/`);
    const html = await page.text();
    const script = /src="(\/assets\/[^"]+\.js)"/.exec(html)?.[1];
    if (page.status !== 200 || !script) throw new Error(`/ answered ${page.status} without a script`);
    const asset = await fetch(`${process.env.SMOKE_URL}${script}`);
    if (asset.status !== 200) throw new Error(`${script} answered ${asset.status}`);
  })().catch((error) => { console.error(`smoke: console: ${error.message}`); process.exit(1); });' || exit 1
kill -TERM "$pid"
status=0
wait "$pid" || status=$?
pid=
[[ "$status" == 0 ]] || { echo "smoke: SIGTERM exited with $status:" >&2; cat "$log" >&2; exit 1; }
echo "smoke: compiled CLI --help, API /readyz 200 and the console on port $port, SIGTERM exit 0"
