// What the stubs record while a script runs, read by run.mjs at the end.
export const state = {
  checks: {},
  metrics: {},
  requests: [],
  responseCallback: null,
};

export function recordCheck(name, ok) {
  const c = state.checks[name] ?? { passes: 0, fails: 0 };
  if (ok) c.passes++;
  else c.fails++;
  state.checks[name] = c;
}
