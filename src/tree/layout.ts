/**
 * The static part of the tree and the rules for names.
 *
 *   /                 1
 *   /pid              2    one file per live thread-group leader, named by pid
 *   /ns               3
 *   /ns/<type>        4..11 (cgroup ipc mnt net pid time user uts), one file per namespace, named by nsfs inode
 *   /by-ino           12   every handle again, named by its handlefs inode number
 *
 * Node id == inode number everywhere. Static nodes live below FIRST_DYNAMIC_INO (1024); handles
 * get numbers from the core's allocator, which never hands out a number twice.
 */
import { FIRST_DYNAMIC_INO, ROOT_INO, type Ino, type Key } from '../core/numbers.js';
import { NS_TYPES, type NsType } from '../sources/types.js';

/** Node id of the root directory (1). */
export const ROOT_DIR: Ino = ROOT_INO; // 1
/** Node id of pid/. */
export const PID_DIR: Ino = 2;
/** Node id of ns/. */
export const NS_DIR: Ino = 3;
/** ns/<type> directories: 4 + index in NS_TYPES (cgroup=4 … uts=11). */
export const NS_TYPE_DIR_BASE: Ino = 4;
/** Node id of by-ino/. */
export const BY_INO_DIR: Ino = 12;
export const STATIC_GENERATION = 1;

/** Largest pid Linux can hand out (PID_MAX_LIMIT on 64-bit: 2^22). */
export const MAX_PID = 4194304;
/** Smallest nsfs inode number: the initial namespaces sit at 0xEFFFFFF8..0xEFFFFFFF, dynamic ones from 0xF0000000. */
export const MIN_NS_INUM = 0xeffffff0;
/** nsfs inode numbers are 32-bit. */
export const MAX_NS_INUM = 0xffffffff;
/** Longest name (bytes) a lookup accepts; longer ones are ENAMETOOLONG. */
export const NAME_MAX = 255;

if (!(BY_INO_DIR < FIRST_DYNAMIC_INO)) throw new Error('static inode numbers reach the dynamic range');

/** Node id of ns/<type>/ (4 to 11). */
export function nsTypeDir(type: NsType): Ino {
  return NS_TYPE_DIR_BASE + NS_TYPES.indexOf(type);
}

/** The namespace type a ns/<type> directory serves, or undefined if `ino` is not one. */
export function nsTypeOfDir(ino: Ino): NsType | undefined {
  if (ino < NS_TYPE_DIR_BASE || ino >= NS_TYPE_DIR_BASE + NS_TYPES.length) return undefined;
  return NS_TYPES[ino - NS_TYPE_DIR_BASE];
}

export interface StaticNode {
  readonly ino: Ino;
  readonly name: string;
  readonly parent: Ino;
  /** Subdirectories (static children), in listing order. */
  readonly children: readonly Ino[];
}

function node(ino: Ino, name: string, parent: Ino, children: readonly Ino[] = []): StaticNode {
  return { ino, name, parent, children };
}

const nsTypeDirs = NS_TYPES.map((t) => nsTypeDir(t));

export const STATIC_NODES: ReadonlyMap<Ino, StaticNode> = new Map<Ino, StaticNode>([
  [ROOT_DIR, node(ROOT_DIR, '', ROOT_DIR, [PID_DIR, NS_DIR, BY_INO_DIR])],
  [PID_DIR, node(PID_DIR, 'pid', ROOT_DIR)],
  [NS_DIR, node(NS_DIR, 'ns', ROOT_DIR, nsTypeDirs)],
  ...NS_TYPES.map((t): [Ino, StaticNode] => [nsTypeDir(t), node(nsTypeDir(t), t, NS_DIR)]),
  [BY_INO_DIR, node(BY_INO_DIR, 'by-ino', ROOT_DIR)],
]);

export function isStatic(ino: Ino): boolean {
  return ino > 0 && ino < FIRST_DYNAMIC_INO;
}

/** The path of a static directory inside the mount ('/', '/pid', '/ns/net'). */
export function staticPath(ino: Ino): string {
  const names: string[] = [];
  for (let n = STATIC_NODES.get(ino); n !== undefined && n.ino !== ROOT_DIR; n = STATIC_NODES.get(n.parent)) names.unshift(n.name);
  return `/${names.join('/')}`;
}

/** A static child of `parent` called `name`, if any. */
export function staticChild(parent: Ino, name: string): StaticNode | undefined {
  const p = STATIC_NODES.get(parent);
  if (p === undefined) return undefined;
  for (const c of p.children) {
    const n = STATIC_NODES.get(c)!;
    if (n.name === name) return n;
  }
  return undefined;
}

const CANONICAL = /^[1-9][0-9]*$/;

/**
 * A canonical decimal name (no sign, no leading zeros, no spaces, not "0") as a number in
 * [min, max], or undefined. Names are at most 16 digits before conversion so that nothing rounds.
 */
export function parseCanonical(name: string, min: number, max: number): number | undefined {
  if (name.length > 16 || !CANONICAL.test(name)) return undefined;
  const n = Number(name);
  if (!Number.isSafeInteger(n) || n < min || n > max) return undefined;
  return n;
}

export function parsePidName(name: string): Key | undefined {
  return parseCanonical(name, 1, MAX_PID);
}

export function parseInumName(name: string): Key | undefined {
  return parseCanonical(name, MIN_NS_INUM, MAX_NS_INUM);
}

export function parseInoName(name: string): Ino | undefined {
  return parseCanonical(name, FIRST_DYNAMIC_INO, Number.MAX_SAFE_INTEGER);
}

/** True if the name is too long for any lookup (ENAMETOOLONG). */
export function nameTooLong(name: string): boolean {
  return name.length > NAME_MAX || Buffer.byteLength(name, 'utf8') > NAME_MAX;
}

/** Bytes one entry takes in a READDIR (fuse_dirent) or READDIRPLUS (fuse_direntplus) reply. */
export function direntSize(name: string, plus: boolean): number {
  const len = Buffer.byteLength(name, 'utf8');
  return (plus ? 152 : 24) + ((len + 7) & ~7);
}
