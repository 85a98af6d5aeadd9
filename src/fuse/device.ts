/**
 * The channel on /dev/fuse: how requests come in and replies go out.
 *
 * Reading: the descriptor is wrapped in a libuv pipe handle so the event loop's epoll waits for it
 * and libuv read()s it straight into one static buffer, which is handed to the session
 * synchronously (no thread-pool hop, no allocation per request). Every read() of /dev/fuse returns
 * exactly one request. After each, requests already queued are read with plain non-blocking
 * read()s in the same turn (see DevFuseChannel.drain). See docs/fuse.md for why; if
 * `process.binding` is unavailable we fall back to a loop of fs.read() on the thread pool
 * (correct, slower).
 *
 * Writing: a reply is one fs.writeSync() (the kernel takes each write as one message, never blocks
 * on a reply, and answers ENOENT when the request was aborted meanwhile). Notifications are written
 * with fs.write() on the thread pool, because the kernel may block them on inode locks held by a
 * request whose reply this very thread still has to send.
 */
import fs from 'node:fs';
import { getSystemErrorName } from 'node:util';
import type { Logger } from 'pino';

/** Receives what the channel reads. Called synchronously; `buf` is reused after return. */
export interface ChannelSink {
  /** One read's worth of bytes: buf[0, len). Normally exactly one request. */
  onData(buf: Buffer, len: number): void;
  /** The channel ended: `err` undefined or code ENODEV/ECONNABORTED/EOF = unmounted (normal end). */
  onEnd(err?: NodeJS.ErrnoException): void;
}

/** What the session needs from /dev/fuse (a fake in tests). */
export interface FuseChannel {
  /** Size of the read buffer (the kernel needs >= max_write + 4096 and >= 8192). */
  readonly bufferSize: number;
  /** Start delivering requests to `sink`. */
  start(sink: ChannelSink): void;
  /** Write one reply synchronously; throws an errno error (code ENOENT, ENODEV, ...) on failure. */
  write(buf: Buffer, len: number): void;
  /** Write one reply made of several pieces, as one message. */
  writev(bufs: Buffer[]): void;
  /** Write one notification off the event loop; rejects with an errno error. */
  writeNotify(buf: Buffer): Promise<void>;
  /** Stop reading and release the device (aborts the connection if nothing else holds it). */
  close(): void;
  readonly closed: boolean;
}

/** 1 MiB + 4 KiB: fits max_write (we ask for 4 KiB), the largest SETXATTR (64 KiB) and READ args. */
export const DEFAULT_READ_BUFFER_SIZE = 1024 * 1024 + 4096;

const noop = (): void => undefined;

/** Device read errors after which the same descriptor can be read again. */
const RETRY_CODES = new Set(['ENOENT', 'EINTR', 'EAGAIN', 'EWOULDBLOCK']);

function errnoError(code: string, syscall: string): NodeJS.ErrnoException {
  const err: NodeJS.ErrnoException = new Error(`${syscall} /dev/fuse: ${code}`);
  err.code = code;
  err.syscall = syscall;
  return err;
}

interface PipeHandle {
  open(fd: number): number;
  readStart(): number;
  readStop(): number;
  useUserBuffer(buf: Uint8Array): void;
  close(cb?: () => void): void;
  onread: (ab?: ArrayBuffer) => void;
}

interface UvBindings {
  Pipe: new (type: number) => PipeHandle;
  SOCKET: number;
  streamBaseState: Int32Array;
  kReadBytesOrError: number;
}

/** Requests read by drain() per pipe-handle callback at most (libuv itself reads up to 32 per event). */
const MAX_DRAIN_READS = 31;
const MAX_DRAIN_BACKOFF = 63;

function loadUvBindings(): UvBindings | undefined {
  try {
    const binding = (process as unknown as { binding?: (name: string) => unknown }).binding;
    if (typeof binding !== 'function') return undefined;
    const pipe = binding('pipe_wrap') as { Pipe: UvBindings['Pipe']; constants: { SOCKET: number } };
    const stream = binding('stream_wrap') as { streamBaseState: Int32Array; kReadBytesOrError: number };
    if (typeof pipe?.Pipe !== 'function' || !stream?.streamBaseState || typeof stream.kReadBytesOrError !== 'number') {
      return undefined;
    }
    const probe = new pipe.Pipe(pipe.constants.SOCKET);
    const ok = typeof probe.useUserBuffer === 'function' && typeof probe.readStart === 'function';
    probe.close();
    if (!ok) return undefined;
    return {
      Pipe: pipe.Pipe,
      SOCKET: pipe.constants.SOCKET,
      streamBaseState: stream.streamBaseState,
      kReadBytesOrError: stream.kReadBytesOrError,
    };
  } catch {
    return undefined;
  }
}

let uvBindings: UvBindings | null | undefined;
function uv(): UvBindings | undefined {
  if (uvBindings === undefined) uvBindings = loadUvBindings() ?? null;
  return uvBindings ?? undefined;
}

export type ReadMechanism = 'uv-pipe' | 'threadpool';

export interface DevFuseChannelOptions {
  bufferSize?: number;
  /** Force a read mechanism (tests); default: 'uv-pipe' when available. */
  mechanism?: ReadMechanism;
  /** Close the descriptor when the channel closes (default true). */
  closeFd?: boolean;
}

/** The real channel: an open /dev/fuse descriptor that has been mounted. */
export class DevFuseChannel implements FuseChannel {
  readonly bufferSize: number;
  readonly mechanism: ReadMechanism;
  private readonly buf: Buffer;
  private handle: PipeHandle | undefined;
  /** Handles that hit a retryable read error: never closed (closing would close the fd). */
  private readonly abandoned: PipeHandle[] = [];
  private sink: ChannelSink | undefined;
  private ended = false;
  private isClosed = false;
  private readonly closeFd: boolean;
  /** Pipe-handle turns left before drain() tries again, and the current backoff (see drain). */
  private drainSkip = 0;
  private drainBackoff = 0;

  constructor(
    readonly fd: number,
    private readonly logger: Logger,
    options: DevFuseChannelOptions = {},
  ) {
    this.bufferSize = Math.max(options.bufferSize ?? DEFAULT_READ_BUFFER_SIZE, 8192 + 4096);
    this.buf = Buffer.allocUnsafe(this.bufferSize);
    this.closeFd = options.closeFd ?? true;
    const want = options.mechanism ?? (uv() ? 'uv-pipe' : 'threadpool');
    if (want === 'uv-pipe' && !uv()) {
      throw new Error('DevFuseChannel: process.binding(pipe_wrap/stream_wrap) is unavailable');
    }
    this.mechanism = want;
  }

  get closed(): boolean {
    return this.isClosed;
  }

  start(sink: ChannelSink): void {
    if (this.sink) throw new Error('DevFuseChannel: already started');
    this.sink = sink;
    if (this.mechanism === 'uv-pipe') this.startPipe();
    else this.readLoop();
  }

  private startPipe(): void {
    const b = uv()!;
    const h = new b.Pipe(b.SOCKET);
    const rc = h.open(this.fd);
    if (rc !== 0) {
      this.end(errnoError(getSystemErrorName(rc), 'uv_pipe_open'));
      return;
    }
    h.useUserBuffer(this.buf);
    const state = b.streamBaseState;
    const k = b.kReadBytesOrError;
    h.onread = () => {
      const n = state[k]!;
      if (n > 0) {
        this.sink!.onData(this.buf, n);
        this.drain(h);
        return;
      }
      if (n === 0) return;
      this.onReadError(h, getSystemErrorName(n));
    };
    this.handle = h;
    const r = h.readStart();
    if (r !== 0) this.onReadError(h, getSystemErrorName(r));
  }

  /**
   * After a request delivered by the pipe handle, reads the requests that are already queued with
   * plain non-blocking read()s, up to MAX_DRAIN_READS, instead of returning to the event loop for
   * each (an epoll_wait, a loop turn and a C++→JS callback per request). Under load the next
   * request is usually queued by the time a reply has been written (the writer wakes the client).
   * A read that finds nothing throws (EAGAIN; fs.readSync builds an Error), which costs several µs, so after one the drain is
   * skipped for a growing number of turns (1, 3, 7, ... 63), reset by the next read that finds a
   * request. Any error ends the drain and is left to the pipe handle's next read, which sees the
   * same condition and handles it as usual (retry, or end of the session).
   */
  private drain(h: PipeHandle): void {
    if (this.drainSkip > 0) {
      this.drainSkip--;
      return;
    }
    for (let i = 0; i < MAX_DRAIN_READS; i++) {
      if (this.handle !== h || this.isClosed || this.ended) return;
      let n: number;
      try {
        n = fs.readSync(this.fd, this.buf, 0, this.bufferSize, null);
      } catch {
        this.drainBackoff = Math.min(2 * this.drainBackoff + 1, MAX_DRAIN_BACKOFF);
        this.drainSkip = this.drainBackoff;
        return;
      }
      if (!(n > 0)) return;
      this.drainBackoff = 0;
      this.sink!.onData(this.buf, n);
    }
  }

  private onReadError(h: PipeHandle, code: string): void {
    if (this.isClosed) return;
    if (RETRY_CODES.has(code)) {
      // libuv has stopped this handle and marked it unreadable; reading again needs a new handle on
      // the same descriptor. The old one is kept (never closed: that would close the fd).
      this.logger.debug({ code }, 'fuse device read interrupted; retrying');
      h.onread = noop;
      this.abandoned.push(h);
      this.handle = undefined;
      setImmediate(() => {
        if (!this.isClosed && !this.ended) this.startPipe();
      });
      return;
    }
    this.end(errnoError(code, 'read'));
  }

  private readLoop(): void {
    if (this.isClosed || this.ended) return;
    fs.read(this.fd, this.buf, 0, this.bufferSize, null, (err, n) => {
      if (this.isClosed) return;
      if (err) {
        const code = err.code ?? 'EIO';
        if (RETRY_CODES.has(code)) {
          setImmediate(() => this.readLoop());
          return;
        }
        this.end(err);
        return;
      }
      if (n === 0) {
        this.end(errnoError('ENODEV', 'read'));
        return;
      }
      try {
        this.sink!.onData(this.buf, n);
      } finally {
        this.readLoop();
      }
    });
  }

  private end(err?: NodeJS.ErrnoException): void {
    if (this.ended) return;
    this.ended = true;
    this.sink?.onEnd(err);
  }

  write(buf: Buffer, len: number): void {
    fs.writeSync(this.fd, buf, 0, len);
  }

  writev(bufs: Buffer[]): void {
    fs.writevSync(this.fd, bufs);
  }

  writeNotify(buf: Buffer): Promise<void> {
    return new Promise((resolve, reject) => {
      if (this.isClosed) {
        reject(errnoError('ENODEV', 'write'));
        return;
      }
      fs.write(this.fd, buf, 0, buf.length, null, (err) => (err ? reject(err) : resolve()));
    });
  }

  close(): void {
    if (this.isClosed) return;
    this.isClosed = true;
    const h = this.handle;
    this.handle = undefined;
    if (h) {
      h.readStop();
      h.onread = noop;
      if (this.closeFd) h.close();
    } else if (this.closeFd) {
      try {
        fs.closeSync(this.fd);
      } catch {
        /* already closed */
      }
    }
    this.end();
  }
}
