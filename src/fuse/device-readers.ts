/**
 * The three ways DevFuseChannel reads /dev/fuse without blocking the event loop, best first:
 *
 * - native: the FUSE device helper's reader (uv_poll + read() in C): one wake-up reads every
 *   queued request, an empty queue costs one read() that returns EAGAIN.
 * - uv-pipe: a libuv pipe handle on the descriptor (Node's internal pipe_wrap), one request per
 *   wake-up plus drain(): no native code, but a loop turn and a C++→JS callback per wake-up and a
 *   thrown Error per empty read.
 * - threadpool: fs.read() on the thread pool, one request at a time: always available, slowest.
 *
 * Each read returns exactly one request. A reader hands it to `deliver` (the buffer is reused
 * after it returns) and reports the end once through `end` (ENODEV / ECONNABORTED / EOF =
 * unmounted). The measurements behind the choice are in docs/fuse.md and docs/benchmarks.md.
 */
import fs from 'node:fs';
import { getSystemErrorName } from 'node:util';
import type { Logger } from 'pino';
import type { FuseDeviceAddon, NativeReaderHandle } from './device-addon.js';

export type ReadMechanism = 'native' | 'uv-pipe' | 'threadpool';

export interface ReaderTarget {
  readonly fd: number;
  readonly buf: Buffer;
  readonly logger: Logger;
  /** One request: buf[0, len). */
  deliver(len: number): void;
  /** The device ended or failed; called at most once per reader. */
  end(err?: NodeJS.ErrnoException): void;
  /** False once the channel is closed or ended: readers stop delivering. */
  readonly open: boolean;
}

export interface DeviceReader {
  /** Stops reading. True if that closed the descriptor too (the channel closes it otherwise). */
  stop(): boolean;
}

export function errnoError(code: string, syscall: string): NodeJS.ErrnoException {
  const err: NodeJS.ErrnoException = new Error(`${syscall} /dev/fuse: ${code}`);
  err.code = code;
  err.syscall = syscall;
  return err;
}

/** Device read errors after which the same descriptor can be read again. */
const RETRY_CODES = new Set(['ENOENT', 'EINTR', 'EAGAIN', 'EWOULDBLOCK']);

// ------------------------------------------------------------------------------------------------

export class NativeReader implements DeviceReader {
  private handle: NativeReaderHandle | undefined;

  constructor(
    private readonly addon: FuseDeviceAddon,
    t: ReaderTarget,
  ) {
    this.handle = addon.startReader(t.fd, t.buf, (n) => {
      if (n > 0) {
        t.deliver(n);
        return t.open;
      }
      this.handle = undefined;
      t.end(errnoError(getSystemErrorName(n), 'read'));
      return false;
    });
  }

  stop(): boolean {
    if (this.handle) this.addon.stopReader(this.handle);
    this.handle = undefined;
    return false;
  }
}

// ------------------------------------------------------------------------------------------------

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
/** Node's pipe_wrap/stream_wrap bindings, or undefined where process.binding no longer offers them. */
export function uvPipeBindings(): UvBindings | undefined {
  if (uvBindings === undefined) uvBindings = loadUvBindings() ?? null;
  return uvBindings ?? undefined;
}

/** Requests read by drain() per pipe-handle callback at most (libuv itself reads up to 32 per event). */
const MAX_DRAIN_READS = 31;
const MAX_DRAIN_BACKOFF = 63;
const noop = (): void => undefined;

/**
 * libuv reads one request straight into the static buffer (useUserBuffer) and calls onread
 * synchronously. A retryable error (ENOENT, EINTR, EAGAIN) stops a libuv stream for good, so it
 * gets a fresh handle on the same descriptor; the old one is kept, never closed (closing it would
 * close the descriptor and abort the connection).
 */
export class PipeReader implements DeviceReader {
  private handle: PipeHandle | undefined;
  private readonly abandoned: PipeHandle[] = [];
  private stopped = false;
  /** Pipe-handle turns left before drain() tries again, and the current backoff (see drain). */
  private drainSkip = 0;
  private drainBackoff = 0;

  constructor(
    private readonly t: ReaderTarget,
    private readonly closeFd: boolean,
  ) {
    this.startHandle();
  }

  private startHandle(): void {
    const b = uvPipeBindings()!;
    const h = new b.Pipe(b.SOCKET);
    const rc = h.open(this.t.fd);
    if (rc !== 0) {
      this.t.end(errnoError(getSystemErrorName(rc), 'uv_pipe_open'));
      return;
    }
    h.useUserBuffer(this.t.buf);
    const state = b.streamBaseState;
    const k = b.kReadBytesOrError;
    h.onread = () => {
      const n = state[k]!;
      if (n > 0) {
        this.t.deliver(n);
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
   * each. A read that finds nothing throws (EAGAIN; fs.readSync builds an Error), which costs several
   * µs, so after one the drain is skipped for a growing number of turns (1, 3, 7, ... 63), reset by
   * the next read that finds a request. Any error ends the drain and is left to the pipe handle's
   * next read, which sees the same condition and handles it as usual (retry, or end of the session).
   */
  private drain(h: PipeHandle): void {
    if (this.drainSkip > 0) {
      this.drainSkip--;
      return;
    }
    const t = this.t;
    for (let i = 0; i < MAX_DRAIN_READS; i++) {
      if (this.handle !== h || !t.open) return;
      let n: number;
      try {
        n = fs.readSync(t.fd, t.buf, 0, t.buf.length, null);
      } catch {
        this.drainBackoff = Math.min(2 * this.drainBackoff + 1, MAX_DRAIN_BACKOFF);
        this.drainSkip = this.drainBackoff;
        return;
      }
      if (!(n > 0)) return;
      this.drainBackoff = 0;
      t.deliver(n);
    }
  }

  private onReadError(h: PipeHandle, code: string): void {
    if (this.stopped) return;
    if (RETRY_CODES.has(code)) {
      this.t.logger.debug({ code }, 'fuse device read interrupted; retrying');
      h.onread = noop;
      this.abandoned.push(h);
      this.handle = undefined;
      setImmediate(() => {
        if (!this.stopped && this.t.open) this.startHandle();
      });
      return;
    }
    this.t.end(errnoError(code, 'read'));
  }

  /** Stops reading. A handle owns its descriptor: with closeFd, closing the handle closes it. */
  stop(): boolean {
    if (this.stopped) return false;
    this.stopped = true;
    const h = this.handle;
    this.handle = undefined;
    if (!h) return false;
    h.readStop();
    h.onread = noop;
    if (!this.closeFd) return false;
    h.close();
    return true;
  }
}

// ------------------------------------------------------------------------------------------------

/** fs.read() on the thread pool, one request at a time. */
export class ThreadpoolReader implements DeviceReader {
  private stopped = false;

  constructor(private readonly t: ReaderTarget) {
    this.next();
  }

  private next(): void {
    const t = this.t;
    if (this.stopped || !t.open) return;
    fs.read(t.fd, t.buf, 0, t.buf.length, null, (err, n) => {
      if (this.stopped) return;
      if (err) {
        if (RETRY_CODES.has(err.code ?? '')) setImmediate(() => this.next());
        else t.end(err);
        return;
      }
      if (n === 0) {
        t.end(errnoError('ENODEV', 'read'));
        return;
      }
      try {
        t.deliver(n);
      } finally {
        this.next();
      }
    });
  }

  stop(): boolean {
    this.stopped = true;
    return false;
  }
}
