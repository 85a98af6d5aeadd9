/**
 * FuseSession over a fake channel: the contract rules without a kernel.
 */
import test from 'ava';
import fc from 'fast-check';
import {
  DEFAULT_POLLMASK,
  FUSE_POLL_SCHEDULE_NOTIFY,
  Errno,
  FuseError,
  InitFlags,
  InitFlags2,
  MUTATING_OPCODES,
  NotifyCode,
  NotifyNotSupportedError,
  Opcode,
  S_IFREG,
  type Entry,
  type LowLevelFileSystem,
  type RequestContext,
} from '../../src/fuse/index.js';
import { KERNEL_FLAGS_745, harness } from './helpers/session-harness.js';
import { SAMPLE_TREE, TreeFs } from './helpers/tree-fs.js';
import { decodeDirents, decodeEntryOut, decodeAttrOut, decodeInitOut, decodeNotification, decodeOpenOut, decodeOutHeader, decodeStatfsOut, encodeRequest, requestBody } from '../../src/testing/kernel-codec.js';

const tick = (): Promise<void> => new Promise((r) => setImmediate(r));
/** The same object, typed as the interface so tests can swap handlers for async ones. */
const ll = (fs: TreeFs): LowLevelFileSystem => fs;

function initialised(fs: LowLevelFileSystem = new TreeFs(SAMPLE_TREE), opts = {}, level: 'info' | 'debug' | 'warn' = 'info') {
  const h = harness(fs, opts, level);
  const u = h.init();
  const r = h.ch.reply(u)!;
  if (r.h.errno !== 0) throw new Error('INIT failed');
  return h;
}

// ---------------------------------------------------------------------------------------------
// INIT
// ---------------------------------------------------------------------------------------------

test('INIT: 7.45 kernel → 7.45, only offered flags, what a read-only pseudo-fs wants', (t) => {
  const fs = new TreeFs(SAMPLE_TREE);
  const h = harness(fs);
  const u = h.init();
  const r = h.ch.reply(u)!;
  t.is(r.h.errno, 0);
  t.is(r.body.length, 64);
  const o = decodeInitOut(r.body, 0);
  t.is(o.major, 7);
  t.is(o.minor, 45);
  t.is(o.maxReadahead, 131072);
  t.is(o.maxWrite, 4096);
  t.is(o.timeGran, 1);
  t.is((o.flags & ~KERNEL_FLAGS_745) >>> 0, 0, 'nothing the kernel did not offer');
  for (const f of ['ASYNC_READ', 'DO_READDIRPLUS', 'READDIRPLUS_AUTO', 'PARALLEL_DIROPS', 'EXPORT_SUPPORT', 'AUTO_INVAL_DATA', 'INIT_EXT'] as const) {
    t.truthy(o.flags & InitFlags[f], `wants ${f}`);
  }
  for (const f of ['POSIX_ACL', 'WRITEBACK_CACHE', 'ATOMIC_O_TRUNC', 'POSIX_LOCKS', 'FLOCK_LOCKS', 'SPLICE_READ', 'SPLICE_WRITE', 'EXPLICIT_INVAL_DATA', 'CACHE_SYMLINKS', 'HANDLE_KILLPRIV'] as const) {
    t.falsy(o.flags & InitFlags[f], `does not want ${f}`);
  }
  t.is(o.flags2, InitFlags2.DIRECT_IO_ALLOW_MMAP);
  const c = h.session.connection!;
  t.is(c.minor, 45);
  t.is(c.kernelMinor, 45);
  t.is(c.flags, o.flags);
  t.is(c.flags2, o.flags2);
  t.true(c.capabilities.readdirplus && c.capabilities.notifyExpireOnly && c.capabilities.notifyDelete);
  t.is(fs.conn, c, 'init() got the ConnectionInfo');
  return h.session.ready.then((r) => t.is(r, c, 'ready resolves with the ConnectionInfo'));
  t.truthy(fs.notifier);
  t.is(c.entryTimeout, 1);
});

test('INIT: older kernel (7.31, no INIT_EXT) → min version, no flags2, full-size reply', (t) => {
  const h = harness(new TreeFs(SAMPLE_TREE));
  const u = h.init({ minor: 31, flags: InitFlags.ASYNC_READ | InitFlags.DO_READDIRPLUS | InitFlags.EXPORT_SUPPORT, flags2: 0xff });
  const r = h.ch.reply(u)!;
  const o = decodeInitOut(r.body, 0);
  t.is(o.minor, 31);
  t.is(o.flags, InitFlags.ASYNC_READ | InitFlags.DO_READDIRPLUS | InitFlags.EXPORT_SUPPORT);
  t.is(o.flags2, 0);
  t.false(h.session.connection!.capabilities.notifyExpireOnly);
});

test('INIT: 7.20 kernel gets the 24-byte compat reply; 7.4 the 8-byte one', (t) => {
  const a = harness(new TreeFs(SAMPLE_TREE));
  t.is(a.ch.reply(a.init({ minor: 20, flags: 0 }))!.body.length, 24);
  const b = harness(new TreeFs(SAMPLE_TREE));
  t.is(b.ch.reply(b.init({ minor: 4, flags: 0 }))!.body.length, 8);
});

test('INIT: newer major → answer 7 and wait for a second INIT; older major → EPROTO', (t) => {
  const h = harness(new TreeFs(SAMPLE_TREE));
  const u = h.init({ major: 8, minor: 0 });
  const o = decodeInitOut(h.ch.reply(u)!.body, 0);
  t.is(o.major, 7);
  t.is(h.session.connection, undefined);
  const u2 = h.init();
  t.is(decodeInitOut(h.ch.reply(u2)!.body, 0).minor, 45);
  t.truthy(h.session.connection);
  const old = harness(new TreeFs(SAMPLE_TREE));
  t.is(old.ch.reply(old.init({ major: 6 }))!.h.errno, Errno.EPROTO);
});

test('INIT options: readdirplus always/off, explicit inval data, no export support', (t) => {
  const a = harness(new TreeFs(SAMPLE_TREE), { readdirplus: 'always', invalData: 'explicit', exportSupport: false });
  const o = decodeInitOut(a.ch.reply(a.init())!.body, 0);
  t.truthy(o.flags & InitFlags.DO_READDIRPLUS);
  t.falsy(o.flags & InitFlags.READDIRPLUS_AUTO);
  t.truthy(o.flags & InitFlags.EXPLICIT_INVAL_DATA);
  t.falsy(o.flags & InitFlags.AUTO_INVAL_DATA);
  t.falsy(o.flags & InitFlags.EXPORT_SUPPORT);
  t.truthy(o.flags2 & InitFlags2.NO_EXPORT_SUPPORT);
  const b = harness(new TreeFs(SAMPLE_TREE), { readdirplus: 'off' });
  const ob = decodeInitOut(b.ch.reply(b.init())!.body, 0);
  t.falsy(ob.flags & (InitFlags.DO_READDIRPLUS | InitFlags.READDIRPLUS_AUTO));
});

test('requests before INIT → EIO; a second INIT → EIO', (t) => {
  const h = harness(new TreeFs(SAMPLE_TREE));
  const u = h.send(Opcode.GETATTR, 1, requestBody.getattr());
  t.is(h.ch.reply(u)!.h.errno, Errno.EIO);
  h.send(Opcode.FORGET, 2, requestBody.forget(1));
  t.is(h.ch.replies.length, 1, 'FORGET is never answered, even before INIT');
  h.init();
  t.is(h.ch.reply(h.init())!.h.errno, Errno.EIO);
});

// ---------------------------------------------------------------------------------------------
// Lookups, attributes, directories
// ---------------------------------------------------------------------------------------------

test('LOOKUP / GETATTR: sync results are answered synchronously (no microtask)', (t) => {
  const fs = new TreeFs(SAMPLE_TREE);
  const h = initialised(fs);
  const u = h.send(Opcode.LOOKUP, 1, requestBody.lookup('dir'));
  const r = h.ch.reply(u);
  t.truthy(r, 'reply written before send() returned');
  const e = decodeEntryOut(r!.body, 0);
  t.is(e.nodeId, fs.idOf('dir'));
  t.is(e.attr.ino, fs.idOf('dir'));
  t.is(e.generation, 1);
  const g = h.send(Opcode.GETATTR, e.nodeId, requestBody.getattr());
  const a = decodeAttrOut(h.ch.reply(g)!.body, 0);
  t.is(a.attr.ino, e.nodeId);
  t.is(h.ch.reply(h.send(Opcode.LOOKUP, 1, requestBody.lookup('nope')))!.h.errno, Errno.ENOENT);
});

test('handler context carries uid/gid/pid/unique/nodeId', (t) => {
  let seen: RequestContext | undefined;
  const fs = new TreeFs(SAMPLE_TREE);
  const orig = fs.lookup.bind(fs);
  ll(fs).lookup = (ctx, p, n) => {
    seen = ctx;
    return orig(ctx, p, n);
  };
  const h = initialised(fs);
  const u = h.send(Opcode.LOOKUP, 1, requestBody.lookup('dir'));
  t.like(seen, { uid: 1000, gid: 1000, pid: 4242, unique: u, nodeId: 1, opcode: Opcode.LOOKUP });
  t.false(seen!.signal.aborted);
});

test('negative entry (nodeId 0) is sent as a cached ENOENT and counts nothing', (t) => {
  const fs = new TreeFs(SAMPLE_TREE);
  ll(fs).lookup = () => ({ nodeId: 0, generation: 0, attr: fs.attr(fs.nodes.get(1)!), entryTimeout: 5, attrTimeout: 0 });
  const h = initialised(fs);
  h.ch.failWrite = () => 'ENOENT';
  h.send(Opcode.LOOKUP, 1, requestBody.lookup('x'));
  t.deepEqual(fs.forgetCalls, [], 'nothing to give back for a negative entry');
  h.ch.failWrite = undefined;
  const e = decodeEntryOut(h.ch.reply(h.send(Opcode.LOOKUP, 1, requestBody.lookup('x')))!.body, 0);
  t.is(e.nodeId, 0);
  t.is(e.entryTimeout, 5);
});

test('READDIR adds no references; READDIRPLUS adds one per entry except . and ..', (t) => {
  const fs = new TreeFs(SAMPLE_TREE);
  const h = initialised(fs);
  const dir = fs.idOf('dir');
  const u1 = h.send(Opcode.READDIR, dir, requestBody.read({ size: 4096 }));
  const plain = decodeDirents(h.ch.reply(u1)!.body, 0, h.ch.reply(u1)!.body.length, false);
  t.deepEqual(plain.map((d) => d.name), ['.', '..', 'hello.txt', 'big.bin', 'link', 'sub']);
  t.is(fs.given, 0);
  const u2 = h.send(Opcode.READDIRPLUS, dir, requestBody.read({ size: 4096 }));
  const body = h.ch.reply(u2)!.body;
  const plus = decodeDirents(body, 0, body.length, true);
  t.deepEqual(plus.map((d) => [d.name, d.entry!.nodeId]), [
    ['.', 0],
    ['..', 0],
    ['hello.txt', fs.idOf('dir/hello.txt')],
    ['big.bin', fs.idOf('dir/big.bin')],
    ['link', fs.idOf('dir/link')],
    ['sub', fs.idOf('dir/sub')],
  ]);
  for (const d of plus.slice(2)) t.is(d.ino, d.entry!.attr.ino, `st_ino agrees for ${d.name}`);
  t.is(fs.given, 4);
  t.deepEqual(fs.forgetCalls, []);
  // Continue from a cookie.
  const u3 = h.send(Opcode.READDIR, dir, requestBody.read({ size: 4096, offset: 4 }));
  const rest = h.ch.reply(u3)!.body;
  t.deepEqual(decodeDirents(rest, 0, rest.length, false).map((d) => d.name), ['link', 'sub']);
});

test('READDIRPLUS: entries that do not fit are given back', (t) => {
  const fs = new TreeFs(SAMPLE_TREE);
  const h = initialised(fs);
  const dir = fs.idOf('dir');
  // "." (160) + ".." (160) + "hello.txt" (168) = 488 bytes; 500 fits 3 entries.
  const u = h.send(Opcode.READDIRPLUS, dir, requestBody.read({ size: 500 }));
  const body = h.ch.reply(u)!.body;
  t.deepEqual(decodeDirents(body, 0, body.length, true).map((d) => d.name), ['.', '..', 'hello.txt']);
  t.is(fs.given, 4);
  t.deepEqual(fs.forgetCalls.map(([n]) => n).sort(), [fs.idOf('dir/big.bin'), fs.idOf('dir/link'), fs.idOf('dir/sub')].sort());
  t.is(fs.outstanding(), 1);
  t.is(h.session.stats.givenBack, 3);
});

test('give back: failed LOOKUP reply write (ENOENT, interrupted) → forget(nodeId, 1)', (t) => {
  const fs = new TreeFs(SAMPLE_TREE);
  const h = initialised(fs);
  h.ch.failWrite = () => 'ENOENT';
  h.send(Opcode.LOOKUP, 1, requestBody.lookup('dir'));
  t.deepEqual(fs.forgetCalls, [[fs.idOf('dir'), 1]]);
  t.is(fs.outstanding(), 0);
  t.deepEqual(fs.violations, []);
  h.ch.failWrite = () => 'ENODEV';
  h.send(Opcode.LOOKUP, 1, requestBody.lookup('top.txt'));
  t.is(fs.outstanding(), 0, 'given back on ENODEV too');
  t.is(h.session.stats.failedReplies, 2);
});

test('give back: failed READDIRPLUS reply write → one forget per non-dot entry', (t) => {
  const fs = new TreeFs(SAMPLE_TREE);
  const h = initialised(fs);
  h.ch.failWrite = () => 'ENOENT';
  h.send(Opcode.READDIRPLUS, fs.idOf('dir'), requestBody.read({ size: 4096 }));
  t.is(fs.given, 4);
  t.is(fs.forgetCalls.length, 4);
  t.true(fs.forgetCalls.every(([, n]) => n === 1));
  t.is(fs.outstanding(), 0);
  t.deepEqual(fs.violations, []);
});

test('give back: async LOOKUP whose reply fails after the handler resolved', async (t) => {
  const fs = new TreeFs(SAMPLE_TREE);
  const sync = fs.lookup.bind(fs);
  ll(fs).lookup = async (ctx, p, n) => {
    await tick();
    return sync(ctx, p, n);
  };
  const h = initialised(fs);
  h.ch.failWrite = () => 'ENOENT';
  h.send(Opcode.LOOKUP, 1, requestBody.lookup('dir'));
  t.is(h.ch.writes, 1, 'only INIT so far');
  await tick();
  await tick();
  t.deepEqual(fs.forgetCalls, [[fs.idOf('dir'), 1]]);
});

test('an entry that cannot be encoded → EIO + log, and its reference is given back', (t) => {
  const fs = new TreeFs(SAMPLE_TREE);
  const sync = fs.lookup.bind(fs);
  ll(fs).lookup = (ctx, p, n) => ({ ...sync(ctx, p, n), generation: -1 });
  const h = initialised(fs);
  const u = h.send(Opcode.LOOKUP, 1, requestBody.lookup('dir'));
  t.is(h.ch.reply(u)!.h.errno, Errno.EIO);
  t.is(fs.outstanding(), 0);
  t.true(h.lines.some((l) => l.level === 50 && /invalid reply/.test(l.msg)));
});

// ---------------------------------------------------------------------------------------------
// FORGET / BATCH_FORGET
// ---------------------------------------------------------------------------------------------

test('FORGET and BATCH_FORGET are never answered; BATCH_FORGET is clamped to its payload', (t) => {
  const fs = new TreeFs(SAMPLE_TREE);
  const h = initialised(fs);
  const before = h.ch.replies.length;
  h.send(Opcode.LOOKUP, 1, requestBody.lookup('dir'));
  h.send(Opcode.LOOKUP, 1, requestBody.lookup('dir'));
  h.send(Opcode.LOOKUP, 1, requestBody.lookup('top.txt'));
  h.send(Opcode.FORGET, fs.idOf('dir'), requestBody.forget(1));
  h.send(
    Opcode.BATCH_FORGET,
    0,
    requestBody.batchForget(
      [
        { nodeId: fs.idOf('dir'), nlookup: 1 },
        { nodeId: fs.idOf('top.txt'), nlookup: 1 },
      ],
      1_000_000,
    ),
  );
  t.is(h.ch.replies.length, before + 3, 'only the three lookups were answered');
  t.deepEqual(fs.forgetCalls, [
    [fs.idOf('dir'), 1],
    [fs.idOf('dir'), 1],
    [fs.idOf('top.txt'), 1],
  ]);
  t.is(fs.outstanding(), 0);
  t.true(h.lines.some((l) => /clamped/.test(l.msg) && l.declared === 1_000_000 && l.held === 2));
  // A truncated BATCH_FORGET header: logged, not answered.
  h.send(Opcode.BATCH_FORGET, 0, Buffer.alloc(4));
  t.is(h.ch.replies.length, before + 3);
});

test('FORGET arrives with uid 0 and is never permission-checked', (t) => {
  const fs = new TreeFs(SAMPLE_TREE);
  ll(fs).access = () => {
    throw new FuseError(Errno.EACCES);
  };
  const h = initialised(fs);
  h.send(Opcode.LOOKUP, 1, requestBody.lookup('dir'));
  h.ch.push(encodeRequest({ opcode: Opcode.FORGET, unique: h.next(), nodeId: fs.idOf('dir'), uid: 0, gid: 0, pid: 0 }, requestBody.forget(1)));
  t.is(fs.outstanding(), 0);
});

// ---------------------------------------------------------------------------------------------
// Read-only, unknown, malformed
// ---------------------------------------------------------------------------------------------

test('every mutating opcode → EROFS', (t) => {
  const h = initialised();
  for (const op of MUTATING_OPCODES) {
    const u = h.send(op, 1, Buffer.alloc(64));
    t.is(h.ch.reply(u)!.h.errno, Errno.EROFS, `opcode ${op}`);
  }
});

test('unknown and unimplemented opcodes → ENOSYS; NOTIFY_REPLY is not answered', (t) => {
  const h = initialised();
  for (const op of [7, 19, 99, 5000, Opcode.STATX, Opcode.IOCTL, Opcode.BMAP, Opcode.GETLK, Opcode.FSYNC, Opcode.FSYNCDIR, Opcode.LSEEK, Opcode.SYNCFS, Opcode.SETUPMAPPING, Opcode.CUSE_INIT]) {
    const u = h.send(op, 1, Buffer.alloc(32));
    t.is(h.ch.reply(u)!.h.errno, Errno.ENOSYS, `opcode ${op}`);
  }
  const n = h.ch.replies.length;
  h.send(Opcode.NOTIFY_REPLY, 1, Buffer.alloc(40));
  t.is(h.ch.replies.length, n);
});

test('OPEN for writing or truncating → EROFS (unless allowWriteOpen); read-only open reaches open()', (t) => {
  const fs = new TreeFs(SAMPLE_TREE);
  const h = initialised(fs);
  const f = fs.idOf('top.txt');
  for (const flags of [0o1, 0o2, 0o1000, 0o1 | 0o100]) {
    t.is(h.ch.reply(h.send(Opcode.OPEN, f, requestBody.open(flags)))!.h.errno, Errno.EROFS, `flags ${flags.toString(8)}`);
  }
  const ok = h.ch.reply(h.send(Opcode.OPEN, f, requestBody.open(0o100000)))!;
  t.deepEqual(decodeOpenOut(ok.body, 0), { fh: f * 10, openFlags: 0 });
  const w = new TreeFs(SAMPLE_TREE);
  (w as { allowWriteOpen?: boolean }).allowWriteOpen = true;
  const hw = initialised(w);
  t.is(hw.ch.reply(hw.send(Opcode.OPEN, f, requestBody.open(0o2)))!.h.errno, 0);
});

test('a failed OPEN reply releases the handle (nobody else will)', (t) => {
  const fs = new TreeFs(SAMPLE_TREE);
  const released: number[] = [];
  ll(fs).release = (_c, _n, fh) => {
    released.push(fh);
  };
  const h = initialised(fs);
  h.ch.failWrite = () => 'ENOENT';
  h.send(Opcode.OPEN, fs.idOf('top.txt'), requestBody.open(0));
  t.deepEqual(released, [fs.idOf('top.txt') * 10]);
});

test('malformed requests: error reply + log line, never a crash', (t) => {
  const h = initialised();
  // LOOKUP name without NUL → EINVAL
  const u = h.next();
  h.ch.push(encodeRequest({ opcode: Opcode.LOOKUP, unique: u, nodeId: 1 }, Buffer.from('abc')));
  t.is(h.ch.reply(u)!.h.errno, Errno.EINVAL);
  // READ with a short body → EINVAL
  const u2 = h.next();
  h.ch.push(encodeRequest({ opcode: Opcode.READ, unique: u2, nodeId: 1 }, Buffer.alloc(8)));
  t.is(h.ch.reply(u2)!.h.errno, Errno.EINVAL);
  // len field larger than what was read → EIO
  const u3 = h.next();
  h.ch.push(encodeRequest({ opcode: Opcode.GETATTR, unique: u3, nodeId: 1, len: 4000 }, requestBody.getattr()));
  t.is(h.ch.reply(u3)!.h.errno, Errno.EIO);
  // len field smaller than a header → EIO
  const u4 = h.next();
  h.ch.push(encodeRequest({ opcode: Opcode.GETATTR, unique: u4, nodeId: 1, len: 10 }, requestBody.getattr()));
  t.is(h.ch.reply(u4)!.h.errno, Errno.EIO);
  t.is(h.session.stats.malformed, 4);
  t.true(h.lines.filter((l) => l.level === 40).length >= 4);
});

test('a read too short for a header is logged and dropped', (t) => {
  const h = initialised();
  const n = h.ch.replies.length;
  h.ch.push(Buffer.alloc(20, 7));
  t.is(h.ch.replies.length, n);
  t.true(h.lines.some((l) => /too short for a header/.test(l.msg)));
});

test('two requests in one read are both answered (defensive framing)', (t) => {
  const h = initialised();
  const a = h.next();
  const b = h.next();
  h.ch.push(
    Buffer.concat([
      encodeRequest({ opcode: Opcode.LOOKUP, unique: a, nodeId: 1 }, requestBody.lookup('dir')),
      encodeRequest({ opcode: Opcode.GETATTR, unique: b, nodeId: 1 }, requestBody.getattr()),
    ]),
  );
  t.is(h.ch.reply(a)!.h.errno, 0);
  t.is(h.ch.reply(b)!.h.errno, 0);
});

test('fuzz: random reads never throw out of the session; every reply is well-formed', (t) => {
  const fs = new TreeFs(SAMPLE_TREE);
  const h = initialised(fs, {}, 'warn');
  t.notThrows(() =>
    fc.assert(
      fc.property(
        fc.oneof(
          fc.uint8Array({ maxLength: 200 }).map((b) => Buffer.from(b)),
          fc
            .tuple(fc.integer({ min: 0, max: 60 }), fc.nat({ max: 12 }), fc.uint8Array({ maxLength: 120 }), fc.option(fc.nat({ max: 400 })))
            .map(([op, node, body, len]) => encodeRequest({ opcode: op, unique: 2 * (1 + (node + 1) * 1000), nodeId: node, ...(len === null ? {} : { len }) }, Buffer.from(body))),
        ),
        (buf) => {
          if (buf.length === 0) return;
          const before = h.ch.replies.length;
          h.ch.push(buf);
          for (const r of h.ch.replies.slice(before)) {
            const hd = decodeOutHeader(r);
            if (hd.len !== r.length) return false;
            if (hd.errno < 0 || hd.errno > 4095) return false;
          }
          return true;
        },
      ),
      { numRuns: 2000 },
    ),
  );
});

test('handler throwing a non-FuseError → EIO and an error log line', async (t) => {
  const fs = new TreeFs(SAMPLE_TREE);
  ll(fs).getattr = () => {
    throw new TypeError('boom');
  };
  ll(fs).readlink = () => Promise.reject(new Error('async boom'));
  const h = initialised(fs);
  t.is(h.ch.reply(h.send(Opcode.GETATTR, 1, requestBody.getattr()))!.h.errno, Errno.EIO);
  const u = h.send(Opcode.READLINK, fs.idOf('dir/link'));
  await tick();
  t.is(h.ch.reply(u)!.h.errno, Errno.EIO);
  t.is(h.lines.filter((l) => l.level === 50 && /answering EIO/.test(l.msg)).length, 2);
});

// ---------------------------------------------------------------------------------------------
// Defaults for missing handlers and the sized replies
// ---------------------------------------------------------------------------------------------

test('defaults: getxattr and listxattr ENOSYS (the kernel stops asking), access, statfs, open/opendir fh 0, poll ready', (t) => {
  const fs: LowLevelFileSystem = {
    lookup: () => {
      throw new FuseError(Errno.ENOENT);
    },
    forget: () => undefined,
    getattr: () => {
      throw new FuseError(Errno.ENOENT);
    },
  };
  const h = initialised(fs);
  t.is(h.ch.reply(h.send(Opcode.GETXATTR, 1, requestBody.getxattr(0, 'user.x')))!.h.errno, Errno.ENOSYS);
  t.is(h.ch.reply(h.send(Opcode.LISTXATTR, 1, requestBody.listxattr(0)))!.h.errno, Errno.ENOSYS);
  t.is(h.ch.reply(h.send(Opcode.LISTXATTR, 1, requestBody.listxattr(100)))!.h.errno, Errno.ENOSYS);
  t.is(h.ch.reply(h.send(Opcode.ACCESS, 1, requestBody.access(4)))!.h.errno, 0);
  t.is(h.ch.reply(h.send(Opcode.ACCESS, 1, requestBody.access(2)))!.h.errno, Errno.EROFS);
  const st = decodeStatfsOut(h.ch.reply(h.send(Opcode.STATFS, 1))!.body, 0);
  t.is(st.namelen, 255);
  t.is(st.blocks, 0);
  t.deepEqual(decodeOpenOut(h.ch.reply(h.send(Opcode.OPEN, 1, requestBody.open(0)))!.body, 0), { fh: 0, openFlags: 0 });
  t.deepEqual(decodeOpenOut(h.ch.reply(h.send(Opcode.OPENDIR, 1, requestBody.open(0)))!.body, 0), { fh: 0, openFlags: 0 });
  t.is(h.ch.reply(h.send(Opcode.POLL, 1, requestBody.poll(0, 1, 0, 1)))!.body.readUInt32LE(0), DEFAULT_POLLMASK);
  t.is(h.ch.reply(h.send(Opcode.RELEASE, 1, requestBody.release(0)))!.h.errno, 0);
  t.is(h.ch.reply(h.send(Opcode.RELEASEDIR, 1, requestBody.release(0)))!.h.errno, 0);
  t.is(h.ch.reply(h.send(Opcode.FLUSH, 1, requestBody.flush(0)))!.h.errno, Errno.ENOSYS, 'no flush: the kernel stops sending FLUSH');
  t.is(h.ch.reply(h.send(Opcode.READ, 1, requestBody.read({ size: 10 })))!.h.errno, Errno.ENOSYS);
  t.is(h.ch.reply(h.send(Opcode.READDIR, 1, requestBody.read({ size: 4096 })))!.h.errno, Errno.ENOSYS);
  t.is(h.ch.reply(h.send(Opcode.READLINK, 1))!.h.errno, Errno.ENOSYS);
});

test('getxattr/listxattr: size probe, exact fit, ERANGE', (t) => {
  const fs = new TreeFs(SAMPLE_TREE);
  const h = initialised(fs);
  const id = fs.idOf('top.txt');
  const probe = h.ch.reply(h.send(Opcode.GETXATTR, id, requestBody.getxattr(0, 'user.id')))!;
  t.is(probe.body.readUInt32LE(0), `id=${id}`.length);
  t.is(h.ch.reply(h.send(Opcode.GETXATTR, id, requestBody.getxattr(10, 'user.id')))!.body.toString(), `id=${id}`);
  t.is(h.ch.reply(h.send(Opcode.GETXATTR, id, requestBody.getxattr(2, 'user.id')))!.h.errno, Errno.ERANGE);
  t.is(h.ch.reply(h.send(Opcode.LISTXATTR, id, requestBody.listxattr(0)))!.body.readUInt32LE(0), 8);
  t.is(h.ch.reply(h.send(Opcode.LISTXATTR, id, requestBody.listxattr(8)))!.body.toString(), 'user.id\0');
  t.is(h.ch.reply(h.send(Opcode.LISTXATTR, id, requestBody.listxattr(4)))!.h.errno, Errno.ERANGE);
});

test('READ: data cut to the requested size; large data written as one message', (t) => {
  const fs = new TreeFs(SAMPLE_TREE);
  const h = initialised(fs);
  const big = fs.idOf('dir/big.bin');
  const writes = h.ch.writes;
  const r = h.ch.reply(h.send(Opcode.READ, big, requestBody.read({ size: 131072, offset: 1000 })))!;
  t.is(h.ch.writes, writes + 1);
  t.is(r.body.length, 131072);
  t.true(r.body.equals(fs.nodes.get(big)!.content!.subarray(1000, 1000 + 131072)));
  const fsx = new TreeFs(SAMPLE_TREE);
  ll(fsx).read = () => Buffer.alloc(100, 1);
  const h2 = initialised(fsx);
  t.is(h2.ch.reply(h2.send(Opcode.READ, 2, requestBody.read({ size: 10 })))!.body.length, 10);
  t.is(h.ch.reply(h.send(Opcode.READLINK, fs.idOf('dir/link')))!.body.toString(), 'hello.txt');
});

// ---------------------------------------------------------------------------------------------
// Concurrency and INTERRUPT
// ---------------------------------------------------------------------------------------------

test('several requests in flight; each reply is one write with the right unique', async (t) => {
  const fs = new TreeFs(SAMPLE_TREE);
  const gates: Array<() => void> = [];
  const sync = fs.lookup.bind(fs);
  ll(fs).lookup = (ctx, p, n) =>
    new Promise<Entry>((resolve) => {
      gates.push(() => resolve(sync(ctx, p, n)));
    });
  const h = initialised(fs);
  const a = h.send(Opcode.LOOKUP, 1, requestBody.lookup('dir'));
  const b = h.send(Opcode.LOOKUP, 1, requestBody.lookup('top.txt'));
  const c = h.send(Opcode.GETATTR, 1, requestBody.getattr());
  t.truthy(h.ch.reply(c), 'sync getattr answered while lookups are pending');
  t.falsy(h.ch.reply(a));
  gates[1]!();
  await tick();
  t.is(decodeEntryOut(h.ch.reply(b)!.body, 0).nodeId, fs.idOf('top.txt'));
  t.falsy(h.ch.reply(a));
  gates[0]!();
  await tick();
  t.is(decodeEntryOut(h.ch.reply(a)!.body, 0).nodeId, fs.idOf('dir'));
  t.is(h.ch.writes, 4);
});

test('INTERRUPT aborts the in-flight request signal; the handler answers EINTR', async (t) => {
  const fs = new TreeFs(SAMPLE_TREE);
  let signal: AbortSignal | undefined;
  ll(fs).lookup = (ctx) =>
    new Promise<Entry>((_resolve, reject) => {
      signal = ctx.signal;
      ctx.signal.addEventListener('abort', () => reject(ctx.signal.reason as Error));
    });
  const h = initialised(fs);
  const u = h.send(Opcode.LOOKUP, 1, requestBody.lookup('dir'));
  t.false(signal!.aborted);
  h.send(Opcode.INTERRUPT, 0, requestBody.interrupt(u), u | 1);
  t.true(signal!.aborted);
  await tick();
  t.is(h.ch.reply(u)!.h.errno, Errno.EINTR);
  t.falsy(h.ch.reply(u | 1), 'the INTERRUPT itself is not answered');
});

test('INTERRUPT before the handler looked at the signal: signal is born aborted', async (t) => {
  const fs = new TreeFs(SAMPLE_TREE);
  let resume!: () => void;
  ll(fs).lookup = async (ctx) => {
    await new Promise<void>((r) => {
      resume = r;
    });
    if (ctx.signal.aborted) throw new FuseError(Errno.EINTR);
    throw new FuseError(Errno.ENOENT);
  };
  const h = initialised(fs);
  const u = h.send(Opcode.LOOKUP, 1, requestBody.lookup('x'));
  h.send(Opcode.INTERRUPT, 0, requestBody.interrupt(u), u | 1);
  resume();
  await tick();
  t.is(h.ch.reply(u)!.h.errno, Errno.EINTR);
});

test('INTERRUPT for an answered request is ignored; for one not yet read → EAGAIN', (t) => {
  const h = initialised();
  const u = h.send(Opcode.GETATTR, 1, requestBody.getattr());
  const n = h.ch.replies.length;
  h.send(Opcode.INTERRUPT, 0, requestBody.interrupt(u), u | 1);
  t.is(h.ch.replies.length, n, 'ignored');
  const future = u + 1000;
  h.send(Opcode.INTERRUPT, 0, requestBody.interrupt(future), future | 1);
  t.is(h.ch.reply(future | 1)!.h.errno, Errno.EAGAIN);
});

// ---------------------------------------------------------------------------------------------
// Notifications
// ---------------------------------------------------------------------------------------------

test('notifications before INIT throw NotifyNotSupportedError', (t) => {
  const h = harness(new TreeFs(SAMPLE_TREE));
  t.throws(() => h.session.notifier.invalEntry(1, 'x'), { instanceOf: NotifyNotSupportedError, message: /INIT/ });
  t.false(h.session.notifier.supports.invalEntry);
});

test('notifications are gated on the negotiated version and flags', async (t) => {
  const old = harness(new TreeFs(SAMPLE_TREE));
  old.init({ minor: 11, flags: 0 });
  t.throws(() => old.session.notifier.invalEntry(1, 'x'), { instanceOf: NotifyNotSupportedError, message: /7\.12/ });
  t.throws(() => old.session.notifier.invalInode(1), { instanceOf: NotifyNotSupportedError });
  const mid = harness(new TreeFs(SAMPLE_TREE));
  mid.init({ minor: 17, flags: 0 });
  t.true(await mid.session.notifier.invalEntry(1, 'x'));
  t.throws(() => mid.session.notifier.delete(1, 2, 'x'), { instanceOf: NotifyNotSupportedError, message: /7\.18/ });
  t.throws(() => mid.session.notifier.expireEntry(1, 'x'), { instanceOf: NotifyNotSupportedError, message: /EXPIRE_ONLY/ });
  const cur = initialised();
  t.deepEqual(cur.session.notifier.supports, { invalInode: true, invalEntry: true, delete: true, expireOnly: true });
  t.true(await cur.session.notifier.expireEntry(1, 'x'));
  t.true(await cur.session.notifier.delete(1, 2, 'x'));
  t.true(await cur.session.notifier.invalInode(2, 0, 0));
  t.deepEqual(cur.ch.notifications.map((b) => decodeNotification(b)), [
    { code: NotifyCode.INVAL_ENTRY, parent: 1, flags: 1, name: 'x' },
    { code: NotifyCode.DELETE, parent: 1, child: 2, name: 'x' },
    { code: NotifyCode.INVAL_INODE, nodeId: 2, off: 0, len: 0 },
  ]);
});

test('POLL: the poll handle reaches poll() only when the kernel has waiters; pollWakeup sends FUSE_NOTIFY_POLL', async (t) => {
  const seen: Array<number | undefined> = [];
  const fs = new TreeFs(SAMPLE_TREE);
  (fs as LowLevelFileSystem).poll = (_ctx, _node, _fh, _events, kh) => {
    seen.push(kh);
    return 0;
  };
  const h = initialised(fs);
  t.is(h.ch.reply(h.send(Opcode.POLL, 1, requestBody.poll(0, 77, 0, 1)))!.body.readUInt32LE(0), 0);
  t.is(h.ch.reply(h.send(Opcode.POLL, 1, requestBody.poll(0, 78, FUSE_POLL_SCHEDULE_NOTIFY, 1)))!.body.readUInt32LE(0), 0);
  t.deepEqual(seen, [undefined, 78]);
  t.true(await h.session.notifier.pollWakeup!(78));
  t.deepEqual(h.ch.notifications.map((b) => decodeNotification(b)), [{ code: NotifyCode.POLL, kh: 78 }]);
});

test('notification answered ENOENT (not cached) is success; ENODEV is not delivered', async (t) => {
  const h = initialised();
  h.ch.notifyError = 'ENOENT';
  t.true(await h.session.notifier.invalEntry(1, 'gone'));
  h.ch.notifyError = 'ENODEV';
  t.false(await h.session.notifier.invalInode(1));
});

test('a notification from inside a handler is written after that handler\'s reply', async (t) => {
  const fs = new TreeFs(SAMPLE_TREE);
  const h = initialised(fs);
  const sync = fs.lookup.bind(fs);
  let p: Promise<boolean> | undefined;
  ll(fs).lookup = (ctx, parent, name) => {
    p = fs.notifier!.invalEntry(parent, 'other');
    return sync(ctx, parent, name);
  };
  const u = h.send(Opcode.LOOKUP, 1, requestBody.lookup('dir'));
  t.true(await p!);
  const order = h.ch.log.map((x) => (x.kind === 'reply' ? `reply ${decodeOutHeader(x.buf).unique}` : 'notify'));
  t.deepEqual(order.slice(-2), [`reply ${u}`, 'notify']);

  // Async handler on the same node: the notification waits for its reply.
  let release!: () => void;
  ll(fs).lookup = (ctx, parent, name) => {
    p = fs.notifier!.invalEntry(parent, 'other');
    return new Promise<Entry>((r) => {
      release = () => r(sync(ctx, parent, name));
    });
  };
  const u2 = h.send(Opcode.LOOKUP, 1, requestBody.lookup('dir'));
  await tick();
  await tick();
  t.is(h.ch.notifications.length, 1, 'still waiting for the in-flight LOOKUP on the same parent');
  release();
  t.true(await p!);
  const order2 = h.ch.log.map((x) => (x.kind === 'reply' ? `reply ${decodeOutHeader(x.buf).unique}` : 'notify'));
  t.deepEqual(order2.slice(-2), [`reply ${u2}`, 'notify']);
});

// ---------------------------------------------------------------------------------------------
// DESTROY, end of session, logging
// ---------------------------------------------------------------------------------------------

test('DESTROY: destroy() once, OK reply, later requests refused; run() resolves at ENODEV', async (t) => {
  const fs = new TreeFs(SAMPLE_TREE);
  const h = initialised(fs);
  const u = h.send(Opcode.DESTROY, 0);
  t.is(h.ch.reply(u)!.h.errno, 0);
  t.is(fs.destroyed, 1);
  t.is(h.ch.reply(h.send(Opcode.GETATTR, 1, requestBody.getattr()))!.h.errno, Errno.ENODEV);
  h.ch.end('ENODEV');
  await h.ran;
  t.is(fs.destroyed, 1, 'not called twice');
  t.true(h.ch.closed);
});

test('end without DESTROY still calls destroy(); stop() without a mount closes the channel', async (t) => {
  const fs = new TreeFs(SAMPLE_TREE);
  const h = initialised(fs);
  await h.session.stop('test');
  await h.ran;
  t.is(fs.destroyed, 1);
  t.true(h.ch.closed);
  t.false(h.session.running);
});

test('stop() calls the unmount hook and waits for the end', async (t) => {
  const fs = new TreeFs(SAMPLE_TREE);
  let unmounts = 0;
  const h = harness(fs, {
    unmount: async () => {
      unmounts++;
      setImmediate(() => h.ch.end('ENODEV'));
    },
  });
  h.init();
  await h.session.stop('bye');
  t.true(unmounts >= 1);
  t.is(fs.destroyed, 1);
  t.false(h.session.running);
});

test('ready rejects when the session ends before INIT', async (t) => {
  const h = harness(new TreeFs(SAMPLE_TREE));
  h.ch.end('ENODEV');
  await t.throwsAsync(h.session.ready, { message: /before INIT/ });
  await h.ran;
});

test('a device error other than ENODEV rejects run()', async (t) => {
  const h = initialised();
  h.ch.end('EIO');
  await t.throwsAsync(h.ran, { message: /EIO/ });
});

test('late async replies after the end are dropped (never written to a closed device)', async (t) => {
  const fs = new TreeFs(SAMPLE_TREE);
  let resolve!: (e: Entry) => void;
  const sync = fs.lookup.bind(fs);
  ll(fs).lookup = (ctx, p, n) => {
    const e = sync(ctx, p, n);
    return new Promise<Entry>((r) => {
      resolve = () => r(e);
    });
  };
  const h = initialised(fs);
  h.send(Opcode.LOOKUP, 1, requestBody.lookup('dir'));
  const writes = h.ch.writes;
  h.ch.end('ENODEV');
  await h.ran;
  resolve(undefined as unknown as Entry);
  await tick();
  t.is(h.ch.writes, writes);
  t.is(fs.outstanding(), 0, 'the undelivered reference was given back');
});

test('debug logging: one rx and one tx line per request, in the documented style', (t) => {
  const fs = new TreeFs(SAMPLE_TREE);
  const h = initialised(fs, {}, 'debug');
  h.lines.length = 0;
  const u = h.send(Opcode.LOOKUP, 1, requestBody.lookup('dir'));
  const u2 = h.send(Opcode.LOOKUP, 1, requestBody.lookup('missing'));
  const msgs = h.lines.map((l) => l.msg);
  t.deepEqual(msgs, [
    `rx ${u}: LOOKUP n1 ["dir"]`,
    `tx ${u}: OK {n${fs.idOf('dir')} g1}`,
    `rx ${u2}: LOOKUP n1 ["missing"]`,
    `tx ${u2}: ENOENT`,
  ]);
  t.true(msgs.every((m) => !m.includes('\n')));
});

test('debug logging is off unless enabled (nothing logged per request at info)', (t) => {
  const h = initialised(new TreeFs(SAMPLE_TREE), {}, 'info');
  h.lines.length = 0;
  for (let i = 0; i < 50; i++) h.send(Opcode.GETATTR, 1, requestBody.getattr());
  t.is(h.lines.length, 0);
  const d = initialised(new TreeFs(SAMPLE_TREE), { debug: true }, 'info');
  d.lines.length = 0;
  d.send(Opcode.GETATTR, 1, requestBody.getattr());
  t.is(d.lines.length, 2, 'debug option forces request logging');
});

test('GETATTR with FUSE_GETATTR_FH passes the handle', (t) => {
  const fs = new TreeFs(SAMPLE_TREE);
  let fh = -1 as number | undefined;
  ll(fs).getattr = (_c, n, f) => {
    fh = f;
    return { attr: fs.attr(fs.node(n)), attrTimeout: 1 };
  };
  const h = initialised(fs);
  h.send(Opcode.GETATTR, 1, requestBody.getattr(42));
  t.is(fh, 42);
  h.send(Opcode.GETATTR, 1, requestBody.getattr());
  t.is(fh, undefined);
  t.is(S_IFREG, 0o100000);
});
