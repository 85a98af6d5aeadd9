/**
 * Exit codes of the handlefs command: one per failure a user can meet, so scripts can tell them
 * apart. Documented in docs/cli.md; keep the two in step.
 */
import { ServiceRefusal, type RefusalReason } from '../service/refusal.js';

export const EXIT = {
  ok: 0,
  internal: 1,
  usage: 2,
  mountpointMissing: 3,
  notADirectory: 4,
  notEmpty: 5,
  alreadyMounted: 6,
  staleMount: 7,
  noFuseDevice: 8,
  notRoot: 9,
  stateLocked: 10,
  stateUnreadable: 11,
  stateReadOnly: 12,
  badMountOption: 13,
  notMounted: 14,
  serviceUnreachable: 15,
  mountBusy: 16,
  restartFailed: 17,
  permissionDenied: 18,
  /** A TARGET is not a handle file of a running handlefs mount. */
  notAHandle: 19,
  /** The handle's process has exited (kill; the pid may name another process now). */
  processExited: 20,
  /** The handle is of the wrong kind (bind of a process handle, kill of a namespace). */
  wrongKind: 21,
  /** The namespace is gone, or the bind mount / namespace entry failed. */
  namespaceFailed: 22,
} as const;

export type ExitCode = (typeof EXIT)[keyof typeof EXIT];

/** The exit code of each reason the service gives for refusing to start. */
const REFUSAL_EXIT: Record<RefusalReason, ExitCode> = {
  badMountOption: EXIT.badMountOption,
  mountpointMissing: EXIT.mountpointMissing,
  notADirectory: EXIT.notADirectory,
  notEmpty: EXIT.notEmpty,
  alreadyMounted: EXIT.alreadyMounted,
  staleMount: EXIT.staleMount,
  noFuseDevice: EXIT.noFuseDevice,
  notRoot: EXIT.notRoot,
  stateLocked: EXIT.stateLocked,
  stateUnreadable: EXIT.stateUnreadable,
  stateReadOnly: EXIT.stateReadOnly,
  mountFailed: EXIT.internal,
};

/** The service's refusals become CLI errors; anything else is passed through unchanged. */
export function asCliError(e: unknown): unknown {
  return e instanceof ServiceRefusal ? new CliError(e.message, REFUSAL_EXIT[e.reason], e.hint) : e;
}

/** An error the CLI prints as one line and turns into a specific exit code. */
export class CliError extends Error {
  constructor(
    message: string,
    readonly exitCode: ExitCode,
    /** A second line telling the user what to do (usage hint, fix command). */
    readonly hint?: string,
  ) {
    super(message);
    this.name = 'CliError';
  }
}
