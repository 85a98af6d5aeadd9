/** inversify tokens shared by every layer. esbuild emits no decorator metadata: inject by token. */
export const LOGGER = Symbol.for('handlefs.Logger');
