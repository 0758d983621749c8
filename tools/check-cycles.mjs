#!/usr/bin/env node
// Fails when files of the workspace import each other in a cycle (type-only imports count: they tie the
// files together just the same). Neither eslint-plugin-import nor dependency-cruiser is installed, so the
// imports are resolved with TypeScript's own module resolution, from the workspace's tsconfig.json.
import { readFileSync, realpathSync } from 'node:fs';
import { dirname, relative, resolve } from 'node:path';
import ts from 'typescript';

const root = resolve(dirname(new URL(import.meta.url).pathname), '..');
const configs = [resolve(root, 'tsconfig.json'), resolve(root, 'services/console/tsconfig.json')];

/** Every workspace file each file imports, resolved as tsc resolves it (packages to their real paths). */
function importGraph(configPath) {
  const { config } = ts.readConfigFile(configPath, ts.sys.readFile);
  const parsed = ts.parseJsonConfigFileContent(config, ts.sys, dirname(configPath));
  const graph = new Map();
  for (const file of parsed.fileNames) {
    const from = realpathSync(file);
    const imports = ts.preProcessFile(readFileSync(file, 'utf8'), true, true).importedFiles;
    const targets = new Set();
    for (const { fileName } of imports) {
      const resolved = ts.resolveModuleName(fileName, file, parsed.options, ts.sys).resolvedModule;
      if (!resolved || resolved.isExternalLibraryImport) continue;
      const target = realpathSync(resolved.resolvedFileName);
      if (!target.includes('/node_modules/')) targets.add(target);
    }
    graph.set(from, targets);
  }
  return graph;
}

/** Strongly connected components of more than one file, or a file importing itself (Tarjan). */
function cycles(graph) {
  const index = new Map();
  const low = new Map();
  const stack = [];
  const onStack = new Set();
  const found = [];
  const visit = (v) => {
    index.set(v, index.size);
    low.set(v, index.get(v));
    stack.push(v);
    onStack.add(v);
    for (const w of graph.get(v) ?? []) {
      if (!index.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v), low.get(w)));
      } else if (onStack.has(w)) low.set(v, Math.min(low.get(v), index.get(w)));
    }
    if (low.get(v) !== index.get(v)) return;
    const component = [];
    let w;
    do {
      w = stack.pop();
      onStack.delete(w);
      component.push(w);
    } while (w !== v);
    if (component.length > 1 || graph.get(v)?.has(v)) found.push(component.sort());
  };
  for (const v of graph.keys()) if (!index.has(v)) visit(v);
  return found;
}

const found = configs.flatMap((config) => cycles(importGraph(config)));
const unique = [...new Map(found.map((c) => [c.join('\n'), c])).values()];
for (const component of unique) {
  console.error(`import cycle between:\n  ${component.map((f) => relative(root, f)).join('\n  ')}`);
}
if (unique.length > 0) process.exit(1);
console.log('no import cycles');
