// A free TCP port on loopback, for tests that start servers as child processes.
import { createServer } from 'node:net';
import type { Server } from 'node:net';

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      srv.close(() => (typeof addr === 'object' && addr ? resolve(addr.port) : reject(new Error('no port'))));
    });
  });
}

/**
 * A core that is down, on a port held for the test's whole run: it accepts each connection and
 * drops it at once. A port from `freePort` left unbound can be taken by another test's server in
 * the meantime, which would then answer for the "dead" core.
 */
export function deadServer(): Promise<{ port: number; close(): Promise<void> }> {
  return new Promise((resolve, reject) => {
    const srv: Server = createServer((socket) => socket.destroy());
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      if (typeof addr !== 'object' || addr === null) {
        reject(new Error('no port'));
        return;
      }
      resolve({ port: addr.port, close: () => new Promise((done) => srv.close(() => done())) });
    });
  });
}
