// Drives one k6 script in Node against fake-api.mjs: loads it (k6 modules
// stubbed by hooks.mjs), checks its options, runs setup(), a few iterations
// of every scenario's exec function, and teardown(), then prints a JSON
// report on stdout. Usage (from the repo root):
//   SIGNATURE_SECRET=... API_TOKEN=... node --import ./test/deploy/k6-harness/register.mjs \
//     test/deploy/k6-harness/run.mjs loadtest/gate.js [iterations]
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import exec from './stub-execution.mjs';
import { state } from './state.mjs';

const [script, iterationsArg] = process.argv.slice(2);
const iterations = Number(iterationsArg ?? 3);
globalThis.__ENV = { ...process.env };
globalThis.__VU = 0;
globalThis.__ITER = 0;

const mod = await import(pathToFileURL(resolve(script)).href);
const problems = [];
const options = mod.options;
if (!options || typeof options !== 'object') problems.push('no exported options');
const scenarios = Object.entries(options?.scenarios ?? {});
if (scenarios.length === 0) problems.push('options.scenarios is empty');
for (const [name, sc] of scenarios) {
  const fn = sc.exec ?? 'default';
  if (typeof mod[fn] !== 'function')
    problems.push(`scenario ${name}: exec "${fn}" is not an exported function`);
  if (typeof sc.executor !== 'string') problems.push(`scenario ${name}: no executor`);
}
const thresholds = options?.thresholds ?? {};
for (const [metric, list] of Object.entries(thresholds)) {
  if (!Array.isArray(list) || list.length === 0) problems.push(`threshold ${metric}: empty`);
  for (const t of list ?? []) {
    const expr = typeof t === 'string' ? t : t.threshold;
    if (
      !/^(p\(\d+(\.\d+)?\)|avg|min|max|med|count|rate|value)\s*(<|<=|>|>=|==|===|!=)\s*-?\d+(\.\d+)?$/.test(
        expr,
      )
    ) {
      problems.push(`threshold ${metric}: cannot parse "${expr}"`);
    }
  }
}

let data;
if (problems.length === 0) {
  if (typeof mod.setup === 'function') data = mod.setup();
  let vu = 0;
  for (const [name, sc] of scenarios) {
    exec.scenario.name = name;
    for (let i = 0; i < iterations; i++) {
      vu++;
      exec.vu.idInTest = vu;
      exec.vu.iterationInScenario = i;
      exec.scenario.iterationInTest = i;
      globalThis.__VU = vu;
      globalThis.__ITER = i;
      mod[sc.exec ?? 'default'](data);
    }
  }
  if (typeof mod.teardown === 'function') mod.teardown(data);
}

// Count thresholds on custom counters (name or name{tag:value,...}), evaluated
// over what the run recorded, as k6 would at the end of a test.
const thresholdResults = {};
for (const [metric, list] of Object.entries(thresholds)) {
  const m = /^(\w+)(?:\{([^}]*)\})?$/.exec(metric);
  const recorded = m ? state.metrics[m[1]] : undefined;
  if (recorded?.kind !== 'counter') continue;
  const want = Object.fromEntries(
    (m[2] ?? '')
      .split(',')
      .filter(Boolean)
      .map((kv) => kv.split(':')),
  );
  const count = recorded.values
    .filter((v) => Object.entries(want).every(([k, x]) => String(v.tags?.[k]) === x))
    .reduce((n, v) => n + v.value, 0);
  for (const t of list) {
    const expr = typeof t === 'string' ? t : t.threshold;
    const c = /^count\s*(<|<=|>|>=|==)\s*(\d+)$/.exec(expr);
    if (!c) continue;
    const n = Number(c[2]);
    const ok = { '<': count < n, '<=': count <= n, '>': count > n, '>=': count >= n, '==': count === n }[
      c[1]
    ];
    thresholdResults[`${metric}: ${expr}`] = { count, ok };
  }
}

const byStatus = {};
for (const r of state.requests) {
  const key = `${r.method} ${r.tags.name ?? new URL(r.url).pathname}`;
  byStatus[key] = (byStatus[key] ?? 0) + 1;
}
process.stdout.write(
  `${JSON.stringify({
    problems,
    scenarios: scenarios.map(([n]) => n),
    thresholds: Object.keys(thresholds),
    checks: state.checks,
    requests: byStatus,
    authorizations: state.requests.filter((r) => r.url.endsWith('/v1/authorizations')).length,
    responseCallback: state.responseCallback,
    thresholdResults,
    metrics: Object.fromEntries(Object.entries(state.metrics).map(([k, v]) => [k, v.values.length])),
  })}\n`,
);
