/**
 * A service short of descriptors must not take a live process or namespace for a dead one
 * (issue 14: live processes read `Pid: -1` and got new numbers under EMFILE). Only "no such
 * process" means gone; EMFILE is a HostReadError.
 *
 * Each test exhausts this worker's descriptors for a moment (its own file: nothing else runs in
 * this process meanwhile) and gives them back in every outcome.
 */
import test from 'ava';
import fs from 'node:fs';
import { pino } from 'pino';
import { readHostIds } from '../../src/sources/host-ids.js';
import { ProcNamespaceSource } from '../../src/sources/proc-namespace-source.js';
import { ProcProcessSource } from '../../src/sources/proc-process-source.js';
import { HostReadError } from '../../src/sources/types.js';

const logger = pino({ level: 'silent' });

/** Runs `fn` with every descriptor slot taken; they are freed afterwards whatever happens. */
async function withoutDescriptors<T>(fn: () => Promise<T>): Promise<T> {
  const taken: number[] = [];
  try {
    for (;;) {
      try {
        taken.push(fs.openSync('/dev/null', 'r'));
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'EMFILE') break;
        throw err;
      }
    }
    return await fn();
  } finally {
    for (const fd of taken) fs.closeSync(fd);
  }
}

test.serial('a process read under EMFILE fails with HostReadError, never reads as gone', async (t) => {
  const source = new ProcProcessSource({ logger, hostIds: readHostIds(logger) });
  t.teardown(() => source.close());
  const before = await source.read(process.pid);
  t.truthy(before, 'readable with descriptors to spare');
  const outcome = await withoutDescriptors(() => source.read(process.pid).then((v) => ({ v }), (e: unknown) => ({ e })));
  t.false('v' in outcome && outcome.v === null, 'a live process is never reported gone');
  t.true('e' in outcome && outcome.e instanceof HostReadError, String('e' in outcome ? outcome.e : 'read succeeded'));
  t.is(('e' in outcome && (outcome.e as HostReadError).code) || '', 'EMFILE');
  const after = await source.read(process.pid);
  t.is(after?.incarnation, before!.incarnation, 'the same process, read again');
});

test.serial('a namespace open under EMFILE fails with HostReadError, never reads as gone', async (t) => {
  const source = new ProcNamespaceSource({ logger });
  const link = fs.readlinkSync('/proc/self/ns/net');
  const inum = Number(/\[(\d+)\]/.exec(link)![1]);
  await source.list();
  const outcome = await withoutDescriptors(() => source.open('net', inum).then((v) => ({ v }), (e: unknown) => ({ e })));
  t.false('v' in outcome && outcome.v === null, 'a live namespace is never reported gone');
  t.true('e' in outcome && outcome.e instanceof HostReadError, String('e' in outcome ? outcome.e : 'open succeeded'));
  const h = await source.open('net', inum);
  t.truthy(h, 'opens again once descriptors are free');
  h?.close();
});
