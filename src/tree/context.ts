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

/** Runs fn over items with at most `limit` in flight; results in input order. */
export async function mapLimit<T, R>(items: readonly T[], limit: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const out = new Array<R>(items.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i]!);
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(limit, items.length)) }, worker));
  return out;
}

/** Puts every hold in `holds` (short-lived references taken while producing a reply). */
export function putAll(table: InodeTable<HandleObject>, holds: Iterable<Dentry<HandleObject>>): void {
  for (const d of holds) table.put(d);
}
