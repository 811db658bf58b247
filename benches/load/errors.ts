/**
 * Errors of the load client. One base class, a closed set of string codes; tests match on
 * `code`. Faults of the load itself (EMFILE, ECONNREFUSED, timeouts) are not thrown at the user:
 * they become figures. These errors are for misuse (bad options) and for protocol surprises.
 */

/** Every code a {@link LoadClientError} can carry. */
export type LoadClientErrorCode =
  | 'ERR_LOAD_INVALID_OPTION'
  | 'ERR_LOAD_CONNECT_TIMEOUT'
  | 'ERR_LOAD_CONNACK_REFUSED'
  | 'ERR_LOAD_SUBACK_REFUSED'
  | 'ERR_LOAD_PROTOCOL'
  | 'ERR_LOAD_CLOSED'
  | 'ERR_LOAD_WORKER';

/** The one error class of `benches/load/`. */
export class LoadClientError extends Error {
  /** Stable machine-readable code. */
  readonly code: LoadClientErrorCode;

  constructor(code: LoadClientErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'LoadClientError';
    this.code = code;
  }
}

/**
 * The short code a fault is counted under in the figures: the errno code of a system error
 * (`EMFILE`, `ECONNREFUSED`, ...), the code of a {@link LoadClientError}, or `EUNKNOWN`.
 */
export function faultCode(err: unknown): string {
  if (err !== null && typeof err === 'object' && 'code' in err && typeof err.code === 'string') return err.code;
  return 'EUNKNOWN';
}
