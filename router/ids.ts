/**
 * Identifiers shared between the router and the connection layer.
 * Branded so a TopicId can never be passed where an offset or a packet id is expected.
 * Offsets stay plain numbers (they are arithmetic all day) and come from commitlog/.
 */

/** Dense integer id of an interned topic name; also its offset in the `topics` meta log. */
export type TopicId = number & { readonly __brand: 'TopicId' };

export type QoS = 0 | 1 | 2;
