/** What the handle modules share: the table, the clock and timers, invalidation, host ids. */
import type { Logger } from 'pino';
import type { Dentry } from '../core/inode.js';
import type { IncarnationOrder, InodeTable } from '../core/inode-table.js';
import type { HostIds } from '../sources/types.js';
import type { Invalidator } from './invalidation.js';
import type { NsObject } from './namespace-handles.js';
import type { ProcObject } from './process-handles.js';
import type { Timers } from './timers.js';

/** What the tree keeps per inode (the table's `T`). */
export type HandleObject = ProcObject | NsObject;

export const PROCESS_KIND = 'process';
export const NAMESPACE_KIND = 'namespace';

/**
 * How the table compares incarnations of each kind. Processes: pidfs inode numbers (and start
 * times) grow with each new process under a pid, so an older one is a stale read. Namespaces:
 * kernel ids come in per-CPU batches and are not monotonic, so a different id under an nsfs
 * number is another namespace, and the tree only brings one it holds open (alive).
 */
export const INCARNATIONS: Readonly<Record<string, IncarnationOrder>> = Object.freeze({
  [PROCESS_KIND]: 'ordered',
  [NAMESPACE_KIND]: 'equality',
});

export interface TreeContext {
  readonly table: InodeTable<HandleObject>;
  readonly log: Logger;
  readonly timers: Timers;
  readonly inval: Invalidator;
  readonly hostIds: HostIds;
  /** Entries found by listings are resolved this many at a time. */
  readonly concurrency: number;
}

export { mapLimit } from '../util/map-limit.js';

/** Puts every hold in `holds` (short-lived references taken while producing a reply). */
export function putAll(table: InodeTable<HandleObject>, holds: Iterable<Dentry<HandleObject>>): void {
  for (const d of holds) table.put(d);
}
