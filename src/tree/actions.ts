/**
 * What a handle can do besides being read, per kind: poll for readiness, name the namespaces to
 * enter or bind, signal and wait. Part of each kind's table of operations (HandleKind in
 * kind.ts): the tree reaches them through the kind, never by branching on it.
 */
import type { Inode } from '../core/inode.js';
import type { Key } from '../core/numbers.js';
import type { NsType, ProcessEnding } from '../sources/types.js';
import type { HandleObject } from './context.js';

/** Who asks (the control socket's peer credentials, or a FUSE request's ids). */
export interface Caller {
  /** Effective uid. */
  readonly uid: number;
  /** Real uid (equal to uid where it cannot be known). */
  readonly ruid: number;
  readonly pid: number;
}

/** A namespace handlefs holds, for setns(2)/nsenter or a bind mount. */
export interface EnterTarget {
  readonly type: NsType;
  readonly inum: Key;
  readonly nsId: string | null;
  /** The held nsfs descriptor in the service process; null where the source has none (fakes). */
  readonly fd: number | null;
}

/** Errno-named refusals; the service passes code and message on, the CLI maps codes to exit codes. */
export type ActionErrorCode = 'ESRCH' | 'EPERM' | 'EINVAL' | 'ENOTSUP' | 'EACCES' | 'ESTALE' | 'ENOENT' | 'ECANCELED';

/** A refusal of an action (kill, wait, enter, bind), named by its errno. */
export class ActionError extends Error {
  override name = 'ActionError';
  constructor(
    readonly code: ActionErrorCode,
    message: string,
  ) {
    super(message);
  }
}

export interface HandleKindActions {
  /** Ready events of an open handle; registers `kh` to be woken when it may become ready. */
  poll(inode: Inode<HandleObject>, kh: number | undefined): number;
  /** Stops waking `kh` (its file was released). */
  forgetPoller(inode: Inode<HandleObject>, kh: number): void;
  /** The namespaces `handlefs exec` enters for this handle. */
  enter(inode: Inode<HandleObject>): Promise<EnterTarget[]>;
  /** The namespace `handlefs bind` mounts; throws for kinds without one. */
  bind(inode: Inode<HandleObject>): EnterTarget | Promise<EnterTarget>;
  signal(inode: Inode<HandleObject>, signal: number, caller: Caller): void;
  /** Resolves with how the process ended; rejects ECANCELED when `signal` aborts first. */
  wait(inode: Inode<HandleObject>, caller: Caller, signal?: AbortSignal): Promise<ProcessEnding>;
}
