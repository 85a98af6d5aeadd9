/** What the handle kinds share: the table, the clock and timers, invalidation, host ids, access policy. */
import type { Logger } from 'pino';
import type { Dentry } from '../core/inode.js';
import type { InodeTable } from '../core/inode-table.js';
import type { Ino } from '../core/numbers.js';
import type { HostIds } from '../sources/types.js';
import type { AccessPolicy } from './access.js';
import type { Invalidator } from './invalidation.js';
import type { Timers } from './timers.js';

/** What the tree keeps per inode (the table's `T`): each kind's own object (kind.ts). */
export interface HandleObject {
  /** The kind's name (the core's kind of the inode). */
  readonly kind: string;
  /** The inode number, once instantiated. */
  ino: Ino;
}

export interface TreeContext {
  readonly table: InodeTable<HandleObject>;
  readonly log: Logger;
  readonly timers: Timers;
  readonly inval: Invalidator;
  readonly hostIds: HostIds;
  /** Who may see what (hidepid, ptrace-style access to namespaces). */
  readonly policy: AccessPolicy;
  /** Entries found by listings are resolved this many at a time. */
  readonly concurrency: number;
}

/** Puts every hold in `holds` (short-lived references taken while producing a reply). */
export function putAll(table: InodeTable<HandleObject>, holds: Iterable<Dentry<HandleObject>>): void {
  for (const d of holds) table.put(d);
}
