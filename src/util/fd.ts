import { closeSync } from 'node:fs';

/** Closes a descriptor that may already be closed (cleanup paths, where there is nothing to report). */
export function closeQuietly(fd: number): void {
  try {
    closeSync(fd);
  } catch {
    /* already closed */
  }
}
