import test from 'ava';
import fc from 'fast-check';
import {
  AttrLayout,
  Dirent,
  DirentPlus,
  EntryOut,
  Errno,
  FuseDecodeError,
  InHeader,
  InitFlags,
  InitOut,
  NotifyCode,
  Opcode,
  S_IFDIR,
  S_IFLNK,
  S_IFREG,
  type Attr,
  type DirEntry,
  type Entry,
  type FuseRequest,
  decodeInHeader,
  decodeRequest,
  direntSize,
  encodeAttr,
  encodeAttrOut,
  encodeDirent,
  encodeEntryOut,
  encodeErrorReply,
  encodeGetxattrOut,
  encodeInitOut,
  encodeNotifyDelete,
  encodeNotifyInvalEntry,
  encodeNotifyInvalInode,
  encodeNotifyPollWakeup,
  encodeOpenOut,
  encodePollOut,
  encodeStatfsOut,
  initOutSize,
  readI64,
  readU64,
  writeI64,
  writeU64,
} from '../../src/fuse/index.js';
import { encodeOutHeader as encodeOutHeaderRaw, isResent, readUnique, RESENT_UNIQUE } from '../../src/fuse/codec.js';
import { decodeAttr, decodeAttrOut, decodeDirents, decodeEntryOut, decodeInitOut, decodeNotification, decodeOpenOut, decodeOutHeader, decodeStatfsOut, encodeRequest, requestBody } from '../../src/testing/kernel-codec.js';

const ATTR: Attr = {
  ino: 0x1_2345_6789,
  mode: S_IFREG | 0o644,
  nlink: 3,
  uid: 1000,
  gid: 100,
  size: 5_000_000_000,
  blocks: 9765625,
  blksize: 4096,
  rdev: 0,
  atimeMs: 1_700_000_000_123.456,
  mtimeMs: 1_600_000_000_000,
  ctimeMs: -1500.25,
};

test('u64/i64 as two u32 halves', (t) => {
  const b = Buffer.alloc(8);
  for (const v of [0, 1, 0xffffffff, 0x1_0000_0000, Number.MAX_SAFE_INTEGER, 2 ** 40 + 7]) {
    writeU64(b, 0, v);
    t.is(b.readBigUInt64LE(0), BigInt(v));
    t.is(readU64(b, 0), v);
  }
  for (const v of [-1, -(2 ** 40) - 3, Number.MIN_SAFE_INTEGER, 5]) {
    writeI64(b, 0, v);
    t.is(b.readBigInt64LE(0), BigInt(v));
    t.is(readI64(b, 0), v);
  }
  t.throws(() => writeU64(b, 0, -1), { instanceOf: RangeError });
  t.throws(() => writeU64(b, 0, 1.5), { instanceOf: RangeError });
  t.throws(() => writeU64(b, 0, 2 ** 60), { instanceOf: RangeError });
  t.throws(() => writeU64(b, 0, Number.NaN), { instanceOf: RangeError });
});

test('request header: byte-exact fields', (t) => {
  const buf = encodeRequest({ opcode: Opcode.LOOKUP, unique: 136, nodeId: 2 ** 33 + 1, uid: 7, gid: 8, pid: 9 }, requestBody.lookup('x'));
  t.is(buf.length, 42);
  t.is(buf.readUInt32LE(0), 42);
  t.is(buf.readUInt32LE(4), 1);
  t.is(buf.readBigUInt64LE(8), 136n);
  t.is(buf.readBigUInt64LE(16), 2n ** 33n + 1n);
  t.is(buf.readUInt32LE(24), 7);
  t.is(buf.readUInt32LE(28), 8);
  t.is(buf.readUInt32LE(32), 9);
  t.is(buf.readUInt16LE(36), 0);
  t.deepEqual(decodeInHeader(buf), { len: 42, opcode: 1, unique: 136, nodeId: 2 ** 33 + 1, uid: 7, gid: 8, pid: 9, extLen: 0 });
});

test('request header: length checks', (t) => {
  t.throws(() => decodeInHeader(Buffer.alloc(39)), { instanceOf: FuseDecodeError, message: /too short/ });
  const b = encodeRequest({ opcode: Opcode.GETATTR, unique: 4, nodeId: 1 }, requestBody.getattr());
  b.writeUInt32LE(100, 0);
  const e = t.throws(() => decodeInHeader(b), { instanceOf: FuseDecodeError })!;
  t.is(e.unique, 4);
  b.writeUInt32LE(12, 0);
  t.throws(() => decodeInHeader(b), { instanceOf: FuseDecodeError, message: /shorter than its header/ });
  b.writeUInt32LE(b.length, 0);
  b.writeUInt16LE(10, InHeader.total_extlen); // 80 bytes of extensions in a 16-byte body
  t.throws(() => decodeInHeader(b), { instanceOf: FuseDecodeError, message: /extension/ });
});

/** Every request kind the decoder interprets, built with requestBody. */
const REQUESTS: Array<[string, Buffer, (r: FuseRequest) => unknown]> = [
  ['LOOKUP', encodeRequest({ opcode: Opcode.LOOKUP, unique: 2, nodeId: 1 }, requestBody.lookup('héllo')), (r) => r.kind === 'LOOKUP' && r.name],
  ['FORGET', encodeRequest({ opcode: Opcode.FORGET, unique: 3, nodeId: 9 }, requestBody.forget(2 ** 40)), (r) => r.kind === 'FORGET' && r.nlookup],
  [
    'BATCH_FORGET',
    encodeRequest({ opcode: Opcode.BATCH_FORGET, unique: 5 }, requestBody.batchForget([{ nodeId: 5, nlookup: 1 }, { nodeId: 2 ** 35, nlookup: 7 }])),
    (r) => r.kind === 'BATCH_FORGET' && r.items,
  ],
  ['GETATTR', encodeRequest({ opcode: Opcode.GETATTR, unique: 6, nodeId: 3 }, requestBody.getattr(77)), (r) => r.kind === 'GETATTR' && r.fh],
  ['GETATTR no fh', encodeRequest({ opcode: Opcode.GETATTR, unique: 6, nodeId: 3 }, requestBody.getattr()), (r) => r.kind === 'GETATTR' && r.fh],
  [
    'INIT',
    encodeRequest({ opcode: Opcode.INIT, unique: 8 }, requestBody.init({ minor: 45, flags: InitFlags.INIT_EXT | InitFlags.ASYNC_READ, flags2: 9 })),
    (r) => r.kind === 'INIT' && r.init,
  ],
  ['OPEN', encodeRequest({ opcode: Opcode.OPEN, unique: 10, nodeId: 3 }, requestBody.open(0o100002, 1)), (r) => r.kind === 'OPEN' && [r.flags, r.openFlags]],
  ['OPENDIR', encodeRequest({ opcode: Opcode.OPENDIR, unique: 10, nodeId: 3 }, requestBody.open(0o200000)), (r) => r.kind === 'OPENDIR' && r.flags],
  [
    'READ',
    encodeRequest({ opcode: Opcode.READ, unique: 12, nodeId: 3 }, requestBody.read({ fh: 5, offset: 2 ** 33, size: 4096, readFlags: 2, lockOwner: 99, flags: 0o100000 })),
    (r) => r.kind === 'READ' && r.read,
  ],
  ['READDIRPLUS', encodeRequest({ opcode: Opcode.READDIRPLUS, unique: 12, nodeId: 3 }, requestBody.read({ fh: 1, offset: 3, size: 4096 })), (r) => r.kind === 'READDIRPLUS' && r.read.offset],
  ['RELEASE', encodeRequest({ opcode: Opcode.RELEASE, unique: 14, nodeId: 3 }, requestBody.release(5, 2, 1, 33)), (r) => r.kind === 'RELEASE' && [r.fh, r.flags, r.releaseFlags, r.lockOwner]],
  ['FLUSH', encodeRequest({ opcode: Opcode.FLUSH, unique: 16, nodeId: 3 }, requestBody.flush(5, 44)), (r) => r.kind === 'FLUSH' && [r.fh, r.lockOwner]],
  ['GETXATTR', encodeRequest({ opcode: Opcode.GETXATTR, unique: 18, nodeId: 3 }, requestBody.getxattr(100, 'user.a')), (r) => r.kind === 'GETXATTR' && [r.size, r.name]],
  ['LISTXATTR', encodeRequest({ opcode: Opcode.LISTXATTR, unique: 20, nodeId: 3 }, requestBody.listxattr(0)), (r) => r.kind === 'LISTXATTR' && r.size],
  ['ACCESS', encodeRequest({ opcode: Opcode.ACCESS, unique: 22, nodeId: 3 }, requestBody.access(6)), (r) => r.kind === 'ACCESS' && r.mask],
  ['INTERRUPT', encodeRequest({ opcode: Opcode.INTERRUPT, unique: 25 }, requestBody.interrupt(24)), (r) => r.kind === 'INTERRUPT' && r.target],
  ['POLL', encodeRequest({ opcode: Opcode.POLL, unique: 26, nodeId: 3 }, requestBody.poll(1, 2, 1, 5)), (r) => r.kind === 'POLL' && [r.fh, r.kh, r.pollFlags, r.events]],
  ['STATFS', encodeRequest({ opcode: Opcode.STATFS, unique: 28, nodeId: 1 }), (r) => r.kind],
  ['MKDIR', encodeRequest({ opcode: Opcode.MKDIR, unique: 30, nodeId: 1 }, Buffer.from('\x00\x00\x00\x00\x00\x00\x00\x00x\0')), (r) => r.kind === 'OTHER' && r.bodyLength],
];

const EXPECTED: Record<string, unknown> = {
  LOOKUP: 'héllo',
  FORGET: 2 ** 40,
  BATCH_FORGET: [{ nodeId: 5, nlookup: 1 }, { nodeId: 2 ** 35, nlookup: 7 }],
  GETATTR: 77,
  'GETATTR no fh': undefined,
  INIT: { major: 7, minor: 45, maxReadahead: 131072, flags: InitFlags.INIT_EXT | InitFlags.ASYNC_READ, flags2: 9 },
  OPEN: [0o100002, 1],
  OPENDIR: 0o200000,
  READ: { fh: 5, offset: 2 ** 33, size: 4096, readFlags: 2, lockOwner: 99, flags: 0o100000 },
  READDIRPLUS: 3,
  RELEASE: [5, 2, 1, 33],
  FLUSH: [5, 44],
  GETXATTR: [100, 'user.a'],
  LISTXATTR: 0,
  ACCESS: 6,
  INTERRUPT: 24,
  POLL: [1, 2, 1, 5],
  STATFS: 'STATFS',
  MKDIR: 10,
};

for (const [name, buf, pick] of REQUESTS) {
  test(`decode ${name}: round-trip of requestBody`, (t) => {
    const r = decodeRequest(buf);
    t.deepEqual(pick(r), EXPECTED[name]);
    // Same result when the request sits inside a larger buffer with garbage after it.
    const big = Buffer.concat([Buffer.alloc(8, 0xee), buf, Buffer.alloc(64, 0xff)]);
    t.deepEqual(pick(decodeRequest(big, 8, 8 + buf.length)), EXPECTED[name]);
  });
}

test('decode: INIT of a pre-7.36 kernel (16-byte body) has no flags2', (t) => {
  const body = requestBody.init({ minor: 31, flags: InitFlags.ASYNC_READ | InitFlags.INIT_EXT, flags2: 5 }).subarray(0, 16);
  const r = decodeRequest(encodeRequest({ opcode: Opcode.INIT, unique: 2 }, body));
  t.is(r.kind, 'INIT');
  if (r.kind === 'INIT') t.is(r.init.flags2, 0);
});

test('decode: names must be NUL-terminated, non-empty, without "/"', (t) => {
  const mk = (bytes: Buffer): Buffer => encodeRequest({ opcode: Opcode.LOOKUP, unique: 2, nodeId: 1 }, bytes);
  t.throws(() => decodeRequest(mk(Buffer.from('abc'))), { instanceOf: FuseDecodeError, message: /NUL/ });
  t.throws(() => decodeRequest(mk(Buffer.from('\0'))), { instanceOf: FuseDecodeError, message: /empty/ });
  t.throws(() => decodeRequest(mk(Buffer.from('a/b\0'))), { instanceOf: FuseDecodeError, message: /"\/"/ });
  const long = t.throws(() => decodeRequest(mk(Buffer.alloc(2000, 0x61))), { instanceOf: FuseDecodeError })!;
  t.is(long.errno, Errno.ENAMETOOLONG);
  t.is(long.unique, 2);
  t.is((decodeRequest(mk(Buffer.from('a\0junk'))) as { name: string }).name, 'a');
});

test('decode: BATCH_FORGET count is clamped to the payload', (t) => {
  const items = [{ nodeId: 5, nlookup: 1 }, { nodeId: 6, nlookup: 2 }];
  const r = decodeRequest(encodeRequest({ opcode: Opcode.BATCH_FORGET, unique: 2 }, requestBody.batchForget(items, 1000)));
  t.is(r.kind, 'BATCH_FORGET');
  if (r.kind !== 'BATCH_FORGET') return;
  t.is(r.declaredCount, 1000);
  t.deepEqual(r.items, items);
  // A partial trailing item is not read.
  const partial = Buffer.concat([requestBody.batchForget(items, 3), Buffer.alloc(8, 0xff)]);
  const r2 = decodeRequest(encodeRequest({ opcode: Opcode.BATCH_FORGET, unique: 2 }, partial));
  if (r2.kind === 'BATCH_FORGET') t.deepEqual(r2.items, items);
  // Fewer claimed than held: only the claimed ones.
  const r3 = decodeRequest(encodeRequest({ opcode: Opcode.BATCH_FORGET, unique: 2 }, requestBody.batchForget(items, 1)));
  if (r3.kind === 'BATCH_FORGET') t.deepEqual(r3.items, [items[0]]);
});

test('decode: short bodies are rejected with the request unique', (t) => {
  for (const op of [Opcode.FORGET, Opcode.BATCH_FORGET, Opcode.OPEN, Opcode.READ, Opcode.READDIR, Opcode.RELEASE, Opcode.FLUSH, Opcode.GETXATTR, Opcode.LISTXATTR, Opcode.ACCESS, Opcode.INTERRUPT, Opcode.POLL, Opcode.INIT]) {
    const e = t.throws(() => decodeRequest(encodeRequest({ opcode: op, unique: 40 + op, nodeId: 1 }, Buffer.alloc(4))), { instanceOf: FuseDecodeError });
    t.is(e?.unique, 40 + op, `opcode ${op}`);
  }
});

test('encode entry_out: byte-exact against fuse.h offsets', (t) => {
  const e: Entry = { nodeId: 2 ** 33 + 5, generation: 7, attr: ATTR, entryTimeout: 1.5, attrTimeout: 0.25 };
  const b = Buffer.alloc(EntryOut.SIZE + 16, 0xcc);
  t.is(encodeEntryOut(b, 16, e), 128);
  const o = 16;
  t.is(b.readBigUInt64LE(o + 0), 2n ** 33n + 5n); // nodeid
  t.is(b.readBigUInt64LE(o + 8), 7n); // generation
  t.is(b.readBigUInt64LE(o + 16), 1n); // entry_valid
  t.is(b.readBigUInt64LE(o + 24), 0n); // attr_valid
  t.is(b.readUInt32LE(o + 32), 500_000_000); // entry_valid_nsec
  t.is(b.readUInt32LE(o + 36), 250_000_000); // attr_valid_nsec
  const a = o + 40;
  t.is(b.readBigUInt64LE(a + 0), 0x1_2345_6789n); // ino
  t.is(b.readBigUInt64LE(a + 8), 5_000_000_000n); // size
  t.is(b.readBigUInt64LE(a + 16), 9765625n); // blocks
  t.is(b.readBigInt64LE(a + 24), 1_700_000_000n); // atime
  t.true(Math.abs(b.readUInt32LE(a + 48) - 123_456_000) < 1000); // atimensec (double ms: ~244 ns resolution at 2023)
  t.is(b.readBigInt64LE(a + 32), 1_600_000_000n); // mtime
  t.is(b.readBigInt64LE(a + 40), -2n); // ctime: -1.50025 s = -2 s + 0.49975 s
  t.is(b.readUInt32LE(a + 56), 499_750_000);
  t.is(b.readUInt32LE(a + 60), S_IFREG | 0o644); // mode
  t.is(b.readUInt32LE(a + 64), 3); // nlink
  t.is(b.readUInt32LE(a + 68), 1000);
  t.is(b.readUInt32LE(a + 72), 100);
  t.is(b.readUInt32LE(a + 76), 0);
  t.is(b.readUInt32LE(a + 80), 4096);
  t.is(b.readUInt32LE(a + 84), 0); // flags
  t.is(AttrLayout.SIZE + 40, EntryOut.SIZE);
  const back = decodeEntryOut(b, 16);
  t.is(back.nodeId, e.nodeId);
  t.is(back.entryTimeout, 1.5);
  t.deepEqual({ ...back.attr, atimeMs: Math.round(back.attr.atimeMs), ctimeMs: Math.round(back.attr.ctimeMs * 1000) }, {
    ...ATTR,
    atimeMs: Math.round(ATTR.atimeMs),
    ctimeMs: Math.round(ATTR.ctimeMs * 1000),
  } as typeof back.attr);
});

test('encode entry_out: negative entry has zero attr; compat size before 7.9', (t) => {
  const b = Buffer.alloc(EntryOut.SIZE, 0xcc);
  encodeEntryOut(b, 0, { nodeId: 0, generation: 0, attr: ATTR, entryTimeout: 3, attrTimeout: 0 });
  t.is(b.readBigUInt64LE(0), 0n);
  t.is(b.readBigUInt64LE(16), 3n);
  t.true(b.subarray(40).every((x) => x === 0));
  t.is(encodeEntryOut(b, 0, { nodeId: 2, generation: 0, attr: ATTR, entryTimeout: 0, attrTimeout: 0 }, 8), 120);
});

test('encode entry_out: bad values throw RangeError (never a bad wire value)', (t) => {
  const b = Buffer.alloc(EntryOut.SIZE);
  t.throws(() => encodeEntryOut(b, 0, { nodeId: -1, generation: 0, attr: ATTR, entryTimeout: 0, attrTimeout: 0 }), { instanceOf: RangeError });
  t.throws(() => encodeEntryOut(b, 0, { nodeId: 2, generation: 0, attr: { ...ATTR, mode: -5 }, entryTimeout: 0, attrTimeout: 0 }), { instanceOf: RangeError });
  t.throws(() => encodeEntryOut(b, 0, { nodeId: 2, generation: 0, attr: { ...ATTR, ino: 2 ** 60 }, entryTimeout: 0, attrTimeout: 0 }), { instanceOf: RangeError });
  t.throws(() => encodeEntryOut(b, 0, { nodeId: 2, generation: 0, attr: { ...ATTR, uid: 1.5 }, entryTimeout: 0, attrTimeout: 0 }), { instanceOf: RangeError });
  t.throws(() => encodeEntryOut(b, 0, { nodeId: 2, generation: 0, attr: { ...ATTR, nlink: 2 ** 32 }, entryTimeout: 0, attrTimeout: 0 }), { instanceOf: RangeError });
});

test('timeouts: negative/NaN → 0, fractional split, huge clamped', (t) => {
  const b = Buffer.alloc(104);
  for (const [to, sec, nsec] of [
    [-1, 0, 0],
    [Number.NaN, 0, 0],
    [0.000000001, 0, 1],
    [2.9999999999, 3, 0],
    [Infinity, Number.MAX_SAFE_INTEGER, 0],
  ] as const) {
    encodeAttrOut(b, 0, ATTR, to);
    const s = readU64(b, 0);
    const ns = b.readUInt32LE(8);
    t.true(ns < 1e9);
    t.is(s + ns / 1e9, sec + nsec / 1e9, `timeout ${to}`);
  }
});

test('attr_out and attr round-trip (property)', (t) => {
  fc.assert(
    fc.property(
      fc.record({
        ino: fc.maxSafeNat(),
        mode: fc.integer({ min: 0, max: 0xffffffff }),
        nlink: fc.integer({ min: 0, max: 0xffffffff }),
        uid: fc.integer({ min: 0, max: 0xffffffff }),
        gid: fc.integer({ min: 0, max: 0xffffffff }),
        size: fc.maxSafeNat(),
        blocks: fc.maxSafeNat(),
        blksize: fc.integer({ min: 0, max: 0xffffffff }),
        rdev: fc.integer({ min: 0, max: 0xffffffff }),
        atimeMs: fc.integer({ min: -(2 ** 40), max: 2 ** 40 }),
        mtimeMs: fc.integer({ min: -(2 ** 40), max: 2 ** 40 }),
        ctimeMs: fc.integer({ min: -(2 ** 40), max: 2 ** 40 }),
      }),
      fc.double({ min: 0, max: 1e6, noNaN: true }),
      (attr, timeout) => {
        const b = Buffer.alloc(104);
        t.is(encodeAttrOut(b, 0, attr, timeout), 104);
        const back = decodeAttrOut(b, 0);
        t.deepEqual(back.attr, attr);
        t.true(Math.abs(back.attrTimeout - timeout) < 1e-6 * Math.max(1, timeout));
        const c = Buffer.alloc(88);
        encodeAttr(c, 0, attr);
        t.deepEqual(decodeAttr(c, 0), attr);
      },
    ),
    { numRuns: 300 },
  );
});

test('init_out: byte-exact, sizes per kernel minor', (t) => {
  const b = Buffer.alloc(64, 0xcc);
  const r = { major: 7, minor: 45, maxReadahead: 131072, flags: (InitFlags.INIT_EXT | InitFlags.ASYNC_READ) >>> 0, flags2: 0x10, maxBackground: 12, congestionThreshold: 9, maxWrite: 4096, timeGran: 1, maxPages: 32 };
  t.is(encodeInitOut(b, 0, r, 45), 64);
  t.is(b.readUInt32LE(0), 7);
  t.is(b.readUInt32LE(4), 45);
  t.is(b.readUInt32LE(8), 131072);
  t.is(b.readUInt32LE(12), (InitFlags.INIT_EXT | InitFlags.ASYNC_READ) >>> 0);
  t.is(b.readUInt16LE(16), 12);
  t.is(b.readUInt16LE(18), 9);
  t.is(b.readUInt32LE(20), 4096);
  t.is(b.readUInt32LE(24), 1);
  t.is(b.readUInt16LE(28), 32);
  t.is(b.readUInt32LE(InitOut.flags2), 0x10);
  t.is(InitOut.flags2, 32);
  t.true(b.subarray(36).every((x) => x === 0));
  t.deepEqual(decodeInitOut(b, 0), r);
  t.is(initOutSize(4), 8);
  t.is(initOutSize(22), 24);
  t.is(initOutSize(23), 64);
});

test('open_out, statfs_out, getxattr_out, poll_out, error reply', (t) => {
  const b = Buffer.alloc(96, 0xcc);
  t.is(encodeOpenOut(b, 0, { fh: 2 ** 40, directIo: true, keepCache: true, nonSeekable: true, cacheDir: true, stream: true, noFlush: true }), 16);
  t.deepEqual(decodeOpenOut(b, 0), { fh: 2 ** 40, openFlags: 0x3f });
  t.is(b.readInt32LE(12), 0);
  const s = { blocks: 1, bfree: 2, bavail: 3, files: 4, ffree: 5, bsize: 4096, namelen: 255, frsize: 512 };
  b.fill(0xcc);
  t.is(encodeStatfsOut(b, 0, s), 80);
  t.deepEqual(decodeStatfsOut(b, 0), s);
  t.is(b.readUInt32LE(40), 4096);
  t.is(b.readUInt32LE(44), 255);
  t.true(b.subarray(52, 80).every((x) => x === 0));
  t.is(encodeStatfsOut(b, 0, s, 3), 48);
  t.is(encodeGetxattrOut(b, 0, 77), 8);
  t.is(b.readUInt32LE(0), 77);
  t.is(encodePollOut(b, 0, 0x145), 8);
  t.is(b.readUInt32LE(0), 0x145);
  t.is(encodeErrorReply(b, 0, 2 ** 35, Errno.ENOENT), 16);
  t.deepEqual(decodeOutHeader(b, 0), { len: 16, errno: 2, error: -2, unique: 2 ** 35 });
});

test('dirents: layout, alignment, fit, round-trip (plain and plus)', (t) => {
  const entries: DirEntry[] = [
    { name: '.', ino: 1, type: S_IFDIR, offset: 1 },
    { name: '..', ino: 1, type: S_IFDIR | 0o755, offset: 2 },
    { name: 'file-with-a-long-name.txt', ino: 2 ** 34, type: S_IFREG, offset: 3, entry: { nodeId: 2 ** 34, generation: 2, attr: ATTR, entryTimeout: 1, attrTimeout: 1 } },
    { name: 'l', ino: 9, type: S_IFLNK, offset: 4 },
  ];
  for (const plus of [false, true]) {
    const b = Buffer.alloc(4096, 0xcc);
    let off = 0;
    for (const d of entries) {
      const next = encodeDirent(b, off, 4096, d, plus);
      t.is(next - off, direntSize(Buffer.byteLength(d.name), plus));
      t.is(next % 8, 0);
      off = next;
    }
    // First dirent fields at the fuse.h offsets.
    const d0 = plus ? DirentPlus.dirent : 0;
    t.is(b.readBigUInt64LE(d0 + Dirent.ino), 1n);
    t.is(b.readBigUInt64LE(d0 + Dirent.off), 1n);
    t.is(b.readUInt32LE(d0 + Dirent.namelen), 1);
    t.is(b.readUInt32LE(d0 + Dirent.type), 4); // DT_DIR
    t.is(b.toString('latin1', d0 + 24, d0 + 25), '.');
    t.true(b.subarray(d0 + 25, d0 + 32).every((x) => x === 0), 'padding zeroed');
    const back = decodeDirents(b, 0, off, plus);
    t.deepEqual(back.map((d) => [d.name, d.ino, d.offset, d.type]), [
      ['.', 1, 1, 4],
      ['..', 1, 2, 4],
      ['file-with-a-long-name.txt', 2 ** 34, 3, 8],
      ['l', 9, 4, 10],
    ]);
    if (plus) {
      t.is(back[2]!.entry!.nodeId, 2 ** 34);
      t.is(back[0]!.entry!.nodeId, 0);
    }
    // Does not fit: nothing written, -1.
    const small = Buffer.alloc(64, 0xcc);
    t.is(encodeDirent(small, 0, plus ? 100 : 30, entries[2]!, plus), -1);
    t.true(small.every((x) => x === 0xcc));
  }
  t.throws(() => encodeDirent(Buffer.alloc(4096), 0, 4096, { name: '', ino: 1, type: 0, offset: 1 }, false), { instanceOf: RangeError });
});

test('notifications: byte-exact and decodable', (t) => {
  const a = encodeNotifyInvalEntry(1, 'abc', 1);
  t.is(a.length, 16 + 16 + 4);
  t.deepEqual(decodeOutHeader(a), { len: 36, errno: -NotifyCode.INVAL_ENTRY, error: NotifyCode.INVAL_ENTRY, unique: 0 });
  t.is(a.readUInt32LE(16 + 8), 3); // namelen excludes NUL
  t.is(a[a.length - 1], 0);
  t.deepEqual(decodeNotification(a), { code: 3, parent: 1, flags: 1, name: 'abc' });
  const i = encodeNotifyInvalInode(5, -1, 0);
  t.is(i.length, 40);
  t.deepEqual(decodeNotification(i), { code: 2, nodeId: 5, off: -1, len: 0 });
  const d = encodeNotifyDelete(1, 7, 'x');
  t.is(d.length, 16 + 24 + 2);
  t.deepEqual(decodeNotification(d), { code: 6, parent: 1, child: 7, name: 'x' });
  const p = encodeNotifyPollWakeup(2 ** 40 + 3);
  t.is(p.length, 16 + 8);
  t.deepEqual(decodeNotification(p), { code: NotifyCode.POLL, kh: 2 ** 40 + 3 });
  t.throws(() => encodeNotifyInvalEntry(1, 'a/b', 0), { instanceOf: RangeError });
  t.throws(() => encodeNotifyInvalEntry(1, '', 0), { instanceOf: RangeError });
});

// ---------------------------------------------------------------------------------------------
// Fuzzing: the decoder throws only FuseDecodeError, never reads past `end`, never hangs.
// ---------------------------------------------------------------------------------------------

function decodeOutcome(buf: Buffer, start: number, end: number): unknown {
  try {
    const r = decodeRequest(buf, start, end);
    return JSON.parse(JSON.stringify(r, (_k, v: unknown) => (v === undefined ? null : v)));
  } catch (err) {
    if (!(err instanceof FuseDecodeError)) throw err;
    return { error: err.message, errno: err.errno, unique: err.unique ?? null };
  }
}

const OPCODES = fc.oneof(fc.constantFrom(...Object.values(Opcode)), fc.integer({ min: 0, max: 0xffffffff }));

test('fuzz: random bytes decode to a request or FuseDecodeError only', (t) => {
  t.notThrows(() =>
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), (bytes) => {
        // decodeOutcome rethrows anything but a FuseDecodeError (no hang: ava's timeout guards).
        const buf = Buffer.from(bytes);
        const outcome = decodeOutcome(buf, 0, buf.length);
        return typeof outcome === 'object' && outcome !== null;
      }),
      { numRuns: 3000 },
    ),
  );
});

test('fuzz: well-formed headers with random opcode and body', (t) => {
  t.notThrows(() =>
    fc.assert(
      fc.property(OPCODES, fc.uint8Array({ maxLength: 200 }), fc.nat(), (opcode, body, unique) => {
        const buf = encodeRequest({ opcode, unique, nodeId: 1 }, Buffer.from(body));
        decodeOutcome(buf, 0, buf.length);
      }),
      { numRuns: 3000 },
    ),
  );
});

test('fuzz: mutated and truncated valid requests; result independent of bytes past `end`', (t) => {
  const valid = REQUESTS.map(([, b]) => b);
  fc.assert(
    fc.property(
      fc.constantFrom(...valid),
      fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { maxLength: 6 }),
      fc.nat(),
      fc.option(fc.integer({ min: 0, max: 0xffffffff })),
      fc.uint8Array({ minLength: 1, maxLength: 64 }),
      (base, flips, cut, lenField, trailer) => {
        const m = Buffer.from(base);
        for (const [pos, val] of flips) m[pos % m.length] = val;
        if (lenField !== null) m.writeUInt32LE(lenField, 0);
        const end = cut % (m.length + 1);
        const tight = Buffer.from(m.subarray(0, end));
        const a = decodeOutcome(tight, 0, tight.length);
        // Same bytes in a bigger buffer, followed by garbage: identical outcome.
        const loose = Buffer.concat([Buffer.from([1, 2, 3]), tight, Buffer.from(trailer)]);
        const b = decodeOutcome(loose, 3, 3 + end);
        t.deepEqual(b, a);
      },
    ),
    { numRuns: 3000 },
  );
});

test('a resent request keeps bit 63 of its unique, and the reply echoes it exactly', (t) => {
  // The kernel sets FUSE_UNIQUE_RESEND (1 << 63) on requests it resends after FUSE_NOTIFY_RESEND.
  const raw = Buffer.alloc(8);
  raw.writeBigUInt64LE((1n << 63n) | 0x1_2345_6788n);
  const unique = readUnique(raw, 0);
  t.true(isResent(unique));
  t.is(unique, RESENT_UNIQUE + 0x1_2345_6788);
  const out = Buffer.alloc(16);
  encodeOutHeaderRaw(out, 0, 16, 0, unique);
  t.is(out.readBigUInt64LE(8), (1n << 63n) | 0x1_2345_6788n);
  // An ordinary unique is unchanged both ways.
  raw.writeBigUInt64LE(42n);
  t.false(isResent(readUnique(raw, 0)));
  encodeOutHeaderRaw(out, 0, 16, 0, readUnique(raw, 0));
  t.is(out.readBigUInt64LE(8), 42n);
});
