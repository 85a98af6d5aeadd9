/**
 * Why the service refuses to start, for its caller to act on: the CLI turns each reason into a
 * distinct exit code (src/cli/exit-codes.ts, docs/cli.md). The message is one line for a person;
 * the hint says what to do.
 */
export type RefusalReason =
  | 'badMountOption'
  | 'mountpointMissing'
  | 'notADirectory'
  | 'notEmpty'
  | 'alreadyMounted'
  | 'staleMount'
  | 'noFuseDevice'
  | 'notRoot'
  | 'stateLocked'
  | 'stateUnreadable'
  | 'stateReadOnly'
  | 'mountFailed';

export class ServiceRefusal extends Error {
  override name = 'ServiceRefusal';
  constructor(
    message: string,
    readonly reason: RefusalReason,
    /** What to do about it (a fix command, another option). */
    readonly hint?: string,
  ) {
    super(message);
  }
}
