/**
 * The public surface of commitlog/: the only module the router imports.
 * notes/architecture.md documents the contract; everything here beyond it is marked there as
 * an addition.
 */
export { CommitLog, READ_MAX_ENTRIES, type CommitLogEvents, type Offset, type ReadBatch } from './commitlog.js';
export { emptyNumberArray, emptyObjectArray } from './elements.js';
export { CommitLogError, type CommitLogErrorCode, type CommitLogErrorDetails } from './errors.js';
export { nodeFileOps, type FileOps } from './file-ops.js';
export { LogStore } from './store.js';
export { decodeLogName, encodeLogName, isValidLogName, LOG_NAME_MAX_BYTES } from './naming.js';
export {
  LAZY_SYNC_MAX_BYTES,
  LOG_DEFAULTS,
  resolveLogOptions,
  resolveStoreOptions,
  type Durability,
  type LogOptions,
  type ResolvedLogOptions,
  type ResolvedStoreOptions,
  type StoreOptions,
} from './options.js';
export type { RecoveryReport } from './recovery.js';
