/** What the handle modules share: the table, the clock and timers, invalidation, host ids. */
import type { Logger } from 'pino';
import type { Dentry } from '../core/inode.js';
import type { InodeTable } from '../core/inode-table.js';
import type { HostIds } from '../sources/types.js';
import type { Invalidator } from './invalidation.js';
import type { NsObject } from './namespace-handles.js';
import type { ProcObject } from './process-handles.js';
import type { Timers } from './timers.js';

/** What the tree keeps per inode (the table's `T`). */
export type HandleObject = ProcObject | NsObject;

export const PROCESS_KIND = 'process';
export const NAMESPACE_KIND = 'namespace';

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
