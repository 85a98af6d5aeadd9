/** Asking the running service over its control socket, with the CLI's errors and exit codes. */
import { mountAt, readMountInfo } from '../fuse/mount.js';
import { ControlRefusal, controlSocketPath, realMountpoint, requestControl, type ControlRequest } from '../service/control.js';
import { CliError, EXIT, type ExitCode } from './exit-codes.js';

/**
 * Sends one request to the service behind `mountpoint` (its real path: a symlink finds the same
 * service). Every failure is a one-line CliError: refused for the caller (permission denied, with
 * the service's reason), not mounted, or no service answering.
 */
export async function askService<T>(mountpoint: string, request: ControlRequest, timeoutMs?: number): Promise<T> {
  const p = realMountpoint(mountpoint);
  try {
    return await requestControl<T>(p, request, timeoutMs);
  } catch (e) {
    throw serviceError(p, e);
  }
}

/** The exit code of each errno the service refuses a request with. */
const CONTROL_REFUSAL_EXIT: Record<string, ExitCode> = {
  EPERM: EXIT.permissionDenied,
  EACCES: EXIT.permissionDenied,
  ESRCH: EXIT.processExited,
  EINVAL: EXIT.wrongKind,
  ENOENT: EXIT.namespaceFailed,
  ENOTSUP: EXIT.internal,
};

/** The CliError for a refusal by the service, said of `what` (a mountpoint or a TARGET). */
export function refusalError(what: string, e: ControlRefusal): CliError {
  return new CliError(`${what}: ${e.message}`, CONTROL_REFUSAL_EXIT[e.refusal ?? ''] ?? EXIT.internal);
}

/** The CliError for a failed request to the service at `p`. */
export function serviceError(p: string, e: unknown): CliError {
  if (e instanceof ControlRefusal) return refusalError(p, e);
  const code = (e as NodeJS.ErrnoException).code;
  if (code === 'EACCES' || code === 'EPERM') {
    return new CliError(`permission denied: the control socket ${controlSocketPath(p)} of the service at ${p} is root's`, EXIT.permissionDenied, `run it as root`);
  }
  if ((code === 'ENOENT' || code === 'ECONNREFUSED') && mountAt(p) === undefined) return new CliError(`${p} is not mounted`, EXIT.notMounted);
  return new CliError(`no handlefs service answers for ${p}: ${(e as Error).message}`, EXIT.serviceUnreachable, `is it a handlefs mount? try: handlefs umount ${p}`);
}

/** Mountpoints of handlefs filesystems visible here (type fuse.handlefs), in mount order. */
export function handlefsMounts(): string[] {
  return [...new Set(readMountInfo().filter((m) => m.fstype === 'fuse.handlefs').map((m) => m.mountpoint))];
}

/** The mountpoint a command without MNT means: the one handlefs mount there is. */
export function onlyMount(command: string): string {
  const mounts = handlefsMounts();
  if (mounts.length === 1) return mounts[0]!;
  if (mounts.length === 0) throw new CliError('no handlefs filesystem is mounted here', EXIT.notMounted, `name one: handlefs ${command} MNT`);
  throw new CliError(`${mounts.length} handlefs filesystems are mounted (${mounts.join(', ')})`, EXIT.usage, `name one: handlefs ${command} MNT`);
}
