#!/usr/bin/env node
// Fails when a function in the sources of a library or service (libs/*/src, services/*/src; tests and bench
// are exempt) spans more than MAX_LINES lines, counted from its first line to its last: such a function does
// several things, and should be split into named pieces by concern.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import ts from 'typescript';

const MAX_LINES = 80;
const root = resolve(dirname(new URL(import.meta.url).pathname), '..');

/** Every .ts/.tsx file under `dir` (node_modules and build output left out). */
function sourceFiles(dir) {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    if (name === 'node_modules' || name === 'dist') return [];
    if (statSync(path).isDirectory()) return sourceFiles(path);
    return /\.tsx?$/.test(name) && !name.endsWith('.d.ts') ? [path] : [];
  });
}

/** A readable name for a function node: its own, or the variable, property or method it is assigned to. */
function nameOf(node) {
  if (node.name) return node.name.getText();
  if (ts.isConstructorDeclaration(node)) return 'constructor';
  const parent = node.parent;
  if (parent && (ts.isVariableDeclaration(parent) || ts.isPropertyAssignment(parent))) {
    return parent.name.getText();
  }
  return '(anonymous)';
}

/** The functions of one file longer than MAX_LINES, as `file:line name (n lines)`. */
function longFunctions(file) {
  const text = readFileSync(file, 'utf8');
  const source = ts.createSourceFile(file, text, ts.ScriptTarget.Latest, true);
  const found = [];
  const visit = (node) => {
    if (ts.isFunctionLike(node) && node.body) {
      const first = source.getLineAndCharacterOfPosition(node.getStart(source)).line;
      const last = source.getLineAndCharacterOfPosition(node.getEnd()).line;
      const lines = last - first + 1;
      if (lines > MAX_LINES) {
        found.push(`${relative(root, file)}:${first + 1} ${nameOf(node)} (${lines} lines)`);
      }
    }
    ts.forEachChild(node, visit);
  };
  visit(source);
  return found;
}

const packages = ['libs', 'services'].flatMap((group) =>
  readdirSync(join(root, group)).map((name) => `${group}/${name}`),
);
const found = packages
  .map((pkg) => join(root, pkg, 'src'))
  .filter((dir) => statSync(dir, { throwIfNoEntry: false })?.isDirectory())
  .flatMap((dir) => sourceFiles(dir).flatMap(longFunctions));
for (const line of found) console.error(`function over ${MAX_LINES} lines: ${line}`);
if (found.length > 0) process.exit(1);
console.log(`no function over ${MAX_LINES} lines in ${packages.length} packages`);
