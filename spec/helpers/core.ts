import { pino } from 'pino';
import { Allocator } from '../../src/core/allocator.js';
import type { Identity } from '../../src/core/inode.js';
import { InodeTable, type IncarnationOrder, type TableEvents } from '../../src/core/inode-table.js';
import { MemoryStore } from '../../src/core/memory-store.js';
import type { InodeStore } from '../../src/core/store.js';

/** A logger that records every line, so tests can assert that underflows are reported loudly. */
export function recordingLogger() {
  const lines: Array<Record<string, unknown>> = [];
  const logger = pino({ level: 'debug' }, { write: (s: string) => lines.push(JSON.parse(s)) });
  return { logger, lines };
}

export function makeTable<T = string>(
  options: { store?: InodeStore; events?: TableEvents<T>; scope?: string; chunk?: number; incarnations?: Record<string, IncarnationOrder> } = {},
) {
  const store = options.store ?? new MemoryStore();
  const { logger, lines } = recordingLogger();
  const table = new InodeTable<T>({
    store,
    allocator: new Allocator(store, options.chunk ?? 16),
    scope: options.scope ?? 'boot-a',
    logger,
    events: options.events ?? {},
    ...(options.incarnations === undefined ? {} : { incarnations: options.incarnations }),
  });
  return { table, store, lines };
}

export const proc = (pid: number, start: number): Identity => ({ kind: 'process', key: pid, incarnation: start });
