#!/bin/sh
# `npm start` and `npm run start:*`: `exec sh tools/build/run.sh <entry point under dist/>`. tools/build/start.mjs
# makes sure the compiled build is there and current (building it when not; its failure stops here, with its
# exit code); then this shell replaces itself with node on the entry point, so npm -> node has nothing between
# and SIGTERM/SIGINT reach the service. Production mode and two malloc arenas (decision 0029) unless the
# environment says otherwise, as in the Dockerfile. <dist> is SNAPCAT_DIST_DIR or dist/.
node "$(dirname "$0")/start.mjs" || exit $?
NODE_ENV="${NODE_ENV:-production}" MALLOC_ARENA_MAX="${MALLOC_ARENA_MAX:-2}" \
  exec node --enable-source-maps "${SNAPCAT_DIST_DIR:-dist}/$1"
