import { constants as osConstants } from 'node:os';
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { isLogLevel, LOG_LEVELS } from '../log.js';
import { MOUNT_OPTION_NAMES } from '../fuse/mount.js';
import { CliError, EXIT } from './exit-codes.js';

/** What the user asked for, parsed and checked; nothing here touches the system. */
export type Command =
  | { name: 'help'; topic?: string }
  | { name: 'version' }
  | { name: 'mount'; mountpoint: string; state?: string; options: string[]; daemon: boolean; logLevel?: string }
  | { name: 'umount'; mountpoint: string; lazy: boolean }
  | { name: 'restart'; mountpoint: string }
  | { name: 'status'; mountpoint: string; json: boolean; prometheus?: boolean }
  | { name: 'ls'; mountpoint?: string; json: boolean }

  /** `words`: TARGET... [--] CMD [ARG...]; `split`: the index of `--` in words, if given (the CLI finds the end of the targets otherwise). */
  | { name: 'exec'; words: string[]; split?: number }
  | { name: 'bind'; target: string; file: string }
  | { name: 'kill'; signal: string; targets: string[] }
  | { name: 'wait'; targets: string[] };

/** Commands whose help exists (help TOPIC). */
export const HELP_TOPICS = ['mount', 'umount', 'status', 'restart', 'ls', 'exec', 'bind', 'kill', 'wait'];

/**
 * Options mount(8) passes to helpers that mean nothing to a FUSE server; accepted and ignored
 * (`rw` too: mount(8) adds it, and the filesystem is read-only whatever is said). The flags the
 * kernel applies to a mount (noexec, noatime, nosuid, ...) go to the FUSE layer (MOUNT_FLAGS).
 */
const GENERIC_MOUNT_OPTIONS = new Set([
  'rw', 'defaults', 'auto', 'noauto', 'nofail', 'user', 'nouser', 'users', 'owner', 'group', '_netdev', 'silent', 'loud',
]);

function usage(message: string, command?: string): CliError {
  const hint = command === undefined ? "run 'handlefs --help' for usage" : `run 'handlefs ${command} --help' for usage`;
  return new CliError(message, EXIT.usage, hint);
}

type Values = Record<string, string | boolean | Array<string | boolean> | undefined>;

function parse(command: string, argv: string[], options: NonNullable<ParseArgsConfig['options']>): { values: Values; positionals: string[] } {
  try {
    return parseArgs({ args: argv, options: { ...options, help: { type: 'boolean', short: 'h' } }, allowPositionals: true, strict: true });
  } catch (e) {
    // parseArgs says e.g. "Unknown option '--foo'": keep its words, add the hint.
    const text = (e as Error).message.replace(/\. To specify a positional argument.*$/s, '');
    throw usage(text, command);
  }
}

function oneMountpoint(command: string, positionals: string[]): string {
  if (positionals.length === 0) throw usage(`${command}: missing the mountpoint (MNT)`, command);
  if (positionals.length > 1) throw usage(`${command}: unexpected argument '${positionals[1]}'`, command);
  return positionals[0]!;
}

function checkLevel(level: string | undefined, command: string): void {
  if (level !== undefined && !isLogLevel(level)) throw usage(`unknown log level '${level}' (one of ${LOG_LEVELS.join(', ')})`, command);
}

/** What the values of the -o options look like, for the list an unknown option's error gives. */
const VALUE_HINTS: Record<string, string> = { entry_timeout: 'SECONDS', attr_timeout: 'SECONDS', fsname: 'NAME', subtype: 'NAME', max_read: 'BYTES', hidepid: 'MODE', state: 'FILE', log_level: 'LEVEL' };
/** -o options the service hands to the tree rather than the FUSE layer. */
const TREE_VALUE_OPTIONS = ['hidepid'] as const;

/** Every -o option there is, as the error for an unknown one lists them. */
export function knownMountOptions(): string {
  const values = [...MOUNT_OPTION_NAMES.values, ...TREE_VALUE_OPTIONS, 'state', 'log_level'].map((v) => `${v}=${VALUE_HINTS[v] ?? 'VALUE'}`);
  return `${[...MOUNT_OPTION_NAMES.flags, ...values].join(', ')}; the kernel's mount flags (${MOUNT_OPTION_NAMES.kernelFlags.join(', ')}); and mount(8)'s generic ones (rw, defaults, noauto, nofail, _netdev, x-*, ...), which are ignored`;
}

/** Refuses an -o option nothing parses, naming every option that exists (exit 13). */
function checkMountOptionNames(fuse: readonly string[]): void {
  const names = new Set<string>([...MOUNT_OPTION_NAMES.flags, ...MOUNT_OPTION_NAMES.values, ...MOUNT_OPTION_NAMES.kernelFlags, ...TREE_VALUE_OPTIONS]);
  for (const opt of fuse) {
    const key = opt.split('=')[0]!;
    if (!names.has(key)) throw new CliError(`unknown mount option "${key}" (known: ${knownMountOptions()})`, EXIT.badMountOption, "run 'handlefs mount --help' for what each means");
  }
}

/**
 * Splits -o values into what the FUSE layer parses and what the CLI itself takes (state=,
 * log_level=), dropping mount(8)'s generic options.
 */
export function splitMountOptions(values: readonly string[]): { fuse: string[]; state?: string; logLevel?: string } {
  const fuse: string[] = [];
  let state: string | undefined;
  let logLevel: string | undefined;
  for (const value of values) {
    for (const raw of value.split(',')) {
      const opt = raw.trim();
      if (opt === '' || GENERIC_MOUNT_OPTIONS.has(opt) || opt.startsWith('x-') || opt.startsWith('comment=')) continue;
      if (opt.startsWith('state=')) state = opt.slice('state='.length);
      else if (opt.startsWith('log_level=')) logLevel = opt.slice('log_level='.length);
      else fuse.push(opt);
    }
  }
  return { fuse, ...(state !== undefined && { state }), ...(logLevel !== undefined && { logLevel }) };
}

/** A signal by number (0-64), name (SIGKILL) or short name (KILL, kill); undefined if unknown. */
export function signalNumber(s: string): number | undefined {
  if (/^\d+$/.test(s)) {
    const n = Number(s);
    return n <= 64 ? n : undefined;
  }
  const name = s.toUpperCase().startsWith('SIG') ? s.toUpperCase() : `SIG${s.toUpperCase()}`;
  const n = (osConstants.signals as Record<string, number | undefined>)[name];
  return n;
}

/** SIGKILL for 9; `signal N` for numbers without a name. */
export function signalName(n: number): string {
  for (const [name, v] of Object.entries(osConstants.signals)) if (v === n && name !== 'SIGIOT' && name !== 'SIGPOLL') return name;
  return `signal ${n}`;
}

/** Parses `handlefs ARGS...`. Throws CliError (exit 2) for anything it does not understand. */
export function parseCommand(argv: readonly string[]): Command {
  const [first, ...rest] = argv;
  if (first === undefined) throw usage('missing a command');
  if (first === '-h' || first === '--help') return { name: 'help' };
  if (first === '-V' || first === '--version') return { name: 'version' };
  switch (first) {
    case 'help': {
      const topic = rest[0];
      if (topic !== undefined && topic !== 'help' && !HELP_TOPICS.includes(topic)) throw usage(`help: unknown command '${topic}'`);
      return topic === undefined || topic === 'help' ? { name: 'help' } : { name: 'help', topic };
    }
    case 'mount': {
      const { values, positionals } = parse('mount', rest, {
        state: { type: 'string' },
        o: { type: 'string', short: 'o', multiple: true },
        daemon: { type: 'boolean', short: 'd' },
        // -f: foreground, as sshfs, bindfs and libfuse's tools spell it (the default already).
        foreground: { type: 'boolean', short: 'f' },
        'log-level': { type: 'string' },
      });
      if (values.help) return { name: 'help', topic: 'mount' };
      const mountpoint = oneMountpoint('mount', positionals);
      if (values.daemon && values.foreground) throw usage('mount: --daemon and -f (--foreground) contradict each other', 'mount');
      const split = splitMountOptions((values.o as string[] | undefined) ?? []);
      checkMountOptionNames(split.fuse);
      const logLevel = (values['log-level'] as string | undefined) ?? split.logLevel;
      checkLevel(logLevel, 'mount');
      const state = (values.state as string | undefined) ?? split.state;
      if (state === '') throw usage('mount: --state needs a file path', 'mount');
      return {
        name: 'mount',
        mountpoint,
        options: split.fuse,
        daemon: Boolean(values.daemon),
        ...(state !== undefined && { state }),
        ...(logLevel !== undefined && { logLevel }),
      };
    }
    case 'umount':
    case 'unmount': {
      const { values, positionals } = parse('umount', rest, { lazy: { type: 'boolean', short: 'l' } });
      if (values.help) return { name: 'help', topic: 'umount' };
      return { name: 'umount', mountpoint: oneMountpoint('umount', positionals), lazy: Boolean(values.lazy) };
    }
    case 'restart':
    case 'reload': {
      const { values, positionals } = parse('restart', rest, {});
      if (values.help) return { name: 'help', topic: 'restart' };
      return { name: 'restart', mountpoint: oneMountpoint('restart', positionals) };
    }
    case 'status': {
      const { values, positionals } = parse('status', rest, { json: { type: 'boolean' }, prometheus: { type: 'boolean' } });
      if (values.help) return { name: 'help', topic: 'status' };
      if (values.json && values.prometheus) throw usage('status: --json and --prometheus are two formats; choose one', 'status');
      return { name: 'status', mountpoint: oneMountpoint('status', positionals), json: Boolean(values.json), ...(values.prometheus === true && { prometheus: true }) };
    }
    case 'ls': {
      const { values, positionals } = parse('ls', rest, { json: { type: 'boolean' } });
      if (values.help) return { name: 'help', topic: 'ls' };
      if (positionals.length > 1) throw usage(`ls: unexpected argument '${positionals[1]}'`, 'ls');
      return { name: 'ls', json: Boolean(values.json), ...(positionals[0] !== undefined && { mountpoint: positionals[0] }) };
    }
    case 'exec': {
      if (rest[0] === '-h' || rest[0] === '--help') return { name: 'help', topic: 'exec' };
      const split = rest.indexOf('--');
      if (split === 0) throw usage('exec: missing a TARGET before --', 'exec');
      if (split >= 0 && split === rest.length - 1) throw usage('exec: missing the command after --', 'exec');
      if (rest.length < 2) throw usage('exec: expected TARGET... [--] CMD [ARG...]', 'exec');
      return split >= 0 ? { name: 'exec', words: [...rest], split } : { name: 'exec', words: [...rest] };
    }
    case 'bind': {
      const { values, positionals } = parse('bind', rest, {});
      if (values.help) return { name: 'help', topic: 'bind' };
      if (positionals.length !== 2) throw usage('bind: expected TARGET FILE', 'bind');
      return { name: 'bind', target: positionals[0]!, file: positionals[1]! };
    }
    case 'kill': {
      const { values, positionals } = parse('kill', rest, { signal: { type: 'string', short: 's' } });
      if (values.help) return { name: 'help', topic: 'kill' };
      if (positionals.length === 0) throw usage('kill: missing a TARGET', 'kill');
      const signal = (values.signal as string | undefined) ?? 'SIGTERM';
      if (signalNumber(signal) === undefined) throw usage(`kill: unknown signal '${signal}'`, 'kill');
      return { name: 'kill', signal, targets: positionals };
    }
    case 'wait': {
      const { values, positionals } = parse('wait', rest, {});
      if (values.help) return { name: 'help', topic: 'wait' };
      if (positionals.length === 0) throw usage('wait: missing a TARGET', 'wait');
      return { name: 'wait', targets: positionals };
    }
    default:
      throw usage(first.startsWith('-') ? `unknown option '${first}'` : `unknown command '${first}'`);
  }
}

/**
 * mount(8) runs `/sbin/mount.fuse.handlefs SOURCE MNT [-o OPTS] [-n] [-s] [-f] [-v] ...` for an
 * fstab line or `mount -t fuse.handlefs`. That becomes `handlefs mount MNT -o OPTS --daemon`:
 * mount(8) waits for the helper, so it must return once the mount is ready.
 */
export function parseMountHelper(argv: readonly string[]): Command {
  const positionals: string[] = [];
  const options: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === '-o') {
      const v = argv[++i];
      if (v === undefined) throw usage('mount helper: -o needs a value', 'mount');
      options.push(v);
    } else if (arg.startsWith('-o')) options.push(arg.slice(2));
    else if (arg === '-t' || arg === '-N') i++; // type is ours; namespaces are not supported by this helper
    else if (/^-[nsfv]+$/.test(arg)) continue; // no-mtab, sloppy, fake, verbose: nothing to do
    else if (arg.startsWith('-')) throw usage(`mount helper: unknown option '${arg}'`, 'mount');
    else positionals.push(arg);
  }
  if (positionals.length !== 2) throw usage(`mount helper: expected SOURCE and MNT, got ${positionals.length} argument(s)`, 'mount');
  const split = splitMountOptions(options);
  checkMountOptionNames(split.fuse);
  checkLevel(split.logLevel, 'mount');
  return {
    name: 'mount',
    mountpoint: positionals[1]!,
    options: [...split.fuse.filter((o) => !o.startsWith('fsname=')), `fsname=${positionals[0]!}`],
    daemon: true,
    ...(split.state !== undefined && { state: split.state }),
    ...(split.logLevel !== undefined && { logLevel: split.logLevel }),
  };
}
