/**
 * The channel on /dev/fuse: how requests come in and replies go out.
 *
 * Reading never blocks the event loop; the reader (device-readers.ts) is the FUSE device helper's
 * when it is built (native/fuse_device.c: every queued request read in one event-loop wake-up),
 * else a libuv pipe handle on the descriptor, else fs.read() on the thread pool. Every read() of
 * /dev/fuse returns exactly one request, read into one static buffer and handed to the session
 * synchronously. docs/fuse.md says why, docs/benchmarks.md what each costs.
 *
 * Writing: a reply is one write(2) from the event-loop thread (the kernel takes each write as one
 * message, never blocks on a reply, and answers ENOENT when the request was aborted meanwhile),
 * through the helper when the native reader is in use, else fs.writeSync(). Notifications are
 * written from a dedicated thread (notify-writer.ts), because the kernel may block them on inode
 * locks held by requests whose replies this very thread, and reads of /proc on libuv's thread
 * pool, still have to produce.
 */
import fs from 'node:fs';
import { getSystemErrorName } from 'node:util';
import type { Logger } from 'pino';
import { closeQuietly } from '../util/fd.js';
import { WRITEV_MAX_PIECES, fuseDeviceAddon, type FuseDeviceAddon } from './device-addon.js';
import { NotifyWriter } from './notify-writer.js';
import {
  NativeReader,
  PipeReader,
  ThreadpoolReader,
  errnoError,
  uvPipeBindings,
  type DeviceReader,
  type ReadMechanism,
  type ReaderTarget,
} from './device-readers.js';

export type { ReadMechanism } from './device-readers.js';

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
  /** How requests are read ('native', 'uv-pipe', 'threadpool' for DevFuseChannel): for status and logs. */
  readonly mechanism?: string;
  /** Start delivering requests to `sink`. */
  start(sink: ChannelSink): void;
  /** Write one reply synchronously; throws an errno error (code ENOENT, ENODEV, ...) on failure. */
  write(buf: Buffer, len: number): void;
  /** Write one reply made of several pieces, as one message. */
  writev(bufs: Buffer[]): void;
  /**
   * Write one notification from a thread that no request depends on (never the event loop, never
   * libuv's thread pool); rejects with an errno error.
   */
  writeNotify(buf: Buffer): Promise<void>;
  /** Stop reading and release the device (aborts the connection if nothing else holds it). */
  close(): void;
  /** Stop reading for good but keep the device open and the channel not ended (a hand-over). */
  pause?(): void;
  readonly closed: boolean;
}

/** 1 MiB + 4 KiB: fits max_write (we ask for 4 KiB), the largest SETXATTR (64 KiB) and READ args. */
export const DEFAULT_READ_BUFFER_SIZE = 1024 * 1024 + 4096;

/** The best read mechanism this process can use. */
export function bestReadMechanism(): ReadMechanism {
  if (fuseDeviceAddon.tryLoad()) return 'native';
  return uvPipeBindings() ? 'uv-pipe' : 'threadpool';
}

export interface DevFuseChannelOptions {
  bufferSize?: number;
  /** Force a read mechanism (tests, benchmarks); default: bestReadMechanism(). */
  mechanism?: ReadMechanism;
  /** Close the descriptor when the channel closes (default true). */
  closeFd?: boolean;
}

/** The real channel: an open /dev/fuse descriptor that has been mounted. */
export class DevFuseChannel implements FuseChannel {
  readonly bufferSize: number;
  readonly mechanism: ReadMechanism;
  private readonly buf: Buffer;
  /** The helper, when the native reader is in use (replies are then written through it too). */
  private readonly addon: FuseDeviceAddon | null;
  private reader: DeviceReader | undefined;
  private sink: ChannelSink | undefined;
  private ended = false;
  private isClosed = false;
  private readonly closeFd: boolean;
  private readonly notifyWriter: NotifyWriter;

  constructor(
    readonly fd: number,
    private readonly logger: Logger,
    options: DevFuseChannelOptions = {},
  ) {
    this.bufferSize = Math.max(options.bufferSize ?? DEFAULT_READ_BUFFER_SIZE, 8192 + 4096);
    this.buf = Buffer.allocUnsafe(this.bufferSize);
    this.closeFd = options.closeFd ?? true;
    this.notifyWriter = new NotifyWriter(fd);
    this.mechanism = options.mechanism ?? bestReadMechanism();
    if (options.mechanism === undefined && this.mechanism !== 'native') {
      logger.warn(
        { reader: this.mechanism },
        'FUSE device helper not built: reading /dev/fuse the slower way; run `npm run build:native` (docs/fuse.md)',
      );
    }
    if (this.mechanism === 'native') this.addon = fuseDeviceAddon.load();
    else this.addon = null;
    if (this.mechanism === 'uv-pipe' && !uvPipeBindings()) {
      throw new Error('DevFuseChannel: process.binding(pipe_wrap/stream_wrap) is unavailable');
    }
  }

  get closed(): boolean {
    return this.isClosed;
  }

  start(sink: ChannelSink): void {
    if (this.sink) throw new Error('DevFuseChannel: already started');
    this.sink = sink;
    this.notifyWriter.warm();
    const channel = this;
    const target: ReaderTarget = {
      fd: this.fd,
      buf: this.buf,
      logger: this.logger,
      deliver: (len) => sink.onData(this.buf, len),
      end: (err) => this.end(err),
      get open() {
        return !channel.isClosed && !channel.ended;
      },
    };
    switch (this.mechanism) {
      case 'native':
        this.reader = new NativeReader(this.addon!, target);
        break;
      case 'uv-pipe':
        this.reader = new PipeReader(target, this.closeFd);
        break;
      case 'threadpool':
        this.reader = new ThreadpoolReader(target);
        break;
    }
  }

  private end(err?: NodeJS.ErrnoException): void {
    if (this.ended) return;
    this.ended = true;
    this.sink?.onEnd(err);
  }

  write(buf: Buffer, len: number): void {
    if (this.addon) {
      const r = this.addon.write(this.fd, buf, len);
      if (r < 0) throw errnoError(getSystemErrorName(r), 'write');
      return;
    }
    fs.writeSync(this.fd, buf, 0, len);
  }

  writev(bufs: Buffer[]): void {
    if (this.addon && bufs.length <= WRITEV_MAX_PIECES) {
      const r = this.addon.writev(this.fd, bufs);
      if (r < 0) throw errnoError(getSystemErrorName(r), 'writev');
      return;
    }
    fs.writevSync(this.fd, bufs);
  }

  writeNotify(buf: Buffer): Promise<void> {
    if (this.isClosed) return Promise.reject(errnoError('ENODEV', 'write'));
    return this.notifyWriter.write(buf);
  }

  pause(): void {
    const reader = this.reader;
    this.reader = undefined;
    reader?.stop();
  }

  close(): void {
    if (this.isClosed) return;
    this.isClosed = true;
    this.notifyWriter.stop();
    const reader = this.reader;
    this.reader = undefined;
    const fdClosed = reader?.stop() ?? false;
    if (this.closeFd && !fdClosed) closeQuietly(this.fd);
    this.end();
  }
}
