/**
 * DevFuseChannel on a FIFO instead of /dev/fuse: the read mechanisms deliver exactly the bytes of
 * each read, synchronously, from one reused buffer, and end cleanly.
 */
import test from 'ava';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pino from 'pino';
import { DevFuseChannel, type ReadMechanism } from '../../src/fuse/index.js';

const logger = pino({ level: 'silent' });

for (const mechanism of ['uv-pipe', 'threadpool'] as ReadMechanism[]) {
  test(`${mechanism}: delivers each read, reuses one buffer, ends on EOF/close`, async (t) => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'fuse-dev-'));
    t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
    const fifo = path.join(dir, 'q');
    execFileSync('mkfifo', [fifo]);
    const rfd = fs.openSync(fifo, fs.constants.O_RDONLY | fs.constants.O_NONBLOCK);
    const wfd = fs.openSync(fifo, 'w');
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
    fs.closeSync(wfd);
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
  const ch = new DevFuseChannel(rfd, logger);
  const ended = new Promise<void>((resolve) => ch.start({ onData: () => undefined, onEnd: () => resolve() }));
  ch.close();
  await ended;
  await new Promise((r) => setImmediate(r));
  t.throws(() => fs.fstatSync(rfd), { code: 'EBADF' });
});
