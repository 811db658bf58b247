/**
 * Errors of the broker process itself (configuration, listening, data directory).
 * Each carries a stable code; notes/errors.md lists them.
 */
export type BrokerErrorCode = 'ERR_CONFIG_INVALID' | 'ERR_CONFIG_FILE' | 'ERR_LISTEN_ADDRESS_IN_USE' | 'ERR_LISTEN_FAILED' | 'ERR_DATA_DIR_UNWRITABLE' | 'ERR_DATA_DIR_LOCKED';

export class BrokerError extends Error {
  readonly code: BrokerErrorCode;

  constructor(code: BrokerErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'BrokerError';
    this.code = code;
  }
}
