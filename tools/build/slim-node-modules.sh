#!/bin/sh
# Removes from a production install (`npm ci --omit=dev`) what the compiled build (dist/) never loads; the
# Dockerfile runs it in its prod-deps stage. Usage: tools/build/slim-node-modules.sh [dir holding node_modules]
set -eu
cd "${1:-.}/node_modules"
# The workspace links: dist/ inlines the libraries, and the image has no libs/ or services/ to point at.
rm -rf @snapcat
# tsx and the esbuild it runs stay a dependency for `npm run dev` (the sources through tsx); dist/ never loads them.
rm -rf tsx esbuild @esbuild .bin/tsx .bin/esbuild
# better-sqlite3 built from source: keep the addon, drop SQLite's sources and the compiler's objects.
rm -rf better-sqlite3/deps better-sqlite3/src
find better-sqlite3/build -mindepth 1 -maxdepth 1 ! -name Release -exec rm -rf {} +
find better-sqlite3/build/Release -mindepth 1 -maxdepth 1 ! -name better_sqlite3.node -exec rm -rf {} +
