/**
 * Gate for suites that need real devices and namespaces: they skip with the
 * exact missing prerequisite when run unprivileged, but when env `CI` is set
 * they run anyway, so the missing prerequisite fails them instead of hiding.
 */
import { labUnavailableReason } from '../../src/lab/netns.js';

/** `skip` option for node:test: a reason string, or false to run. */
export function e2eSkip(): string | false {
  const reason = labUnavailableReason();
  if (reason === undefined || process.env['CI']) return false;
  return `needs root for TUN devices and network namespaces: ${reason}`;
}
