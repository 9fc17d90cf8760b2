// Shared by the interop suites: a free loopback port, and the CLIs they drive.
import { spawnSync } from 'node:child_process';
import { createServer } from 'node:net';

export const CLI = new URL('../../pkg/cli.js', import.meta.url).pathname;

export const freePort = () =>
  new Promise((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });

export const run = (cmd, args, opts = {}) => spawnSync(cmd, args, { encoding: 'utf8', timeout: 120_000, ...opts });
export const scepkit = (...args) => run(process.execPath, [CLI, ...args]);
export const openssl = (...args) => run('openssl', args);
