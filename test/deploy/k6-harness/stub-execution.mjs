// Mutable execution context; run.mjs advances it between iterations.
const exec = {
  vu: { idInTest: 1, iterationInScenario: 0 },
  scenario: { name: 'setup', iterationInTest: 0 },
  test: {
    abort: (msg) => {
      throw new Error(`exec.test.abort(): ${msg}`);
    },
  },
};
export default exec;
