import { readFileSync } from 'node:fs';
import type { Logger } from 'pino';
import { parseBootId, parseMachineId } from './parse.js';
import { UNKNOWN_BOOT_ID, UNKNOWN_MACHINE_ID, type HostIds } from './types.js';

export interface HostIdPaths {
  bootId: string;
  /** Tried in order; the first that holds a valid 32-hex-digit id wins. */
  machineId: readonly string[];
}

export const DEFAULT_HOST_ID_PATHS: HostIdPaths = {
  bootId: '/proc/sys/kernel/random/boot_id',
  machineId: ['/etc/machine-id', '/var/lib/dbus/machine-id'],
};

function tryRead(path: string): string | null {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return null;
  }
}

/**
 * Reads the boot id and machine id once (they do not change while we run). Never throws:
 * an unreadable boot id gives UNKNOWN_BOOT_ID, a missing, empty or "uninitialized" machine id
 * gives UNKNOWN_MACHINE_ID with machineIdSource null; both are logged as warnings.
 */
export function readHostIds(logger: Logger, paths: HostIdPaths = DEFAULT_HOST_ID_PATHS): HostIds {
  const bootText = tryRead(paths.bootId);
  let bootId = bootText === null ? null : parseBootId(bootText);
  if (bootId === null) {
    logger.warn({ path: paths.bootId }, 'boot id unreadable; using "%s"', UNKNOWN_BOOT_ID);
    bootId = UNKNOWN_BOOT_ID;
  }
  for (const path of paths.machineId) {
    const text = tryRead(path);
    const id = text === null ? null : parseMachineId(text);
    if (id !== null) return { bootId, machineId: id, machineIdSource: path };
  }
  logger.warn({ paths: paths.machineId }, 'machine id absent; using "%s"', UNKNOWN_MACHINE_ID);
  return { bootId, machineId: UNKNOWN_MACHINE_ID, machineIdSource: null };
}
