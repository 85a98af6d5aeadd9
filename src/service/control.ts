/**
 * The control socket: how `handlefs status|exec|bind|kill|wait` reach the running service without
 * going through the mount (which would add names and lookups to the handle tree it reports on).
 *
 * One unix socket per mountpoint under /run/handlefs (HANDLEFS_RUNTIME_DIR overrides), named by a
 * hash of the mountpoint's real path. The protocol is one JSON line each way. Every request is
 * judged by the caller's credentials (SO_PEERCRED, through the native helper), so the socket is
 * open to everyone (0666); without the helper the credentials cannot be read, and the socket is
 * 0600 (root only), as before.
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import type { Logger } from 'pino';
import { mountAt } from '../fuse/mount.js';
import { tryLoadNative } from '../sources/native.js';

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

/**
 * Where the keeper records which mountpoint serves FUSE device `dev` ("major:minor"): after
 * `umount --lazy` the mount is gone from mountinfo while bind mounts of its handles are still
 * served, and this record is how a TARGET on such a bind mount finds its service.
 */
export function deviceRecordPath(dev: string): string {
  return path.join(runtimeDir(), `dev-${dev.replace(':', '_')}.mnt`);
}

/** The mountpoint recorded for device `dev` while its keeper runs, if any. */
export function mountpointOfDevice(dev: string): string | undefined {
  try {
    const mp = fs.readFileSync(deviceRecordPath(dev), 'utf8').trim();
    return mp.startsWith('/') ? mp : undefined;
  } catch {
    return undefined;
  }
}

/** status: ServiceStatus; handles: HandleRow[] (`handlefs ls`); metrics: Prometheus text. */
export type ControlRequest =
  | { op: 'status' }
  | { op: 'handles' }
  | { op: 'metrics' }
  /** The namespaces to enter for handle `ino` (`handlefs exec`). */
  | { op: 'enter'; ino: number }
  /** The namespace to bind-mount for handle `ino` (`handlefs bind`). */
  | { op: 'bind'; ino: number }
  | { op: 'kill'; ino: number; signal: number }
  /** Answers once the process has ended (`handlefs wait`). */
  | { op: 'wait'; ino: number };

export const CONTROL_OPS: ReadonlySet<string> = new Set(['status', 'handles', 'metrics', 'enter', 'bind', 'kill', 'wait']);

/**
 * The socket is open to every user, and each connection costs the service a descriptor: a user
 * other than root may keep this many open at once (a `handlefs wait` keeps one while it waits);
 * more are closed at once, so nobody can take the descriptors root's requests and the mount need.
 */
export const MAX_CONNECTIONS_PER_USER = 256;
/** A connection must send its request line within this time, or it is closed. */
export const REQUEST_TIMEOUT_MS = 5000;

/** Who is asking: SO_PEERCRED's pid and effective uid, and the real uid. */
export interface ControlCaller {
  readonly pid: number;
  readonly uid: number;
  readonly ruid: number;
}

/** A refusal with an errno name, passed to the client as { ok: false, error, code }. */
export class ControlError extends Error {
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

/** Answers a request; `signal` aborts when the client goes away (a wait it no longer needs). */
export type ControlHandler = (request: ControlRequest, caller: ControlCaller, signal: AbortSignal) => unknown;

/** The peer's credentials; without the native helper only root can connect (mode 0600). */
function peerOf(socket: net.Socket): ControlCaller {
  const native = tryLoadNative();
  // Without the helper the socket is 0600: only root can have connected.
  if (native === null) return { pid: 0, uid: 0, ruid: 0 };
  const fd = (socket as unknown as { _handle?: { fd?: number } })._handle?.fd;
  // The socket is open to every user: a caller we cannot identify is refused, never taken for root.
  if (typeof fd !== 'number' || fd < 0) throw new ControlError('EPERM', 'cannot tell who is asking (no peer credentials)');
  let c: { pid: number; uid: number; ruid: number };
  try {
    c = native.peerCred(fd);
  } catch (e) {
    throw new ControlError('EPERM', `cannot tell who is asking: ${(e as Error).message}`);
  }
  return { pid: c.pid, uid: c.uid, ruid: c.ruid };
}

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
    const byUser = new Map<number, number>();
    const server = net.createServer((socket) => {
      // An unidentified caller (uid -1 here) is counted like any user, and refused at its request.
      let peer: ControlCaller | ControlError;
      try {
        peer = peerOf(socket);
      } catch (e) {
        peer = e instanceof ControlError ? e : new ControlError('EPERM', (e as Error).message);
      }
      const uid = peer instanceof ControlError ? -1 : peer.uid;
      const open = byUser.get(uid) ?? 0;
      if (uid !== 0 && open >= MAX_CONNECTIONS_PER_USER) {
        logger.debug({ uid, open }, 'control connection refused: too many open for this user');
        socket.destroy();
        return;
      }
      byUser.set(uid, open + 1);
      let buffered = '';
      let answered = false;
      const gone = new AbortController();
      const idle = setTimeout(() => socket.destroy(), REQUEST_TIMEOUT_MS);
      idle.unref();
      socket.setEncoding('utf8');
      socket.on('close', () => {
        clearTimeout(idle);
        const n = (byUser.get(uid) ?? 1) - 1;
        if (n > 0) byUser.set(uid, n);
        else byUser.delete(uid);
        gone.abort();
      });
      socket.on('data', (chunk: string) => {
        if (answered) return;
        buffered += chunk;
        if (buffered.length > 4096) return socket.destroy();
        const nl = buffered.indexOf('\n');
        if (nl < 0) return;
        answered = true;
        clearTimeout(idle);
        const send = (reply: unknown) => {
          if (!socket.destroyed) socket.end(`${JSON.stringify(reply)}\n`);
        };
        const refuse = (e: unknown) =>
          send({ ok: false, error: (e as Error).message, ...(e instanceof ControlError || typeof (e as { code?: unknown }).code === 'string' ? { code: (e as { code: string }).code } : {}) });
        try {
          const request = JSON.parse(buffered.slice(0, nl)) as ControlRequest;
          if (!CONTROL_OPS.has(request.op)) return send({ ok: false, error: `unknown op ${JSON.stringify(request.op)}`, code: 'EINVAL' });
          if (peer instanceof ControlError) throw peer;
          Promise.resolve(handler(request, peer, gone.signal)).then(
            (result) => send({ ok: true, status: result, result }),
            refuse,
          );
        } catch (e) {
          refuse(e);
        }
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
    if (tryLoadNative() === null) fs.chmodSync(socketPath, 0o600);
    else {
      // Every request is judged by the caller's credentials: others may connect (and traverse the
      // runtime directory to the socket, 0711: not list it; its other files stay 0600).
      fs.chmodSync(socketPath, 0o666);
      const dir = path.dirname(socketPath);
      if ((fs.statSync(dir).mode & 0o111) !== 0o111) fs.chmodSync(dir, (fs.statSync(dir).mode & 0o777) | 0o711);
    }
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

/** A refusal the service answered with (`code` is its errno name, e.g. 'EPERM', 'ESRCH'). */
export class ControlRefusal extends Error {
  constructor(
    message: string,
    readonly refusal: string | undefined,
  ) {
    super(message);
  }
}

/**
 * Asks the service at `mountpoint`; rejects with ENOENT/ECONNREFUSED when none answers, with a
 * ControlRefusal when it refuses. `timeoutMs` 0: wait as long as it takes (handlefs wait).
 */
export function requestControl<T>(mountpoint: string, request: ControlRequest, timeoutMs = 5000): Promise<T> {
  const socketPath = controlSocketPath(mountpoint);
  return new Promise((resolve, reject) => {
    const s = net.connect(socketPath);
    let data = '';
    const timer =
      timeoutMs > 0
        ? setTimeout(() => {
            s.destroy();
            reject(Object.assign(new Error(`no answer from ${socketPath} within ${timeoutMs} ms`), { code: 'ETIMEDOUT' }));
          }, timeoutMs)
        : undefined;
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
        const reply = JSON.parse(data) as { ok: boolean; status?: T; result?: T; error?: string; code?: string };
        if (!reply.ok) reject(new ControlRefusal(reply.error ?? 'service refused the request', reply.code));
        else resolve((request.op === 'status' ? reply.status : reply.result) as T);
      } catch {
        reject(new Error(`malformed answer from ${socketPath}`));
      }
    });
  });
}
