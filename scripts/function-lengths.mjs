#!/usr/bin/env node
// Lists every function, method and arrow whose body is longer than a limit (default 70 lines),
// with its file and length, longest first. Exits 1 when one under src/ is over the limit and not
// in ALLOWED_LONG_FUNCTIONS; functions under test/ are listed but do not fail the check.
// Usage: node scripts/function-lengths.mjs [--limit 70] [dir ...]   (dirs default to src test)
import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import ts from 'typescript';

// "file:name" of functions allowed over the limit, each with the reason why it reads better
// whole. Empty: every function in src/ is within the limit.
export const ALLOWED_LONG_FUNCTIONS = new Map([]);

const GENERATED = /\.generated\.ts$|\/migrations\//;

function sourceFiles(dir) {
  const out = [];
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) out.push(...sourceFiles(path));
    else if (/\.(ts|mts)$/.test(entry.name) && !entry.name.endsWith('.d.ts') && !GENERATED.test(path))
      out.push(path);
  }
  return out;
}

function functionName(node) {
  if (node.name && ts.isIdentifier(node.name)) return node.name.text;
  if (node.name) return node.name.getText();
  const parent = node.parent;
  if (parent && ts.isVariableDeclaration(parent) && ts.isIdentifier(parent.name)) return parent.name.text;
  if (parent && (ts.isPropertyAssignment(parent) || ts.isPropertyDeclaration(parent)))
    return parent.name.getText();
  if (parent && ts.isCallExpression(parent)) return `${parent.expression.getText().slice(0, 40)}(callback)`;
  return '(anonymous)';
}

/** Lines of the body, from its first line to its last (the braces' lines included). */
function bodyLines(sourceFile, body) {
  const first = sourceFile.getLineAndCharacterOfPosition(body.getStart(sourceFile)).line;
  const last = sourceFile.getLineAndCharacterOfPosition(body.getEnd()).line;
  return last - first + 1;
}

export function longFunctions(files, limit, root = process.cwd()) {
  const found = [];
  for (const file of files) {
    const sourceFile = ts.createSourceFile(file, readFileSync(file, 'utf8'), ts.ScriptTarget.Latest, true);
    const visit = (node) => {
      if (ts.isFunctionLike(node) && node.body) {
        const lines = bodyLines(sourceFile, node.body);
        if (lines > limit) found.push({ file: relative(root, file), name: functionName(node), lines });
      }
      ts.forEachChild(node, visit);
    };
    visit(sourceFile);
  }
  return found.sort((a, b) => b.lines - a.lines);
}

function main(argv) {
  const limitAt = argv.indexOf('--limit');
  const limit = limitAt >= 0 ? Number(argv[limitAt + 1]) : 70;
  const dirs = argv.filter((arg, i) => !arg.startsWith('--') && (limitAt < 0 || i !== limitAt + 1));
  const files = (dirs.length > 0 ? dirs : ['src', 'test']).flatMap(sourceFiles);
  let failing = 0;
  for (const { file, name, lines } of longFunctions(files, limit)) {
    const allowed = ALLOWED_LONG_FUNCTIONS.has(`${file}:${name}`);
    const fails = file.startsWith('src/') && !allowed;
    if (fails) failing += 1;
    console.log(
      `${String(lines).padStart(4)}  ${file}  ${name}${allowed ? '  (allowed)' : fails ? '' : '  (test)'}`,
    );
  }
  if (failing > 0) console.error(`${failing} function(s) in src/ over ${limit} lines`);
  return failing > 0 ? 1 : 0;
}

if (import.meta.url === `file://${process.argv[1]}`) process.exitCode = main(process.argv.slice(2));
