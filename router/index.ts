/**
 * The router's public surface: what src/ may import. Everything else in router/ is private.
 */
export { parseShared, Router, type RouterOptions, type RouterLogger, type RouterStats } from './router.js';
export { Session, type Outlet, type SubscriptionOptions } from './session.js';
export { RouterError, type RouterErrorCode } from './errors.js';
export type { TopicId, QoS } from './ids.js';
export { isValidTopicName, isValidTopicFilter, topicMatches } from './topic-filter.js';
