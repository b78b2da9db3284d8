/**
 * Exit codes of the `vectun` command (documented in README "CLI reference"
 * and in `vectun --help`). Scripts and CI tell outcomes apart by these.
 * @module
 */
export const ExitCode = {
  /** Success (for `bridge`: stopped by SIGINT/SIGTERM after forwarding). */
  OK: 0,
  /** A runtime failure: a device, namespace or transfer step failed. */
  FAILURE: 1,
  /** Bad command line: unknown command or option, invalid value. */
  USAGE: 2,
  /** Prerequisites missing: root/CAP_NET_ADMIN, /dev/net/tun, iproute2, native addon. */
  PREREQUISITES: 3,
  /** The transfer finished but its data did not verify (sha256 or byte count). */
  VERIFY: 4,
  /** Interrupted by SIGINT (demo, bench): everything was cleaned up. 128 + 2. */
  INTERRUPTED: 130,
  /** Interrupted by SIGTERM (demo, bench). 128 + 15. */
  TERMINATED: 143,
} as const;

export type ExitCode = (typeof ExitCode)[keyof typeof ExitCode];

/** The exit-code table as shown at the end of `vectun --help`. */
export const EXIT_CODES_HELP = `Exit codes:
  0    success (bridge, wg: stopped by SIGINT/SIGTERM; wg: device deleted)
  1    runtime failure (device, namespace or transfer error)
  2    usage error (unknown option, invalid value)
  3    prerequisites missing (root/CAP_NET_ADMIN, /dev/net/tun, iproute2, addon)
  4    transfer did not verify (sha256 or byte count mismatch)
  130  interrupted by SIGINT (demo, bench), after cleanup
  143  terminated by SIGTERM (demo, bench), after cleanup
`;
