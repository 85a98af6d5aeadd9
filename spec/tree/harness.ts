/**
 * The tree specs run in-process on the consumer kit (src/testing): the service's container with
 * a FakeHost, a MemoryStore and manual timers, served through the kit's session. What is left
 * here is spec-only glue: defaults (long timeouts), request contexts for direct calls into the
 * tree, errno extraction, a store whose flush fails.
 */
import { MemoryStore } from '../../src/core/memory-store.js';
import { FuseError, type ConnectionInfo, type RequestContext } from '../../src/fuse/types.js';
import {
  connectionInfo,
  createTestFilesystem,
  FsError,
  parseFields,
  RecordingNotifier,
  type FakeHost,
  type HandleTreeOptions,
  type Invalidation,
  type TestFilesystem,
} from '../../src/testing/index.js';

export { RecordingNotifier };
export type Note = Invalidation;
export type Harness = TestFilesystem;

/** What INIT would negotiate, with entry and attribute timeouts of `timeout` seconds. */
export function connection(timeout = 3600): ConnectionInfo {
  return connectionInfo({ entryTimeout: timeout, attrTimeout: timeout });
}

let unique = 1;
/** A request context for calling the tree directly (h.tree.open(rc(), ...)). */
export function rc(): RequestContext {
  return { unique: unique++, opcode: 0, nodeId: 0, uid: 0, gid: 0, pid: 1, signal: new AbortController().signal };
}

/** A kit with the tree's default grace and sweep periods and 3600 s timeouts. */
export function makeTree(options: { host?: FakeHost; store?: MemoryStore; tree?: HandleTreeOptions } = {}): Harness {
  return createTestFilesystem({
    ...(options.host === undefined ? {} : { host: options.host }),
    ...(options.store === undefined ? {} : { store: options.store }),
    tree: { nsGraceMs: 2000, sweepIntervalMs: 10_000, ...options.tree },
    entryTimeout: 3600,
    attrTimeout: 3600,
  });
}

/** Parses `Key:\tvalue` lines. */
export const fields = parseFields;

/** The errno a call failed with (from the kit or straight from the tree), or 'ok'. */
export async function errnoOf(p: Promise<unknown> | (() => unknown)): Promise<number | 'ok'> {
  try {
    await (typeof p === 'function' ? p() : p);
    return 'ok';
  } catch (err) {
    if (err instanceof FuseError || err instanceof FsError) return err.errno;
    throw err;
  }
}

/** A MemoryStore whose flush can be made to fail. */
export class FlakyStore extends MemoryStore {
  failing = false;
  override flush(): Promise<void> {
    if (this.failing) return Promise.reject(new Error('disk on fire'));
    return super.flush();
  }
}
