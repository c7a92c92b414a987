import { recordCheck } from './state.mjs';

export function check(value, sets) {
  let all = true;
  for (const [name, fn] of Object.entries(sets)) {
    let ok = false;
    try {
      ok = Boolean(fn(value));
    } catch (_e) {
      ok = false;
    }
    recordCheck(name, ok);
    all = all && ok;
  }
  return all;
}

export function fail(message) {
  throw new Error(`k6 fail(): ${message}`);
}

export function sleep() {}

export function group(_name, fn) {
  return fn();
}

export default { check, fail, sleep, group };
