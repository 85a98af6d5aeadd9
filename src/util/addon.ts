/**
 * Lazy loading of the project's N-API helpers (built by node-gyp from native/ into build/Release).
 * Nothing is loaded until a caller needs it, so the in-process kit and the fakes work without a
 * compiler; each layer degrades when its helper is missing (docs/sources.md, docs/fuse.md).
 */
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export interface AddonSpec {
  /** File name under build/Release, e.g. 'handlefs_native.node'. */
  file: string;
  /** Environment variable that overrides the path (tests point it at a missing file). */
  envVar: string;
  /** Names the helper in the missing-helper message. */
  label: string;
}

/** What a missing helper's error says first. */
export function missingHelperMessage(label: string): string {
  return `${label} not built: run \`npm run build:native\``;
}

export class NativeHelperMissingError extends Error {
  readonly code = 'ERR_HANDLEFS_NATIVE_MISSING';
  constructor(
    label: string,
    readonly searched: readonly string[],
    cause?: unknown,
  ) {
    super(`${missingHelperMessage(label)} (looked for ${searched.join(', ')})`, { cause });
    this.name = 'NativeHelperMissingError';
  }
}

function candidatePaths(spec: AddonSpec): string[] {
  const env = process.env[spec.envVar];
  if (env) return [env];
  // src/util/addon.ts in development, dist/<chunk>.js once bundled: walk up to the package root.
  const out: string[] = [];
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 5; i++) {
    out.push(join(dir, 'build', 'Release', spec.file));
    const up = dirname(dir);
    if (up === dir) break;
    dir = up;
  }
  return out;
}

export interface AddonLoader<T> {
  /** Loads the helper (once). Throws NativeHelperMissingError when it is not built. */
  load(): T;
  /** The helper, or null when it is not built. */
  tryLoad(): T | null;
}

export function addonLoader<T>(spec: AddonSpec): AddonLoader<T> {
  let cached: T | null = null;
  let failure: NativeHelperMissingError | null = null;
  const load = (): T => {
    if (cached) return cached;
    if (failure) throw failure;
    const paths = candidatePaths(spec);
    const found = paths.find((p) => existsSync(p));
    if (found === undefined) throw (failure = new NativeHelperMissingError(spec.label, paths));
    try {
      cached = createRequire(import.meta.url)(found) as T;
      return cached;
    } catch (err) {
      throw (failure = new NativeHelperMissingError(spec.label, [found], err));
    }
  };
  return {
    load,
    tryLoad(): T | null {
      try {
        return load();
      } catch (err) {
        if (err instanceof NativeHelperMissingError) return null;
        throw err;
      }
    },
  };
}
