// A private redis-server (a child of the test process) on a port the calling
// suite owns, optionally with AUTH (--requirepass, an ACL user) and TLS
// (--tls-port, a throwaway CA made with openssl). It can be frozen
// (SIGSTOP/SIGCONT) to play a Redis that stops answering. Only the PID started
// here is ever signalled; the shared 127.0.0.1:6379 is never touched.
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createConnection } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface RedisServerOptions {
  port: number;
  /** --requirepass: the default user's password. */
  password?: string;
  /** An ACL user with every key and command: [name, password]. */
  aclUser?: [string, string];
  /** Serve TLS only (port 0, tls-port = port), with a fresh CA and server certificate. */
  tls?: boolean;
}

export interface RedisServer {
  readonly port: number;
  readonly pid: number;
  /** CA certificate file that signed the server's certificate (TLS only). */
  readonly caFile: string | undefined;
  freeze(): void;
  thaw(): void;
  stop(): Promise<void>;
}

/** Whether this machine's redis-server was built with TLS (`--tls-port` accepted). */
export function redisServerHasTls(): boolean {
  const r = spawnSync('redis-server', ['--port', '0', '--tls-port', '1', '--test-memory', 'x'], {
    encoding: 'utf8',
    timeout: 5000,
  });
  return !`${r.stdout}${r.stderr}`.includes('tls-port');
}

function openssl(args: string[], cwd: string): void {
  const r = spawnSync('openssl', args, { cwd, encoding: 'utf8', timeout: 30_000 });
  if (r.status !== 0) throw new Error(`openssl ${args.join(' ')} failed: ${r.stderr}`);
}

/** A CA and a server certificate for 127.0.0.1 / localhost, valid one day. */
function makeCertificates(dir: string): { ca: string; cert: string; key: string } {
  openssl(
    [
      'req',
      '-x509',
      '-newkey',
      'rsa:2048',
      '-nodes',
      '-keyout',
      'ca.key',
      '-out',
      'ca.crt',
      '-days',
      '1',
      '-subj',
      '/CN=swipe-test-ca',
    ],
    dir,
  );
  openssl(
    [
      'req',
      '-newkey',
      'rsa:2048',
      '-nodes',
      '-keyout',
      'server.key',
      '-out',
      'server.csr',
      '-subj',
      '/CN=localhost',
    ],
    dir,
  );
  writeFileSync(join(dir, 'ext.cnf'), 'subjectAltName=IP:127.0.0.1,DNS:localhost\n');
  openssl(
    [
      'x509',
      '-req',
      '-in',
      'server.csr',
      '-CA',
      'ca.crt',
      '-CAkey',
      'ca.key',
      '-CAcreateserial',
      '-out',
      'server.crt',
      '-days',
      '1',
      '-extfile',
      'ext.cnf',
    ],
    dir,
  );
  return { ca: join(dir, 'ca.crt'), cert: join(dir, 'server.crt'), key: join(dir, 'server.key') };
}

async function waitForPort(port: number, proc: ChildProcess, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (proc.exitCode !== null) throw new Error(`redis-server on ${port} exited (${proc.exitCode})`);
    const open = await new Promise<boolean>((resolve) => {
      const s = createConnection({ port, host: '127.0.0.1' });
      s.once('connect', () => {
        s.destroy();
        resolve(true);
      });
      s.once('error', () => resolve(false));
    });
    if (open) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`redis-server on ${port} did not listen within ${timeoutMs} ms`);
}

/** redis-server's arguments for a throwaway plain server on a loopback port: no RDB, no AOF. */
export function throwawayRedisArgs(port: number, ...extra: string[]): string[] {
  return ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', ...extra];
}

export async function startRedisServer(opts: RedisServerOptions): Promise<RedisServer> {
  const dir = mkdtempSync(join(tmpdir(), 'sa-redis-'));
  const args = ['--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir];
  let caFile: string | undefined;
  if (opts.tls) {
    const c = makeCertificates(dir);
    caFile = c.ca;
    args.push(
      '--port',
      '0',
      '--tls-port',
      String(opts.port),
      '--tls-cert-file',
      c.cert,
      '--tls-key-file',
      c.key,
    );
    args.push('--tls-ca-cert-file', c.ca, '--tls-auth-clients', 'no');
  } else {
    args.push('--port', String(opts.port));
  }
  if (opts.password !== undefined) args.push('--requirepass', opts.password);
  if (opts.aclUser !== undefined)
    args.push('--user', opts.aclUser[0], 'on', `>${opts.aclUser[1]}`, '~*', '&*', '+@all');
  const proc = spawn('redis-server', args, { stdio: 'ignore' });
  proc.unref();
  try {
    await waitForPort(opts.port, proc, 5000);
  } catch (err) {
    proc.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }
  const pid = proc.pid as number;
  return {
    port: opts.port,
    pid,
    caFile,
    freeze: () => proc.kill('SIGSTOP'),
    thaw: () => proc.kill('SIGCONT'),
    async stop() {
      if (proc.exitCode === null && proc.signalCode === null) {
        const exited = new Promise((r) => proc.once('exit', r));
        proc.kill('SIGCONT'); // a stopped process must not stay stopped
        proc.kill('SIGKILL');
        await exited;
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
