/**
 * One request while it is served: who asked, what the reply may hold, and who waits for its answer.
 * The AbortController is created only if a handler asks for the signal.
 */
import { Errno } from './abi.js';
import { FuseError, type RequestContext } from './types.js';

export class Ctx implements RequestContext {
  interrupted = false;
  /** The most bytes the reply may carry (READ, READDIR, GETXATTR, LISTXATTR). */
  size = 0;
  /** READDIRPLUS: entries carry lookups. */
  plus = false;
  /** The open(2) flags of an OPEN, for a RELEASE of its own if the reply is lost. */
  flags = 0;
  /** Notifications waiting for this request's answer (they must not overtake it). */
  waiters: Array<() => void> | undefined = undefined;
  private ac: AbortController | undefined = undefined;

  constructor(
    readonly unique: number,
    readonly opcode: number,
    readonly nodeId: number,
    readonly uid: number,
    readonly gid: number,
    readonly pid: number,
  ) {}

  get signal(): AbortSignal {
    if (this.ac === undefined) {
      this.ac = new AbortController();
      if (this.interrupted) this.ac.abort(new FuseError(Errno.EINTR, 'interrupted'));
    }
    return this.ac.signal;
  }

  interrupt(): void {
    if (this.interrupted) return;
    this.interrupted = true;
    this.ac?.abort(new FuseError(Errno.EINTR, 'interrupted'));
  }

  /** Lets the notifications waiting for this request go. */
  wake(): void {
    const w = this.waiters;
    if (w) {
      this.waiters = undefined;
      for (const f of w) f();
    }
  }
}

export function isThenable(v: unknown): v is PromiseLike<unknown> {
  return v instanceof Promise || (v !== null && typeof v === 'object' && typeof (v as { then?: unknown }).then === 'function');
}
