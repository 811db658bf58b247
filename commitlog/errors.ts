/**
 * The commit log's one error type. Every failure that leaves commitlog/ is a CommitLogError
 * whose `code` is one of a closed set of strings; callers (and tests) match on `code`, never on
 * the message. An underlying Node error is kept as `cause`, never swallowed.
 *
 * Invariant: nothing in commitlog/ throws a bare Error across its public surface.
 */

/** The closed set of error codes. notes/errors.md has the table with meanings. */
export type CommitLogErrorCode =
  | 'ERR_COMMITLOG_CLOSED'
  | 'ERR_COMMITLOG_RECORD_TOO_LARGE'
  | 'ERR_COMMITLOG_CORRUPT'
  | 'ERR_COMMITLOG_IO'
  | 'ERR_COMMITLOG_NO_SPACE'
  | 'ERR_COMMITLOG_INVALID_OPTION'
  | 'ERR_COMMITLOG_INVALID_ARGUMENT'
  | 'ERR_COMMITLOG_VERSION'
  | 'ERR_COMMITLOG_INVALID_NAME';

/** Extra facts an error may carry. */
export interface CommitLogErrorDetails {
  /** The underlying error (usually a Node system error). */
  cause?: unknown;
  /** The file involved, when there is one. */
  path?: string;
  /** Byte position inside `path` the error is about (corruption). */
  position?: number;
}

/** Base (and only) error class of commitlog/. */
export class CommitLogError extends Error {
  /** Stable machine-readable code. */
  readonly code: CommitLogErrorCode;
  /** The file involved, if any. */
  readonly path: string | undefined;
  /** Byte position in `path`, if the error is about a place in a file. */
  readonly position: number | undefined;

  constructor(code: CommitLogErrorCode, message: string, details: CommitLogErrorDetails = {}) {
    super(message, details.cause === undefined ? undefined : { cause: details.cause });
    this.name = 'CommitLogError';
    this.code = code;
    this.path = details.path;
    this.position = details.position;
  }
}

/** The errno-style code of a Node system error, or undefined. */
export function systemCode(err: unknown): string | undefined {
  if (typeof err === 'object' && err !== null && 'code' in err) {
    const code = (err as { code: unknown }).code;
    return typeof code === 'string' ? code : undefined;
  }
  return undefined;
}

/**
 * Wraps a failure of a file operation: ENOSPC and EDQUOT become ERR_COMMITLOG_NO_SPACE,
 * anything else ERR_COMMITLOG_IO. A CommitLogError passes through unchanged.
 */
export function ioError(what: string, path: string, cause: unknown): CommitLogError {
  if (cause instanceof CommitLogError) return cause;
  const sys = systemCode(cause);
  const code = sys === 'ENOSPC' || sys === 'EDQUOT' ? 'ERR_COMMITLOG_NO_SPACE' : 'ERR_COMMITLOG_IO';
  return new CommitLogError(code, `${what} failed on ${path}${sys === undefined ? '' : ` (${sys})`}`, { cause, path });
}
