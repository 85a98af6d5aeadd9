/**
 * A store whose commits fail (full or read-only disk) fails every lookup that would reveal a new
 * number. The log must not grow by a full error line (with its stack) per lookup.
 */
import test from 'ava';
import { pino } from 'pino';
import { Errno } from '../../src/fuse/abi.js';
import { createTestFilesystem } from '../../src/testing/index.js';
import { PID_DIR } from '../../src/tree/layout.js';
import { RepeatedErrorLog } from '../../src/util/repeated-error-log.js';
import { errnoOf, FlakyStore } from './harness.js';

interface Line {
  level: number;
  msg: string;
  [k: string]: unknown;
}

function capture() {
  const lines: Line[] = [];
  const logger = pino({ level: 'debug' }, { write: (s: string) => void lines.push(JSON.parse(s) as Line) });
  return { logger, lines };
}

test('200 lookups failing on the store log one error line, and recovery one line', async (t) => {
  const { logger, lines } = capture();
  const store = new FlakyStore();
  const h = createTestFilesystem({ store, logger, entryTimeout: 3600, attrTimeout: 3600 });
  const procs = Array.from({ length: 200 }, () => h.host.start());
  store.failing = true;
  for (const p of procs) t.is(await errnoOf(h.lookup(PID_DIR, String(p.pid))), Errno.EIO);
  const errors = lines.filter((l) => l.level >= 50);
  t.is(errors.length, 1, `one line for the episode, got ${errors.length}`);
  t.regex(errors[0]!.msg, /could not be made durable/);
  t.regex(JSON.stringify(errors[0]!.err), /disk on fire/, 'the first occurrence is logged in full');

  store.failing = false;
  t.is((await h.lookup(PID_DIR, String(procs[0]!.pid))).nodeId > 0, true);
  const back = lines.filter((l) => l.level === 40 && /durable again after 200 failures/.test(l.msg));
  t.is(back.length, 1);

  const late = h.host.start();
  store.failing = true;
  t.is(await errnoOf(h.lookup(PID_DIR, String(late.pid))), Errno.EIO);
  t.is(lines.filter((l) => l.level >= 50).length, 2, 'a new episode is logged in full again');
});

test('repeats are summed up in one short line per interval', (t) => {
  const { logger, lines } = capture();
  let now = 0;
  const log = new RepeatedErrorLog(logger, 10_000, () => now);
  const err = new Error('SQLITE_FULL: database or disk is full');
  for (let i = 0; i < 1000; i++) {
    log.error('flush', err, 'commit failed');
    now += 25; // 1000 failures over 25 s
  }
  const errors = lines.filter((l) => l.level >= 50);
  t.is(errors.length, 3, 'the first in full, then one summary per 10 s');
  t.truthy(errors[0]!.err);
  for (const summary of errors.slice(1)) {
    t.is(summary.err, undefined, 'no stack in a summary');
    t.regex(summary.msg, /^commit failed \(\d+ more times in the last 10 s: SQLITE_FULL: database or disk is full\)$/);
    t.true(JSON.stringify(summary).length < 400);
  }
  t.is(errors.slice(1).reduce((n, l) => n + (l.repeats as number), 0), 800);
});
