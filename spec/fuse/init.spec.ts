/**
 * INIT negotiation as a table: the kernel's init_in and our wishes in, the outcome out. No session,
 * no channel: what a connection agrees to follows from these two alone.
 */
import test from 'ava';
import { Errno, FUSE_KERNEL_MINOR_VERSION, InitFlags, InitFlags2 } from '../../src/fuse/abi.js';
import type { InitRequest } from '../../src/fuse/codec.js';
import { negotiateInit, type InitWishes } from '../../src/fuse/init.js';
import { KERNEL_FLAGS2_745, KERNEL_FLAGS_745 } from '../../src/testing/kernel-codec.js';

const WISHES: InitWishes = { entryTimeout: 1, attrTimeout: 1, readdirplus: 'auto', exportSupport: true, invalData: 'auto', maxWrite: 4096 };
const KERNEL_745: InitRequest = { major: 7, minor: 45, maxReadahead: 131072, flags: KERNEL_FLAGS_745, flags2: KERNEL_FLAGS2_745 };
const { ASYNC_READ, PARALLEL_DIROPS, EXPORT_SUPPORT, DO_READDIRPLUS, READDIRPLUS_AUTO, AUTO_INVAL_DATA, EXPLICIT_INVAL_DATA, INIT_EXT } = InitFlags;
const OURS = ASYNC_READ | PARALLEL_DIROPS | EXPORT_SUPPORT | DO_READDIRPLUS | READDIRPLUS_AUTO | AUTO_INVAL_DATA;

interface Row {
  name: string;
  kernel: Partial<InitRequest>;
  wishes?: Partial<InitWishes>;
  /** The outcome's kind, and for an accepted INIT the minor, flags and flags2 agreed. */
  expect: { kind: 'refuse'; errno: number } | { kind: 'retry' } | { kind: 'accept'; minor: number; flags: number; flags2: number; replyMinor: number };
}

const TABLE: Row[] = [
  {
    name: 'a 6.18 kernel: 7.45, what we ask of what it offers, INIT_EXT for DIRECT_IO_ALLOW_MMAP',
    kernel: {},
    expect: { kind: 'accept', minor: 45, flags: (OURS | INIT_EXT) >>> 0, flags2: InitFlags2.DIRECT_IO_ALLOW_MMAP, replyMinor: 45 },
  },
  {
    name: 'an older kernel without INIT_EXT: its minor, no flags2 even if it sent some',
    kernel: { minor: 31, flags: ASYNC_READ | DO_READDIRPLUS | EXPORT_SUPPORT, flags2: 0xff },
    expect: { kind: 'accept', minor: 31, flags: ASYNC_READ | DO_READDIRPLUS | EXPORT_SUPPORT, flags2: 0, replyMinor: 31 },
  },
  {
    name: 'a kernel newer than our minor: ours, the reply sized for its own',
    kernel: { minor: 99 },
    expect: { kind: 'accept', minor: FUSE_KERNEL_MINOR_VERSION, flags: (OURS | INIT_EXT) >>> 0, flags2: InitFlags2.DIRECT_IO_ALLOW_MMAP, replyMinor: 99 },
  },
  {
    name: 'readdirplus always, explicit invalidation, no export support',
    kernel: {},
    wishes: { readdirplus: 'always', invalData: 'explicit', exportSupport: false },
    expect: {
      kind: 'accept',
      minor: 45,
      flags: (ASYNC_READ | PARALLEL_DIROPS | DO_READDIRPLUS | EXPLICIT_INVAL_DATA | INIT_EXT) >>> 0,
      flags2: InitFlags2.DIRECT_IO_ALLOW_MMAP | InitFlags2.NO_EXPORT_SUPPORT,
      replyMinor: 45,
    },
  },
  {
    name: 'readdirplus off',
    kernel: {},
    wishes: { readdirplus: 'off' },
    expect: { kind: 'accept', minor: 45, flags: (ASYNC_READ | PARALLEL_DIROPS | EXPORT_SUPPORT | AUTO_INVAL_DATA | INIT_EXT) >>> 0, flags2: InitFlags2.DIRECT_IO_ALLOW_MMAP, replyMinor: 45 },
  },
  { name: 'a newer major: answer 7 and wait for the next INIT', kernel: { major: 8, minor: 0 }, expect: { kind: 'retry' } },
  { name: 'an older major: EPROTO', kernel: { major: 6 }, expect: { kind: 'refuse', errno: Errno.EPROTO } },
];

for (const row of TABLE) {
  test(`INIT: ${row.name}`, (t) => {
    const k = { ...KERNEL_745, ...row.kernel };
    const o = negotiateInit(k, { ...WISHES, ...row.wishes });
    t.is(o.kind, row.expect.kind);
    if (o.kind === 'refuse' && row.expect.kind === 'refuse') t.is(o.errno, row.expect.errno);
    if (o.kind === 'retry') {
      t.is(o.reply.major, 7);
      t.is(o.replyMinor, FUSE_KERNEL_MINOR_VERSION);
    }
    if (o.kind === 'accept' && row.expect.kind === 'accept') {
      t.is(o.conn.minor, row.expect.minor);
      t.is(o.reply.minor, row.expect.minor);
      t.is(o.conn.flags, row.expect.flags, 'flags');
      t.is(o.reply.flags, row.expect.flags);
      t.is(o.conn.flags2, row.expect.flags2, 'flags2');
      t.is(o.replyMinor, row.expect.replyMinor);
      t.is(o.reply.maxWrite, 4096);
      t.is(o.reply.maxReadahead, k.maxReadahead, 'the kernel’s readahead, unchanged');
      t.is(o.conn.kernelMinor, k.minor);
    }
  });
}

test('INIT: capabilities follow the flags granted and the minor agreed', (t) => {
  const cur = negotiateInit(KERNEL_745, WISHES);
  const old = negotiateInit({ ...KERNEL_745, minor: 15, flags: ASYNC_READ, flags2: 0 }, WISHES);
  if (cur.kind !== 'accept' || old.kind !== 'accept') return t.fail('both accepted');
  t.deepEqual(cur.conn.capabilities, {
    readdirplus: true,
    readdirplusAuto: true,
    exportSupport: true,
    parallelDirops: true,
    asyncRead: true,
    autoInvalData: true,
    explicitInvalData: false,
    directIoAllowMmap: true,
    notifyInvalInode: true,
    notifyInvalEntry: true,
    notifyDelete: true,
    notifyExpireOnly: true,
  });
  t.like(old.conn.capabilities, { readdirplus: false, exportSupport: false, notifyInvalEntry: true, notifyDelete: false, notifyExpireOnly: false });
  t.true(Object.isFrozen(cur.conn) && Object.isFrozen(cur.conn.capabilities), 'what holds from now on cannot be changed by a handler');
  t.deepEqual(negotiateInit(KERNEL_745, WISHES), cur, 'pure: the same inputs, the same outcome');
});
