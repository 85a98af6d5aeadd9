/** Help texts, one per command. */
export const MAIN_HELP = `usage: handlefs <command> [options]

Serves every live process and namespace of this host as a file with a stable, never-reused
inode number, through FUSE: MNT/pid/<pid>, MNT/ns/<type>/<nsfs-inode>, MNT/by-ino/<ino>.

commands:
  mount MNT      mount the filesystem at MNT (stays in the foreground unless --daemon)
  umount MNT     unmount it and stop the service cleanly (--lazy: detach a busy mount)
  restart MNT    replace the serving process with the installed code, without a client error
  status MNT     show what the running service holds (--json for tools, --prometheus for metrics)
  ls [MNT]       list every handle and what holds it, one line each (--json for tools)
  exec TARGET... [--] CMD [ARG...]
                 run CMD in the namespaces the handles name (as nsenter does)
  bind TARGET FILE
                 make FILE an nsfs bind mount of the handle's namespace (as ip netns add does)
  kill [-s SIG] TARGET...
                 signal exactly the handles' processes (through pidfds the service holds)
  wait TARGET... wait until the handles' processes end; print how each ended
  help [CMD]     show this text, or a command's

options:
  -h, --help     show help
  -V, --version  show the version

Run 'handlefs help <command>' for a command's options.`;

export const MOUNT_HELP = `usage: handlefs mount MNT [--state FILE] [-o opt[,opt...]] [--daemon | -f] [--log-level LEVEL]

Mounts the handle filesystem at MNT (an existing, empty directory) and serves it. Stays in the
foreground until the filesystem is unmounted ('umount MNT', 'handlefs umount MNT', SIGINT or
SIGTERM), then exits 0.

options:
  --state FILE       the inode table (SQLite); default /var/lib/handlefs/state.db
  -o OPTS            mount options, comma-separated, repeatable:
                       allow_other, default_permissions, ro, debug,
                       entry_timeout=SECONDS, attr_timeout=SECONDS (default 3600 each: exits are
                       invalidated explicitly), fsname=NAME, subtype=NAME, max_read=BYTES,
                       state=FILE (as --state), log_level=LEVEL (as --log-level),
                       hidepid=off|noaccess|invisible (0|1|2: what other users see, as procfs);
                       noexec, noatime, nodiratime, relatime, strictatime, lazytime, sync,
                       dirsync are passed to the kernel; nosuid, nodev always on (suid, dev
                       refused); mount(8)'s other generic options (rw, defaults, auto, noauto,
                       nofail, _netdev, x-systemd.*, ...) are accepted and ignored
  -d, --daemon       return once the mount is ready and leave the service running
  -f, --foreground   stay in the foreground (the default; as sshfs and bindfs spell it)
  --log-level LEVEL  fatal, error, warn, info (default), debug, trace or silent
                     (or HANDLEFS_LOG_LEVEL); debug logs one line per FUSE request and reply
  -h, --help         show this text`;

export const UMOUNT_HELP = `usage: handlefs umount MNT [--lazy]

Unmounts the handle filesystem at MNT and waits until the service has flushed its store and
exited; exits 0 only then. A mount still in use (a bind mount of a handle, an open file, a
working directory) is not unmounted: exit 16, naming what holds it where it can tell. Also
cleans up a stale mount (one whose service died) at MNT.

options:
  -l, --lazy  detach the mount now even if busy (umount -l); the service goes on serving the
              files still open and the bind mounts, and exits when the last one is gone
  -h, --help  show this text`;

export const RESTART_HELP = `usage: handlefs restart MNT

Replaces the process serving MNT with the handlefs code installed now (after an upgrade),
gracefully: the old process stops reading requests, answers the ones it read and hands over;
clients see a short delay, no error. The keeper that holds the mount stays (SIGHUP to the
keeper does the same: systemctl reload). Exit 17 if no new process took over.

options:
  -h, --help  show this text`;

export const STATUS_HELP = `usage: handlefs status MNT [--json | --prometheus]

Shows what the service behind MNT holds: live and pinned handles per kind, the high-water
number, allocations, lookups and forgets, requests served, store path and size, uptime.
It asks the service over its control socket (/run/handlefs/), not through the mount.

options:
  --json        one JSON object instead of text
  --prometheus  metrics in the Prometheus text format (for node_exporter's textfile
                collector: see docs/cli.md)
  -h, --help    show this text`;

export const LS_HELP = `usage: handlefs ls [MNT] [--json]

Lists every handle the service behind MNT holds, one line each: inode number, kind, pid or
nsfs inode number, command name or namespace type, state (live, dormant: alive but not held by
the kernel, dead: gone but still referenced), and what holds it: kernel lookups, open files,
library pins, the namespace descriptor the service holds (HELD), and bind mounts of the handle
(MOUNTS, from the service's /proc/self/mountinfo). Without MNT, the one handlefs mount there is.
It asks the service over its control socket, not through the mount.

options:
  --json      one JSON array of rows instead of text
  -h, --help  show this text`;

const TARGET_TEXT = `A TARGET is a path that resolves to a handle file: MNT/pid/<pid>, MNT/ns/<type>/<inum>,
MNT/by-ino/<ino>, or a bind mount of one elsewhere.`;

export const EXEC_HELP = `usage: handlefs exec TARGET... [--] CMD [ARG...]

Runs CMD inside the namespaces the targets name, as nsenter(1) does (and through it): a namespace
handle enters that namespace, whatever its type (a user namespace first); a process handle enters
all of that process's namespaces. It works while handlefs alone keeps a namespace alive. The exit
status is CMD's. Needs root. Without --, the leading arguments that are handle files are the targets.
${TARGET_TEXT}`;

export const BIND_HELP = `usage: handlefs bind TARGET FILE

Makes FILE (created if missing) a real nsfs bind mount of the namespace TARGET names: nsenter
--net=FILE, 'ip netns exec NAME' (for FILE = /run/netns/NAME) and 'ip -n NAME' then work, and the
namespace stays alive without handlefs until 'umount FILE'. A process handle is refused. Needs root.
${TARGET_TEXT}`;

export const KILL_HELP = `usage: handlefs kill [-s SIGNAL] TARGET...

Sends SIGNAL (name or number; default SIGTERM) to exactly the handles' processes, through the
pidfds the service holds: a process that has exited is an error (exit code 20), never another
process that reused its pid. Allowed as kill(2) allows it.
${TARGET_TEXT}`;

export const WAIT_HELP = `usage: handlefs wait TARGET...

Blocks until the handles' processes have ended and prints how each ended ('exited 42',
'killed by SIGKILL'). Exit status 0 when all ended. Allowed where kill(2) would allow a signal.
${TARGET_TEXT}`;

export const COMMAND_HELP: Record<string, string> = { mount: MOUNT_HELP, umount: UMOUNT_HELP, status: STATUS_HELP, restart: RESTART_HELP, ls: LS_HELP, exec: EXEC_HELP, bind: BIND_HELP, kill: KILL_HELP, wait: WAIT_HELP };
