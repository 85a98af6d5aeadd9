/**
 * A small in-memory LowLevelFileSystem for tests: a fixed tree with files, a directory and a
 * symlink, and exact lookup-count bookkeeping (every reference handed to the kernel is counted,
 * every forget subtracts; going below zero is recorded as a violation).
 */
import {
  Errno,
  FuseError,
  S_IFDIR,
  S_IFLNK,
  S_IFREG,
  type AttrReply,
  type DirEntry,
  type Entry,
  type LowLevelFileSystem,
  type OpenReply,
  type RequestContext,
  type StatfsReply,
  type Attr,
  type ConnectionInfo,
  type Notifier,
} from '../../../src/fuse/index.js';

export interface TreeNode {
  id: number;
  name: string;
  parent: number;
  kind: 'dir' | 'file' | 'symlink';
  content?: Buffer;
  target?: string;
  children?: Map<string, number>;
}

export interface TreeSpec {
  [name: string]: string | Buffer | { symlink: string } | TreeSpec;
}

const T0 = Date.UTC(2024, 0, 2, 3, 4, 5, 678);

export class TreeFs implements LowLevelFileSystem {
  readonly nodes = new Map<number, TreeNode>();
  readonly lookups = new Map<number, number>();
  given = 0;
  forgotten = 0;
  violations: string[] = [];
  forgetCalls: Array<[number, number]> = [];
  conn: ConnectionInfo | undefined;
  notifier: Notifier | undefined;
  destroyed = 0;
  entryTimeout: number;
  attrTimeout: number;
  private nextId = 2;

  constructor(spec: TreeSpec, opts: { entryTimeout?: number; attrTimeout?: number } = {}) {
    this.entryTimeout = opts.entryTimeout ?? 0;
    this.attrTimeout = opts.attrTimeout ?? 0;
    this.nodes.set(1, { id: 1, name: '', parent: 1, kind: 'dir', children: new Map() });
    this.add(1, spec);
  }

  private add(parent: number, spec: TreeSpec): void {
    const p = this.nodes.get(parent)!;
    for (const [name, v] of Object.entries(spec)) {
      const id = this.nextId++;
      let n: TreeNode;
      if (typeof v === 'string' || Buffer.isBuffer(v)) n = { id, name, parent, kind: 'file', content: Buffer.from(v) };
      else if ('symlink' in v && typeof v.symlink === 'string') n = { id, name, parent, kind: 'symlink', target: v.symlink };
      else n = { id, name, parent, kind: 'dir', children: new Map() };
      this.nodes.set(id, n);
      p.children!.set(name, id);
      if (n.kind === 'dir') this.add(id, v as TreeSpec);
    }
  }

  idOf(path: string): number {
    let id = 1;
    for (const part of path.split('/').filter(Boolean)) id = this.nodes.get(id)!.children!.get(part)!;
    return id;
  }

  attr(n: TreeNode): Attr {
    const mode = n.kind === 'dir' ? S_IFDIR | 0o755 : n.kind === 'file' ? S_IFREG | 0o444 : S_IFLNK | 0o777;
    const size = n.kind === 'file' ? n.content!.length : n.kind === 'symlink' ? Buffer.byteLength(n.target!) : 0;
    return {
      ino: n.id,
      mode,
      nlink: n.kind === 'dir' ? 2 : 1,
      uid: 0,
      gid: 0,
      size,
      blksize: 4096,
      atimeMs: T0,
      mtimeMs: T0,
      ctimeMs: T0,
    };
  }

  entry(n: TreeNode): Entry {
    this.lookups.set(n.id, (this.lookups.get(n.id) ?? 0) + 1);
    this.given++;
    return { nodeId: n.id, generation: 1, attr: this.attr(n), entryTimeout: this.entryTimeout, attrTimeout: this.attrTimeout };
  }

  node(id: number): TreeNode {
    const n = this.nodes.get(id);
    if (!n) throw new FuseError(Errno.ESTALE);
    return n;
  }

  /** Sum of outstanding kernel references. */
  outstanding(): number {
    let s = 0;
    for (const v of this.lookups.values()) s += v;
    return s;
  }

  init(conn: ConnectionInfo, notifier: Notifier): void {
    this.conn = conn;
    this.notifier = notifier;
  }

  destroy(): void {
    this.destroyed++;
  }

  lookup(_ctx: RequestContext, parent: number, name: string): Entry {
    const p = this.node(parent);
    if (p.kind !== 'dir') throw new FuseError(Errno.ENOTDIR);
    if (name === '.') return this.entry(p);
    if (name === '..') return this.entry(this.node(p.parent));
    const id = p.children!.get(name);
    if (id === undefined) throw new FuseError(Errno.ENOENT);
    return this.entry(this.node(id));
  }

  forget(nodeId: number, nlookup: number): void {
    this.forgetCalls.push([nodeId, nlookup]);
    const have = this.lookups.get(nodeId) ?? 0;
    if (nlookup > have) this.violations.push(`forget n${nodeId} x${nlookup} but only ${have} outstanding`);
    const left = have - nlookup;
    if (left <= 0) this.lookups.delete(nodeId);
    else this.lookups.set(nodeId, left);
    this.forgotten += nlookup;
  }

  getattr(_ctx: RequestContext, nodeId: number): AttrReply {
    return { attr: this.attr(this.node(nodeId)), attrTimeout: this.attrTimeout };
  }

  readlink(_ctx: RequestContext, nodeId: number): string {
    const n = this.node(nodeId);
    if (n.kind !== 'symlink') throw new FuseError(Errno.EINVAL);
    return n.target!;
  }

  open(_ctx: RequestContext, nodeId: number): OpenReply {
    const n = this.node(nodeId);
    if (n.kind === 'dir') throw new FuseError(Errno.EISDIR);
    return { fh: nodeId * 10, keepCache: false };
  }

  read(_ctx: RequestContext, nodeId: number, _fh: number, offset: number, size: number): Buffer {
    const n = this.node(nodeId);
    return n.content!.subarray(Math.min(offset, n.content!.length), Math.min(offset + size, n.content!.length));
  }

  readdir(_ctx: RequestContext, nodeId: number, _fh: number, offset: number, _size: number, plus: boolean): DirEntry[] {
    const n = this.node(nodeId);
    if (n.kind !== 'dir') throw new FuseError(Errno.ENOTDIR);
    const all: Array<{ name: string; node: TreeNode }> = [
      { name: '.', node: n },
      { name: '..', node: this.node(n.parent) },
      ...[...n.children!.entries()].map(([name, id]) => ({ name, node: this.node(id) })),
    ];
    const out: DirEntry[] = [];
    for (let i = offset; i < all.length; i++) {
      const { name, node } = all[i]!;
      const d: DirEntry = { name, ino: node.id, type: this.attr(node).mode, offset: i + 1 };
      if (plus && name !== '.' && name !== '..') d.entry = this.entry(node);
      out.push(d);
    }
    return out;
  }

  statfs(): StatfsReply {
    return { blocks: 100, bfree: 0, bavail: 0, files: this.nodes.size, ffree: 0, bsize: 4096, namelen: 255, frsize: 4096 };
  }

  getxattr(_ctx: RequestContext, nodeId: number, name: string): Buffer {
    if (name === 'user.id') return Buffer.from(`id=${nodeId}`);
    throw new FuseError(Errno.ENODATA);
  }

  listxattr(): string[] {
    return ['user.id'];
  }
}

export const SAMPLE_TREE: TreeSpec = {
  'top.txt': 'top\n',
  dir: {
    'hello.txt': 'hello world\n',
    'big.bin': Buffer.from(Array.from({ length: 300_000 }, (_, i) => (i * 7) & 0xff)),
    link: { symlink: 'hello.txt' },
    sub: { 'deep.txt': 'deep\n' },
  },
};
