/**
 * The table of handle kinds: which kinds a tree serves, in the order they are built, and the one
 * place the tree finds a kind (by an inode's kind, or by the directory that lists it).
 *
 * Adding a kind (threads, cgroups) is one new module that implements HandleKind (kind.ts) and one
 * row in HANDLE_KINDS below (and a static directory for it in layout.ts if it is listed by name).
 */
import type { IncarnationOrder } from '../core/inode-table.js';
import type { Ino } from '../core/numbers.js';
import type { HandleKind, HandleKindEntry, KindSetup } from './kind.js';
import { NAMESPACES } from './namespace-handles.js';
import { PROCESSES } from './process-handles.js';

/** The kinds of handles, in the order they are built (processes name their namespaces). */
export const HANDLE_KINDS: readonly HandleKindEntry[] = [NAMESPACES, PROCESSES];

/**
 * How the table compares incarnations of each kind (CORE.Incarnations): processes' grow with each
 * new process under a pid, so an older one is a stale read; namespaces' kernel ids come in
 * per-CPU batches, so a different one is another namespace.
 */
export const INCARNATIONS: Readonly<Record<string, IncarnationOrder>> = Object.freeze(
  Object.fromEntries(HANDLE_KINDS.map((k) => [k.name, k.incarnations])),
);

/** The kinds of one tree, by name and by the directories they list. */
export class KindTable {
  /** In build order; searched by name (a handful: cheaper than a string-keyed Map on every request). */
  private readonly kinds: HandleKind[] = [];
  private readonly byDir = new Map<Ino, HandleKind>();

  constructor(setup: Omit<KindSetup, 'kind'>, entries: readonly HandleKindEntry[] = HANDLE_KINDS) {
    const full: KindSetup = { ...setup, kind: <K extends HandleKind>(name: string) => this.named<K>(name) };
    for (const e of entries) {
      const kind = e.create(full);
      if (kind.name !== e.name) throw new Error(`handle kind "${e.name}" built as "${kind.name}"`);
      if (this.find(kind.name) !== undefined) throw new Error(`handle kind "${kind.name}" is in the table twice`);
      this.kinds.push(kind);
      for (const dir of kind.dirs) {
        if (this.byDir.has(dir)) throw new Error(`directory ${dir} is listed by two handle kinds`);
        this.byDir.set(dir, kind);
      }
    }
  }

  /** The kind of an inode (undefined for a kind this tree does not make). */
  of(inode: { readonly kind: string }): HandleKind | undefined {
    return this.find(inode.kind);
  }

  /** The kind whose handles `dir` lists, if it is such a directory. */
  forDir(dir: Ino): HandleKind | undefined {
    return this.byDir.get(dir);
  }

  named<K extends HandleKind>(name: string): K {
    const kind = this.find(name);
    if (kind === undefined) throw new Error(`no handle kind "${name}" (built so far: ${this.kinds.map((k) => k.name).join(', ')})`);
    return kind as K;
  }

  all(): IterableIterator<HandleKind> {
    return this.kinds.values();
  }

  private find(name: string): HandleKind | undefined {
    const all = this.kinds;
    for (let i = 0; i < all.length; i++) if (all[i]!.name === name) return all[i];
    return undefined;
  }
}
