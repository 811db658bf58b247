/**
 * MQTT 5 enhanced authentication (§4.12): a pluggable method exchanges AUTH packets with the
 * client, before CONNACK and again whenever the client asks to re-authenticate.
 *
 *   client                       broker
 *   CONNECT(method, data) ──────► start()
 *                         ◄────── AUTH 0x18 (data)        while 'continue'
 *   AUTH 0x18 (data) ───────────► continue()
 *                         ◄────── CONNACK 0x00 | 0x87     on 'success' / 'failure'
 *   later: AUTH 0x19 ───────────► start() … ◄── AUTH 0x00 on success, DISCONNECT 0x87 on failure
 *
 * A method is plain code with no access to the broker: it sees the client's identity and the
 * bytes the client sent, and answers with the next step.
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';

export interface AuthContext {
  readonly clientId: string;
  readonly username: string | undefined;
}

export type AuthStep =
  | { readonly kind: 'success'; readonly data?: Buffer }
  | { readonly kind: 'continue'; readonly data: Buffer; readonly state: unknown }
  | { readonly kind: 'failure'; readonly reason: string };

export interface AuthMethod {
  /** The Authentication Method string clients name in CONNECT. */
  readonly name: string;
  start(ctx: AuthContext, data: Buffer | undefined): AuthStep;
  continue(ctx: AuthContext, state: unknown, data: Buffer | undefined): AuthStep;
}

/** Length of the built-in method's challenge, in bytes. */
const CHALLENGE_BYTES = 16;

/**
 * A simple built-in method, `MQLOG-CHALLENGE`: the broker sends a random challenge and the
 * client answers HMAC-SHA256(secret, challenge), where the secret belongs to the CONNECT's user
 * name. The secret never crosses the wire and a replayed answer fails on a new challenge.
 */
export function challengeResponseAuth(secretFor: (username: string) => Buffer | undefined): AuthMethod {
  return {
    name: 'MQLOG-CHALLENGE',
    start(ctx) {
      if (ctx.username === undefined || secretFor(ctx.username) === undefined) return { kind: 'failure', reason: 'unknown user' };
      const challenge = randomBytes(CHALLENGE_BYTES);
      return { kind: 'continue', data: challenge, state: challenge };
    },
    continue(ctx, state, data) {
      const secret = ctx.username === undefined ? undefined : secretFor(ctx.username);
      if (secret === undefined || !(state instanceof Buffer) || data === undefined) return { kind: 'failure', reason: 'no answer' };
      const expected = createHmac('sha256', secret).update(state).digest();
      if (data.length !== expected.length || !timingSafeEqual(data, expected)) return { kind: 'failure', reason: 'wrong answer' };
      return { kind: 'success' };
    },
  };
}

/** What a client computes for `MQLOG-CHALLENGE` (used by tests and by clients written in Node). */
export function answerChallenge(secret: Buffer, challenge: Buffer): Buffer {
  return createHmac('sha256', secret).update(challenge).digest();
}
