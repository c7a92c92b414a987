import exec from './stub-execution.mjs';
import { state } from './state.mjs';

class Metric {
  constructor(name, kind) {
    if (!/^[a-zA-Z_][a-zA-Z0-9_]{0,127}$/.test(name)) throw new Error(`bad k6 metric name "${name}"`);
    this.name = name;
    state.metrics[name] = { kind, values: [] };
  }
  add(value, tags) {
    if (typeof value !== 'number' && typeof value !== 'boolean')
      throw new Error(`${this.name}.add(${value})`);
    // k6 tags every sample emitted in a scenario with it.
    state.metrics[this.name].values.push({
      value: Number(value),
      tags: { scenario: exec.scenario.name, ...tags },
    });
  }
}

export class Counter extends Metric {
  constructor(name) {
    super(name, 'counter');
  }
}
export class Rate extends Metric {
  constructor(name) {
    super(name, 'rate');
  }
}
export class Trend extends Metric {
  constructor(name) {
    super(name, 'trend');
  }
}
export class Gauge extends Metric {
  constructor(name) {
    super(name, 'gauge');
  }
}
