/**
 * The notification writer: a blocked notification write never occupies libuv's thread pool or
 * the event loop (the cause of the mount hang of issue 14), and its outcomes reach the caller.
 */
import test from 'ava';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { NotifyWriter } from '../../src/fuse/notify-writer.js';

function fifo(t: import('ava').ExecutionContext): { rfd: number; wfd: number } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'notify-writer-'));
  const p = path.join(dir, 'q');
  execFileSync('mkfifo', [p]);
  const rfd = fs.openSync(p, fs.constants.O_RDONLY | fs.constants.O_NONBLOCK);
  const wfd = fs.openSync(p, 'w'); // blocking, as /dev/fuse writes are
  t.teardown(() => {
    for (const fd of [rfd, wfd]) {
      try {
        fs.closeSync(fd);
      } catch {
        /* closed */
      }
    }
    fs.rmSync(dir, { recursive: true, force: true });
  });
  return { rfd, wfd };
}

function drain(rfd: number): Buffer {
  const chunks: Buffer[] = [];
  const buf = Buffer.alloc(65536);
  for (;;) {
    try {
      const n = fs.readSync(rfd, buf);
      if (n <= 0) break;
      chunks.push(Buffer.from(buf.subarray(0, n)));
    } catch {
      break; // EAGAIN: empty
    }
  }
  return Buffer.concat(chunks);
}

test('writes arrive whole and in order', async (t) => {
  const { rfd, wfd } = fifo(t);
  const w = new NotifyWriter(wfd);
  t.teardown(() => w.stop());
  await Promise.all(['one', 'two', 'three'].map((s) => w.write(Buffer.from(s))));
  t.is(drain(rfd).toString(), 'onetwothree');
  t.is(w.queued, 0);
});

test('a write the kernel refuses rejects with its errno code', async (t) => {
  const { rfd } = fifo(t);
  const w = new NotifyWriter(rfd); // the read end: write(2) fails with EBADF
  t.teardown(() => w.stop());
  const err = await t.throwsAsync(w.write(Buffer.from('x')));
  t.is((err as NodeJS.ErrnoException).code, 'EBADF');
});

test('a blocked write leaves the thread pool and the event loop free', async (t) => {
  const { rfd, wfd } = fifo(t);
  const w = new NotifyWriter(wfd);
  t.teardown(() => w.stop());
  // More than a pipe holds: the writing thread blocks until someone reads.
  const big = Buffer.alloc(1024 * 1024, 1);
  const blocked = [w.write(big), w.write(big), w.write(big), w.write(big), w.write(big)];
  let settled = 0;
  for (const p of blocked) p.then(() => settled++, () => settled++);
  // Eight thread-pool jobs (the pool has four threads) still complete meanwhile.
  const reads = await Promise.all(Array.from({ length: 8 }, () => fs.promises.readFile('/proc/self/stat', 'utf8')));
  t.is(reads.length, 8);
  t.is(settled, 0, 'the writes are still blocked');
  t.is(w.queued, 5);
  // Reading the other end lets them through, in order.
  let got = 0;
  while (settled < 5) {
    got += drain(rfd).length;
    await new Promise((r) => setTimeout(r, 5));
  }
  got += drain(rfd).length;
  t.is(got, 5 * big.length);
  await Promise.all(blocked);
});

test('stop() fails what is queued with ENODEV, and later writes too', async (t) => {
  const { rfd, wfd } = fifo(t);
  const w = new NotifyWriter(wfd);
  const big = Buffer.alloc(1024 * 1024, 1);
  const first = w.write(big);
  const second = w.write(Buffer.from('x'));
  await new Promise((r) => setTimeout(r, 50));
  w.stop();
  for (const p of [first, second, w.write(Buffer.from('y'))]) {
    const err = await t.throwsAsync(p);
    t.is((err as NodeJS.ErrnoException).code, 'ENODEV');
  }
  drain(rfd); // let the thread's blocked write finish so it can end
});
