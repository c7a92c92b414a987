// Module resolve hook: k6 built-ins -> local stubs; anything else unknown to
// k6 fails like it would in k6 (only relative imports and k6/* are allowed).
const STUBS = {
  k6: './stub-k6.mjs',
  'k6/http': './stub-http.mjs',
  'k6/crypto': './stub-crypto.mjs',
  'k6/metrics': './stub-metrics.mjs',
  'k6/execution': './stub-execution.mjs',
};

export async function resolve(specifier, context, nextResolve) {
  if (Object.hasOwn(STUBS, specifier)) {
    return { url: new URL(STUBS[specifier], import.meta.url).href, shortCircuit: true };
  }
  const fromLoadtest = context.parentURL?.includes('/loadtest/') || context.parentURL?.includes('/files/');
  if (fromLoadtest && !specifier.startsWith('./') && !specifier.startsWith('../')) {
    throw new Error(`k6 script imports "${specifier}": only k6 built-ins and relative files are available`);
  }
  return nextResolve(specifier, context);
}
