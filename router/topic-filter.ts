/**
 * Topic name and topic filter rules of MQTT 3.1.1 §4.7 / 5.0 §4.7, as pure functions.
 * The connection layer uses them to refuse bad input; the tries below rely on their invariants
 * (a name has no wildcard; '#' only last; '+' and '#' occupy a whole level).
 */

/** True when a PUBLISH topic name is valid: non-empty, no wildcards, no NUL [MQTT-3.3.2-2], [MQTT-4.7.3-1]. */
export function isValidTopicName(name: string): boolean {
  if (name.length === 0) return false;
  for (let i = 0; i < name.length; i++) {
    const c = name.charCodeAt(i);
    if (c === 0x23 /* # */ || c === 0x2b /* + */ || c === 0) return false;
  }
  return true;
}

/** True when a SUBSCRIBE/UNSUBSCRIBE filter is valid [MQTT-4.7.1-2], [MQTT-4.7.1-3], [MQTT-4.7.3-1]. */
export function isValidTopicFilter(filter: string): boolean {
  if (filter.length === 0) return false;
  const levels = filter.split('/');
  for (let i = 0; i < levels.length; i++) {
    const level = levels[i] as string;
    if (level.includes('\u0000')) return false;
    if (level.includes('#')) {
      if (level !== '#' || i !== levels.length - 1) return false;
    } else if (level.includes('+') && level !== '+') {
      return false;
    }
  }
  return true;
}

/** Reference matcher used by tests and for one-off checks (the tries are the fast path). */
export function topicMatches(filter: string, name: string): boolean {
  const f = filter.split('/');
  // [MQTT-4.7.2-1] a leading wildcard does not match a topic that starts with '$'
  if (name.startsWith('$') && (f[0] === '#' || f[0] === '+')) return false;
  return levelsMatch(f, name.split('/'));
}

/** A filter's levels against a topic name's levels (`+` one level, `#` the rest); no '$' rule. */
export function levelsMatch(filter: readonly string[], name: readonly string[]): boolean {
  for (let i = 0; i < filter.length; i++) {
    const level = filter[i];
    if (level === '#') return true;
    if (i >= name.length) return false;
    if (level !== '+' && level !== name[i]) return false;
  }
  return filter.length === name.length;
}
