/**
 * Errors the router raises. Protocol violations never reach here: the connection layer turns
 * them into CONNACK/DISCONNECT before calling the router. What reaches the caller from here is
 * about state (a topic the log store refused, a closed router) and carries a stable code.
 */

export type RouterErrorCode =
  | 'ERR_ROUTER_CLOSED'
  | 'ERR_ROUTER_TOPIC_LOG'
  | 'ERR_ROUTER_APPEND_FAILED'
  | 'ERR_ROUTER_META_CORRUPT'
  | 'ERR_ROUTER_INVALID_OPTION';

export class RouterError extends Error {
  readonly code: RouterErrorCode;

  constructor(code: RouterErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'RouterError';
    this.code = code;
  }
}
