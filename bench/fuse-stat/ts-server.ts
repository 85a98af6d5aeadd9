/**
 * TypeScript server for the fuse-stat benchmark: the same tree as ref_ll.c
 * (root -> pid/ -> f0..f{N-1}), entry and attribute timeouts 0, served by FuseSession.
 *
 *   node --import tsx bench/fuse-stat/ts-server.ts MOUNTPOINT N
 *
 * FUSE_BENCH_READER=native|uv-pipe|threadpool forces the way /dev/fuse is read.
 *
 * Prints "ready" once mounted; ends on SIGINT/SIGTERM or umount (exit 0).
 */
import pino from 'pino';
import {
  Errno,
  FuseError,
  S_IFDIR,
  S_IFREG,
  serve,
  type Attr,
  type AttrReply,
  type DirEntry,
  type Entry,
  type LowLevelFileSystem,
  type ReadMechanism,
  type RequestContext,
} from '../../src/fuse/index.js';

const PID_INO = 2;
const FILE_BASE = 1000;
const T = 1700000000 * 1000;

function dirAttr(ino: number): Attr {
  return { ino, mode: S_IFDIR | 0o555, nlink: 2, uid: 0, gid: 0, size: 0, atimeMs: T, mtimeMs: T, ctimeMs: T };
}
function fileAttr(ino: number): Attr {
  return { ino, mode: S_IFREG | 0o444, nlink: 1, uid: 0, gid: 0, size: 64, blocks: 1, atimeMs: T, mtimeMs: T, ctimeMs: T };
}

/** Parses "f123" (no leading zeros) → 123, else -1. */
function fileIndex(name: string, n: number): number {
  if (name.length < 2 || name.charCodeAt(0) !== 0x66) return -1;
  let v = 0;
  for (let i = 1; i < name.length; i++) {
    const c = name.charCodeAt(i) - 48;
    if (c < 0 || c > 9 || (i === 1 && c === 0 && name.length > 2)) return -1;
    v = v * 10 + c;
  }
  return v < n ? v : -1;
}

export class StatTreeFs implements LowLevelFileSystem {
  constructor(private readonly n: number) {}

  private attr(ino: number): Attr {
    if (ino === 1 || ino === PID_INO) return dirAttr(ino);
    if (ino >= FILE_BASE && ino < FILE_BASE + this.n) return fileAttr(ino);
    throw new FuseError(Errno.ENOENT);
  }

  lookup(_ctx: RequestContext, parent: number, name: string): Entry {
    let ino = 0;
    if (parent === 1 && name === 'pid') ino = PID_INO;
    else if (parent === PID_INO) {
      const i = fileIndex(name, this.n);
      if (i >= 0) ino = FILE_BASE + i;
    }
    if (ino === 0) throw new FuseError(Errno.ENOENT);
    return { nodeId: ino, generation: 1, attr: this.attr(ino), entryTimeout: 0, attrTimeout: 0 };
  }

  forget(): void {}

  getattr(_ctx: RequestContext, nodeId: number): AttrReply {
    return { attr: this.attr(nodeId), attrTimeout: 0 };
  }

  readdir(_ctx: RequestContext, nodeId: number, _fh: number, offset: number): DirEntry[] {
    if (nodeId !== 1 && nodeId !== PID_INO) throw new FuseError(Errno.ENOTDIR);
    const total = nodeId === 1 ? 3 : 2 + this.n;
    const out: DirEntry[] = [];
    for (let i = offset; i < total && out.length < 512; i++) {
      if (i === 0) out.push({ name: '.', ino: nodeId, type: S_IFDIR, offset: 1 });
      else if (i === 1) out.push({ name: '..', ino: 1, type: S_IFDIR, offset: 2 });
      else if (nodeId === 1) out.push({ name: 'pid', ino: PID_INO, type: S_IFDIR, offset: 3 });
      else out.push({ name: `f${i - 2}`, ino: FILE_BASE + i - 2, type: S_IFREG, offset: i + 1 });
    }
    return out;
  }
}

async function main(): Promise<void> {
  const [mnt, nArg] = process.argv.slice(2);
  if (!mnt || !nArg) {
    console.error('usage: ts-server.ts MOUNTPOINT N');
    process.exit(2);
  }
  const logger = pino({ level: process.env.FUSE_BENCH_LOG ?? 'warn' }, pino.destination(2));
  const session = await serve(new StatTreeFs(Number(nArg)), mnt, { entryTimeout: 0, attrTimeout: 0, fsname: 'ts_ll', subtype: 'ts_ll' }, logger, {
    readdirplus: 'off',
    ...(process.env.FUSE_BENCH_READER && { reader: process.env.FUSE_BENCH_READER as ReadMechanism }),
  });
  process.stdout.write('ready\n');
  await session.run();
}

if (process.argv[1] && import.meta.url.endsWith(process.argv[1].replace(/^.*\//, ''))) {
  main().catch((err: unknown) => {
    console.error(err);
    process.exit(1);
  });
}
