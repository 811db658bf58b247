/**
 * Errors of the MQTT protocol layer. A protocol violation carries the MQTT 5 reason code the
 * connection reports (as a DISCONNECT for 5.0 clients, as a log line and a closed socket for
 * 3.1.1 clients, which have no server DISCONNECT). It never crosses into the router.
 */
import { REASON, type ReasonCode } from './reason-codes.js';

export type MqttProtocolErrorCode =
  | 'ERR_MQTT_MALFORMED'
  | 'ERR_MQTT_PACKET_TOO_LARGE'
  | 'ERR_MQTT_PROTOCOL'
  | 'ERR_MQTT_CONNECT_FIRST'
  | 'ERR_MQTT_SECOND_CONNECT'
  | 'ERR_MQTT_TOPIC_INVALID'
  | 'ERR_MQTT_KEEPALIVE_TIMEOUT'
  | 'ERR_MQTT_CONNECT_TIMEOUT'
  | 'ERR_MQTT_TAKEN_OVER'
  | 'ERR_MQTT_STORE_FAILED'
  | 'ERR_MQTT_SHUTDOWN'
  | 'ERR_MQTT_QOS_NOT_SUPPORTED'
  | 'ERR_MQTT_TOPIC_ALIAS'
  | 'ERR_MQTT_RECEIVE_MAXIMUM'
  | 'ERR_MQTT_CONNECT_REFUSED'
  | 'ERR_MQTT_NOT_AUTHORIZED';

const REASON_OF: Record<MqttProtocolErrorCode, ReasonCode> = {
  ERR_MQTT_MALFORMED: REASON.MALFORMED_PACKET,
  ERR_MQTT_PACKET_TOO_LARGE: REASON.PACKET_TOO_LARGE,
  ERR_MQTT_PROTOCOL: REASON.PROTOCOL_ERROR,
  ERR_MQTT_CONNECT_FIRST: REASON.PROTOCOL_ERROR,
  ERR_MQTT_SECOND_CONNECT: REASON.PROTOCOL_ERROR,
  ERR_MQTT_TOPIC_INVALID: REASON.TOPIC_NAME_INVALID,
  ERR_MQTT_KEEPALIVE_TIMEOUT: REASON.KEEP_ALIVE_TIMEOUT,
  ERR_MQTT_CONNECT_TIMEOUT: REASON.MALFORMED_PACKET,
  ERR_MQTT_TAKEN_OVER: REASON.SESSION_TAKEN_OVER,
  ERR_MQTT_STORE_FAILED: REASON.IMPLEMENTATION_SPECIFIC_ERROR,
  ERR_MQTT_SHUTDOWN: REASON.SERVER_SHUTTING_DOWN,
  ERR_MQTT_QOS_NOT_SUPPORTED: REASON.QOS_NOT_SUPPORTED,
  ERR_MQTT_TOPIC_ALIAS: REASON.TOPIC_ALIAS_INVALID,
  ERR_MQTT_RECEIVE_MAXIMUM: REASON.RECEIVE_MAXIMUM_EXCEEDED,
  ERR_MQTT_CONNECT_REFUSED: REASON.UNSPECIFIED_ERROR,
  ERR_MQTT_NOT_AUTHORIZED: REASON.NOT_AUTHORIZED,
};

export class MqttProtocolError extends Error {
  readonly code: MqttProtocolErrorCode;
  /** The MQTT 5 reason code that describes this error on the wire. */
  readonly reasonCode: ReasonCode;
  /** Already reported to the client (a refused CONNACK): no warning line needed. */
  readonly silent: boolean;

  constructor(code: MqttProtocolErrorCode, message: string, options: { cause?: unknown; reasonCode?: ReasonCode; silent?: boolean } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'MqttProtocolError';
    this.code = code;
    this.reasonCode = options.reasonCode ?? REASON_OF[code];
    this.silent = options.silent === true;
  }
}
