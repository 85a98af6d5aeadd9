/** Asking the running service over its control socket, with the CLI's errors and exit codes. */
import path from 'node:path';
import { mountAt, readMountInfo } from '../fuse/mount.js';
import { requestControl, type ControlRequest } from '../service/control.js';
import { CliError, EXIT } from './exit-codes.js';

/** Sends one request to the service behind `mountpoint`; "not mounted" and "no answer" are CliErrors. */
export async function askService<T>(mountpoint: string, request: ControlRequest): Promise<T> {
  const p = path.resolve(mountpoint);
  try {
    return await requestControl<T>(p, request);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if ((code === 'ENOENT' || code === 'ECONNREFUSED') && mountAt(p) === undefined) throw new CliError(`${p} is not mounted`, EXIT.notMounted);
    throw new CliError(`no handlefs service answers for ${p}: ${(e as Error).message}`, EXIT.serviceUnreachable, `is it a handlefs mount? try: handlefs umount ${p}`);
  }
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
