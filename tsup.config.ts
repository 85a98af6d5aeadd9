import { defineConfig, type Options } from 'tsup';

/** What the package builds. The bins need no declaration files: only the two library entries get them. */
const shared: Options = {
  target: 'node20',
  platform: 'node',
  sourcemap: true,
  shims: false,
};

export default defineConfig([
  {
    ...shared,
    entry: {
      index: 'src/index.ts',
      'testing/index': 'src/testing/index.ts',
      'cli/main': 'src/cli/main.ts',
      'cli/mount-helper': 'src/cli/mount-helper.ts',
      // The store's commit thread: a module of its own, started by path (src/store/commit-worker.ts).
      'store/commit-thread': 'src/store/commit-thread.ts',
    },
    format: ['esm'],
    dts: { entry: { index: 'src/index.ts', 'testing/index': 'src/testing/index.ts' } },
    clean: true,
    splitting: true,
    // scripts/build-man.mjs (run after tsup by `npm run build`) copies the kit's declarations to
    // dist/testing/index.d.cts, where `require('handlefs/testing')` looks for them.
  },
  {
    // handlefs/testing for CommonJS consumers (a project made with `npm init -y`): one file.
    ...shared,
    entry: { 'testing/index': 'src/testing/index.ts' },
    format: ['cjs'],
    dts: false,
    clean: false,
    splitting: false,
    shims: true, // import.meta.url of the native helpers' loader (never called by the kit)
    // inversify is published as ES modules only; bundled here, require() works on every Node 20,
    // not only on those (20.19+) that can require() an ES module.
    noExternal: [/^inversify$/, /^@inversifyjs\//],
  },
]);
