/**
 * Exit codes of the handlefs command: one per failure a user can meet, so scripts can tell them
 * apart. Documented in docs/cli.md; keep the two in step.
 */
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
} as const;

export type ExitCode = (typeof EXIT)[keyof typeof EXIT];

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
