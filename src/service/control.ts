/**
 * The control socket: how `handlefs status MNT` reaches the running service without going
 * through the mount (which would add names and lookups to the handle tree it reports on).
 *
 * One unix socket per mountpoint under /run/handlefs (HANDLEFS_RUNTIME_DIR overrides), named by a
 * hash of the mountpoint's real path, mode 0600. The protocol is one JSON line each way.
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import type { Logger } from 'pino';
import { mountAt } from '../fuse/mount.js';

export function runtimeDir(): string {
  return process.env.HANDLEFS_RUNTIME_DIR ?? '/run/handlefs';
}

/**
 * The real path of a mountpoint (symlinks resolved, as /proc/self/mountinfo shows it), found
 * without ever stat()ing a mount's root: a service asking about its own mount would wait on
 * itself, and a hung mount would hang the asker. The parent is resolved by realpath(3); the last
 * component is taken as is when it is a mountpoint (a mountpoint is never a symlink), else
 * lstat()ed and followed if it is a symlink. Falls back to path.resolve() when the parent cannot
 * be resolved.
 */
export function realMountpoint(mountpoint: string): string {
  let p = path.resolve(mountpoint);
  for (let hops = 0; hops < 40; hops++) {
    let dir: string;
    try {
      dir = fs.realpathSync.native(path.dirname(p));
    } catch {
      return p;
    }
    const candidate = path.join(dir, path.basename(p));
    if (mountAt(candidate) !== undefined) return candidate;
    let st: fs.Stats;
    try {
      st = fs.lstatSync(candidate);
    } catch {
      return candidate;
    }
    if (!st.isSymbolicLink()) return candidate;
    p = path.resolve(dir, fs.readlinkSync(candidate));
  }
  return p;
}

/** The socket path of the service mounted at `mountpoint`, named by a hash of its real path. */
export function controlSocketPath(mountpoint: string): string {
  const id = createHash('sha256').update(realMountpoint(mountpoint)).digest('hex').slice(0, 16);
  return path.join(runtimeDir(), `${id}.sock`);
}

/** status: ServiceStatus; handles: HandleRow[] (`handlefs ls`); metrics: Prometheus text. */
export type ControlRequest = { op: 'status' } | { op: 'handles' } | { op: 'metrics' };
export const CONTROL_OPS: ReadonlySet<string> = new Set(['status', 'handles', 'metrics']);
/** Answers a request (a promise for what takes a moment); a throw is the error the client sees. */
export type ControlHandler = (request: ControlRequest) => unknown;

export class ControlServer {
  private constructor(
    private readonly server: net.Server,
    readonly path: string,
  ) {}

  /** Listens on the mountpoint's socket, replacing a leftover socket file of a dead service. */
  static async listen(mountpoint: string, handler: ControlHandler, logger: Logger): Promise<ControlServer> {
    const socketPath = controlSocketPath(mountpoint);
    fs.mkdirSync(path.dirname(socketPath), { recursive: true, mode: 0o755 });
    if (fs.existsSync(socketPath)) {
      if (await isAnswering(socketPath)) throw new Error(`another handlefs service answers on ${socketPath}`);
      fs.rmSync(socketPath, { force: true });
    }
    const server = net.createServer((socket) => {
      let buffered = '';
      socket.setEncoding('utf8');
      socket.on('data', (chunk: string) => {
        buffered += chunk;
        if (buffered.length > 4096) return socket.destroy();
        const nl = buffered.indexOf('\n');
        if (nl < 0) return;
        socket.pause();
        void (async () => {
          let reply: unknown;
          try {
            const request = JSON.parse(buffered.slice(0, nl)) as ControlRequest;
            reply = CONTROL_OPS.has(request.op) ? { ok: true, status: await handler(request) } : { ok: false, error: `unknown op ${JSON.stringify(request.op)}` };
          } catch (e) {
            reply = { ok: false, error: (e as Error).message };
          }
          socket.end(`${JSON.stringify(reply)}\n`);
        })();
      });
      socket.on('error', (e) => logger.debug({ err: e }, 'control connection error'));
    });
    server.unref(); // the FUSE session, not the control socket, keeps the service alive
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      // bind() creates the socket file synchronously inside listen(): with this umask it is
      // never, even for a moment, connectable by other users.
      const umask = process.umask(0o177);
      try {
        server.listen(socketPath, () => resolve());
      } finally {
        process.umask(umask);
      }
    });
    fs.chmodSync(socketPath, 0o600);
    return new ControlServer(server, socketPath);
  }

  async close(): Promise<void> {
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
    fs.rmSync(this.path, { force: true });
  }
}

function isAnswering(socketPath: string): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect(socketPath);
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

/** Asks the service at `mountpoint`; rejects with ENOENT/ECONNREFUSED when none answers. */
export function requestControl<T>(mountpoint: string, request: ControlRequest, timeoutMs = 5000): Promise<T> {
  const socketPath = controlSocketPath(mountpoint);
  return new Promise((resolve, reject) => {
    const s = net.connect(socketPath);
    let data = '';
    const timer = setTimeout(() => {
      s.destroy();
      reject(Object.assign(new Error(`no answer from ${socketPath} within ${timeoutMs} ms`), { code: 'ETIMEDOUT' }));
    }, timeoutMs);
    s.setEncoding('utf8');
    s.on('connect', () => s.write(`${JSON.stringify(request)}\n`));
    s.on('data', (chunk: string) => (data += chunk));
    s.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    s.on('end', () => {
      clearTimeout(timer);
      try {
        const reply = JSON.parse(data) as { ok: boolean; status?: T; error?: string };
        if (!reply.ok) reject(new Error(reply.error ?? 'service refused the request'));
        else resolve(reply.status as T);
      } catch {
        reject(new Error(`malformed answer from ${socketPath}`));
      }
    });
  });
}
