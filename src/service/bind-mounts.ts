/**
 * Bind mounts of handle files, as this process's mount table shows them: a bind mount of
 * MNT/ns/net/<inum> is a mount of the same FUSE device whose root is that file. The kernel's
 * lookup is all the service sees of one, so status reads them here to say what keeps a handle.
 */
import { readMountInfo, withoutDeletedMark, type MountInfoEntry } from '../fuse/mount.js';

/** Mount points per handle path inside the mount ("/ns/net/4026532000" → ["/run/netns/a"]). */
export function handleBindMounts(mountpoint: string, entries: readonly MountInfoEntry[] = readMountInfo()): Map<string, string[]> {
  const own = entries.find((e) => e.mountpoint === mountpoint && e.root === '/' && e.fstype.startsWith('fuse'));
  const out = new Map<string, string[]>();
  if (own === undefined) return out;
  for (const e of entries) {
    if (e === own || e.device !== own.device || e.root === '/') continue;
    // A name the kernel was asked to drop (an idle namespace handle) shows as unlinked.
    const root = withoutDeletedMark(e.root);
    const list = out.get(root);
    if (list === undefined) out.set(root, [e.mountpoint]);
    else list.push(e.mountpoint);
  }
  return out;
}
