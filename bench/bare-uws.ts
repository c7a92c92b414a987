// Limit (1): a bare uWebSockets.js server answering every request with a fixed
// body, after reading the request body (as any real handler must). Same library
// and binary as the service; nothing else.
//   BENCH_PORT=18430 node .bench-build/bench/bare-uws.js
import uWS from 'uWebSockets.js';

const BODY =
  '{"decision":"approved","authorization_id":"auth_00000000000000000000000000000000","trip_id":"t0",' +
  '"amount_cents":100,"remaining_cents":1000,"mode":"normal"}';
const port = Number(process.env['BENCH_PORT'] ?? 18430);

uWS
  .App()
  .any('/*', (res) => {
    let aborted = false;
    res.onAborted(() => {
      aborted = true;
    });
    res.onData((_chunk, isLast) => {
      if (!isLast || aborted) return;
      res.cork(() => {
        res.writeStatus('200 OK').writeHeader('Content-Type', 'application/json').end(BODY);
      });
    });
  })
  .listen('127.0.0.1', port, (socket) => {
    if (socket === false) {
      console.error(`cannot listen on ${port}`);
      process.exit(1);
    }
    console.log(`listening ${port}`);
  });

process.on('SIGTERM', () => process.exit(0));
