#!/usr/bin/env node
// Fails when files of the workspace import each other in a cycle (type-only imports count: they tie the
// files together just the same), or across a layer boundary LAYER_RULES forbids. Neither eslint-plugin-import nor dependency-cruiser is installed, so the
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
      // Workspace packages resolve through their node_modules links (isExternalLibraryImport): kept, by real path.
      if (!resolved) continue;
      const target = realpathSync(resolved.resolvedFileName);
      if (!target.includes('/node_modules/')) targets.add(target);
    }
    graph.set(from, targets);
  }
  return graph;
}

/**
 * Imports the layers forbid (docs/decisions, issue 15): `from` and `to` are path prefixes from the root;
 * `except` lists targets that stay allowed (a package's entry point).
 */
const LAYER_RULES = [
  {
    why: 'the API does not know the workers: services/server starts both (queues and keys: @snapcat/runtime)',
    from: 'services/api/',
    to: 'services/workers/',
  },
  {
    why: 'the read model reaches the application through its entry point only',
    from: 'libs/read-model/',
    to: 'libs/application/',
    except: ['libs/application/src/index.ts'],
  },
  {
    why: 'the runtime reaches the application through its entry point only',
    from: 'libs/runtime/',
    to: 'libs/application/',
    except: ['libs/application/src/index.ts'],
  },
];

/** Every import that breaks a layer rule, as `from -> to (why)`. */
function layerViolations(graph) {
  const found = [];
  for (const [from, targets] of graph) {
    const source = relative(root, from);
    for (const target of targets) {
      const to = relative(root, target);
      for (const rule of LAYER_RULES) {
        if (!source.startsWith(rule.from) || !to.startsWith(rule.to)) continue;
        if (rule.except?.includes(to)) continue;
        found.push(`${source} -> ${to} (${rule.why})`);
      }
    }
  }
  return found;
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

const graphs = configs.map(importGraph);
const found = graphs.flatMap(cycles);
const unique = [...new Map(found.map((c) => [c.join('\n'), c])).values()];
for (const component of unique) {
  console.error(`import cycle between:\n  ${component.map((f) => relative(root, f)).join('\n  ')}`);
}
const crossings = [...new Set(graphs.flatMap(layerViolations))];
for (const crossing of crossings) console.error(`import across layers: ${crossing}`);
if (unique.length > 0 || crossings.length > 0) process.exit(1);
console.log('no import cycles, no imports across layers');
