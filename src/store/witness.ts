/**
 * Records of what a state has issued, kept OUTSIDE its directory, so that restoring the state
 * directory (database and FILE.hwm together) from an older copy is detected instead of handing
 * out again the numbers issued since the copy.
 *
 * Two records per state in FILE.hwm's format, named by the state id (a hash of the state's
 * creation time, which a copy keeps):
 *  - per boot (`<dir>/<state id>.<boot id>.hwm`, default dir /run/handlefs/states): the exact
 *    high-water mark, rewritten at every reserve. Any restore within one boot is caught exactly.
 *    It need only outlive the process, not the machine, so it is written without fsync; the boot
 *    id in its name keeps a record of an earlier boot from being read where /run is not a tmpfs.
 *  - machine-wide (default /var/lib/misc/handlefs): a bound LOOKAHEAD above the high-water mark,
 *    rewritten only when the mark passes the bound (rarely: the disk cost stays off the reserve
 *    path). It survives reboots; the first start of a boot continues above it.
 * Both are advisory: failing to write one is logged, never fatal (the state's own two records
 * still bound every number). docs/store.md describes what remains uncovered.
 */
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Logger } from 'pino';
import { clockCeiling, describeCause, readHwm, writeHwm, type HwmRecord } from './damage.js';

/** How far the machine-wide record runs ahead of the high-water mark. */
export const WITNESS_LOOKAHEAD = 2 ** 22;

export interface WitnessDirs {
  /** Cleared at boot (tmpfs); exact records. */
  readonly perBoot?: string;
  /** Survives reboots; outside the state directory. */
  readonly machine?: string;
}

/** What the records say about a state at open. */
export interface WitnessReading {
  readonly perBoot?: HwmRecord;
  readonly machine?: HwmRecord;
}

export function stateId(createdAt: string): string {
  return createHash('sha256').update(`handlefs-state v1|${createdAt}`).digest('hex').slice(0, 32);
}

/** This boot's id (the kernel's random boot_id, dashes removed), or undefined if unreadable. */
function bootId(): string | undefined {
  try {
    const id = fs.readFileSync('/proc/sys/kernel/random/boot_id', 'latin1').trim().replace(/-/g, '');
    return /^[0-9a-f]{32}$/.test(id) ? id : undefined;
  } catch {
    return undefined;
  }
}

export class StateWitness {
  private readonly files: { perBoot?: string; machine?: string };
  /** The machine-wide record's current value (numbers below it are covered). */
  private machineBound = 0;
  private readonly warned = new Set<string>();

  constructor(
    dirs: WitnessDirs,
    createdAt: string,
    private readonly log: Logger,
    private readonly now: () => number,
  ) {
    const id = stateId(createdAt);
    const boot = bootId();
    this.files = {
      ...(dirs.perBoot !== undefined && boot !== undefined ? { perBoot: path.join(dirs.perBoot, `${id}.${boot}.hwm`) } : {}),
      ...(dirs.machine !== undefined ? { machine: path.join(dirs.machine, `${id}.hwm`) } : {}),
    };
  }

  read(): WitnessReading {
    const out: { perBoot?: HwmRecord; machine?: HwmRecord } = {};
    for (const which of ['perBoot', 'machine'] as const) {
      const file = this.files[which];
      if (file === undefined) continue;
      const r = readHwm(file);
      if (r.state === 'ok') out[which] = r.record;
      else if (r.state === 'corrupt') this.log.warn({ file, reason: r.reason }, `state record ${file} is unreadable (${r.reason}); ignoring it`);
    }
    return out;
  }

  /** Records that every number below `highWater` may have been issued by run `generation`. */
  granted(highWater: number, generation: number): void {
    this.write('perBoot', { highWater, generation });
    if (highWater > this.machineBound || this.machineBound === 0) {
      // Ahead of the mark, but never past the wall-clock bound the allocator itself respects.
      const bound = Math.max(highWater, Math.min(highWater + WITNESS_LOOKAHEAD, clockCeiling(this.now())));
      if (this.write('machine', { highWater: bound, generation })) this.machineBound = bound;
    }
  }

  private write(which: 'perBoot' | 'machine', record: HwmRecord): boolean {
    const file = this.files[which];
    if (file === undefined) return false;
    try {
      fs.mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
      writeHwm(file, record, { sync: which === 'machine' });
      return true;
    } catch (err) {
      if (!this.warned.has(file)) {
        this.warned.add(file);
        this.log.warn({ file, err: describeCause(err) }, `cannot write the state record ${file} (${describeCause(err)}); a restore of the state from a backup may go undetected`);
      }
      return false;
    }
  }
}
