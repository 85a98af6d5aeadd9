/**
 * DevFuseChannel on a FIFO instead of /dev/fuse: the read mechanisms deliver exactly the bytes of
 * each read, synchronously, from one reused buffer, and end cleanly.
 */
import test from 'ava';
import { execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pino from 'pino';
import { DevFuseChannel, bestReadMechanism, type ReadMechanism } from '../../src/fuse/index.js';
import { fuseDeviceAddon } from '../../src/fuse/device-addon.js';

const logger = pino({ level: 'silent' });

for (const mechanism of ['native', 'uv-pipe', 'threadpool'] as ReadMechanism[]) {
  test(`${mechanism}: delivers each read, reuses one buffer, ends on EOF/close`, async (t) => {
    const { rfd, wfd, close, handOver } = fifoPair(t);
    handOver(rfd); // the channel closes it
    const ch = new DevFuseChannel(rfd, logger, { mechanism });
    t.is(ch.mechanism, mechanism);
    t.true(ch.bufferSize >= 1024 * 1024 + 4096);
    const got: string[] = [];
    const bufs = new Set<Buffer>();
    const ended = new Promise<NodeJS.ErrnoException | undefined>((resolve) => {
      ch.start({
        onData: (buf, len) => {
          bufs.add(buf);
          got.push(buf.toString('utf8', 0, len));
        },
        onEnd: resolve,
      });
    });
    for (const msg of ['first', 'second request', 'third']) {
      fs.writeSync(wfd, msg);
      const want = got.length + 1;
      for (let i = 0; i < 200 && got.length < want; i++) await new Promise((r) => setTimeout(r, 5));
    }
    t.deepEqual(got, ['first', 'second request', 'third']);
    t.is(bufs.size, 1, 'one static buffer');
    close(wfd);
    const err = await Promise.race([ended, new Promise<'timeout'>((r) => setTimeout(() => r('timeout'), 3000))]);
    if (err === 'timeout') {
      ch.close();
      t.fail('no end after the writer closed');
    } else {
      t.true(err === undefined || err.code === 'EOF' || err.code === 'ENODEV', String(err?.code));
    }
    ch.close();
    t.true(ch.closed);
    await t.throwsAsync(ch.writeNotify(Buffer.alloc(16)), { message: /ENODEV/ });
  });
}

test('close() before any data ends the channel and closes the descriptor', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'fuse-dev-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const fifo = path.join(dir, 'q');
  execFileSync('mkfifo', [fifo]);
  const rfd = fs.openSync(fifo, fs.constants.O_RDWR);
  const ino = fs.fstatSync(rfd).ino;
  const ch = new DevFuseChannel(rfd, logger);
  const ended = new Promise<void>((resolve) => ch.start({ onData: () => undefined, onEnd: () => resolve() }));
  ch.close();
  await ended;
  await new Promise((r) => setImmediate(r));
  // Closed: EBADF, or the number already reused by a descriptor another test opened meanwhile.
  let after: number | string;
  try {
    after = fs.fstatSync(rfd).ino;
  } catch (err) {
    after = (err as NodeJS.ErrnoException).code!;
  }
  t.not(after, ino);
});

test('the FUSE device helper is built and is the default reader', (t) => {
  // npm install builds it (package.json "install"); a missing helper would silently cost speed.
  t.not(fuseDeviceAddon.tryLoad(), null, 'build/Release/handlefs_fuse.node: run `npm run build:native`');
  t.is(bestReadMechanism(), 'native');
});

/** A FIFO's read end (non-blocking) and write end, closed after the test unless closed or handed over. */
function fifoPair(t: import('ava').ExecutionContext): {
  rfd: number;
  wfd: number;
  close: (fd: number) => void;
  handOver: (fd: number) => void;
} {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'fuse-dev-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const fifo = path.join(dir, 'q');
  execFileSync('mkfifo', [fifo]);
  const rfd = fs.openSync(fifo, fs.constants.O_RDONLY | fs.constants.O_NONBLOCK);
  const wfd = fs.openSync(fifo, 'w');
  const open = new Set([rfd, wfd]);
  // Tests close through this, so teardown never closes a number another test has been given since.
  const close = (fd: number): void => {
    if (open.delete(fd)) fs.closeSync(fd);
  };
  t.teardown(() => [...open].forEach(close));
  return { rfd, wfd, close, handOver: (fd) => open.delete(fd) };
}

test('native writes return -errno instead of throwing, and write whole messages', (t) => {
  const addon = fuseDeviceAddon.load();
  const { rfd, wfd } = fifoPair(t);
  t.is(addon.write(wfd, Buffer.from('hello world'), 5), 5);
  t.is(addon.writev(wfd, [Buffer.from('ab'), new Uint8Array([0x63])]), 3);
  const got = Buffer.alloc(16);
  t.is(fs.readSync(rfd, got), 8);
  t.is(got.toString('utf8', 0, 8), 'helloabc');
  t.is(addon.write(rfd, Buffer.from('x'), 1), -9, 'EBADF: the read end is not writable');
  t.is(addon.writev(999_999, [Buffer.from('x')]), -9);
  t.throws(() => addon.write(wfd, Buffer.from('x'), 2), { message: /bad arguments/ }, 'len beyond the buffer');
  t.throws(() => addon.write(wfd, 'x' as unknown as Buffer, 1), { message: /bad arguments/ });
});

test('native reader: onRequest may stop the reader, promises settle after each wake-up, errors end it once', async (t) => {
  const addon = fuseDeviceAddon.load();
  const { rfd, wfd, close } = fifoPair(t);
  const buf = Buffer.alloc(64);
  const seen: number[] = [];
  let settled = 0;
  let resolveFirst!: () => void;
  const first = new Promise<void>((r) => (resolveFirst = r));
  const reader = addon.startReader(rfd, buf, (n) => {
    seen.push(n);
    void Promise.resolve().then(() => settled++);
    resolveFirst();
    return false; // stop from inside the callback
  });
  fs.writeSync(wfd, 'abc');
  await first;
  t.deepEqual(seen, [3]);
  t.is(settled, 1, 'the microtask queued in onRequest ran when the wake-up ended');
  t.false(addon.stopReader(reader), 'already stopped by returning false');
  fs.writeSync(wfd, 'more');
  await new Promise((r) => setTimeout(r, 30));
  t.deepEqual(seen, [3], 'nothing delivered after stopping');

  // A fresh reader on the same descriptor gets the queued bytes, then the end (writer closed: 0 bytes).
  const ends: number[] = [];
  const done = new Promise<void>((resolve) => {
    addon.startReader(rfd, buf, (n) => {
      ends.push(n);
      if (n < 0) resolve();
      return true;
    });
  });
  close(wfd);
  await done;
  t.deepEqual(ends, [4, -19], 'then ENODEV once (read returned 0)');
  t.throws(() => addon.startReader(rfd, Buffer.alloc(0), () => true), { message: /non-empty/ });
});

test('socketpair + recvFd: a descriptor passed with SCM_RIGHTS arrives; nothing yet is -EAGAIN; a closed peer -ECONNRESET', async (t) => {
  const addon = fuseDeviceAddon.load();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'fuse-dev-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const file = path.join(dir, 'passed');
  fs.writeFileSync(file, 'x');
  const [ours, theirs] = addon.socketpair();
  const open = new Set([ours, theirs]);
  const close = (fd: number): void => {
    if (open.delete(fd)) fs.closeSync(fd);
  };
  t.teardown(() => [...open].forEach(close)); // only ours: a closed number may belong to another test by then
  t.is(addon.recvFd(ours), -11, 'EAGAIN: nothing sent yet, and no waiting');
  // The sender is another process, as fusermount3 is: python3 (node-gyp's own prerequisite).
  const sender = `import os, socket; s = socket.socket(fileno=3); socket.send_fds(s, [b"\\0"], [os.open(${JSON.stringify(file)}, os.O_RDONLY)])`;
  const r = await new Promise<number | null>((resolve) => {
    const p = spawn('python3', ['-c', sender], { stdio: ['ignore', 'ignore', 'inherit', theirs] });
    p.on('exit', resolve);
  });
  t.is(r, 0);
  const fd = addon.recvFd(ours);
  t.true(fd >= 0, `recvFd: ${fd}`);
  t.is(fs.fstatSync(fd).ino, fs.statSync(file).ino, 'the very file the sender opened');
  t.is(fs.readFileSync(fd, 'utf8'), 'x');
  fs.closeSync(fd);
  close(theirs);
  t.is(addon.recvFd(ours), -104, 'ECONNRESET: the peer closed without sending');
  t.throws(() => addon.recvFd(-1 as number), { message: /bad descriptor/ });
});
