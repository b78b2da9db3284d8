/**
 * Prerequisite checks for the commands that create devices and namespaces:
 * root or CAP_NET_ADMIN, a `/dev/net/tun` character device, and iproute2's
 * `ip`. Each failed check says exactly what is missing and how to fix it.
 * The system access is injectable so the decisions are unit-tested.
 * @module
 */
import * as fs from 'node:fs';
import * as path from 'node:path';

/** CAP_NET_ADMIN is capability bit 12, CAP_SYS_ADMIN bit 21 (linux/capability.h). */
export const CAP_NET_ADMIN_BIT = 12;
export const CAP_SYS_ADMIN_BIT = 21;

/** What a check looked at. */
export interface PrerequisiteResult {
  id: 'privileges' | 'tun' | 'iproute2';
  ok: boolean;
  /** What was found, e.g. `uid 1000 without CAP_NET_ADMIN`. */
  detail: string;
  /** How to fix it; empty when `ok`. */
  fix: string;
}

/** The system facts the checks read; tests pass fakes. */
export interface PrerequisiteProbe {
  /** Text of /proc/self/status, or undefined if unreadable. */
  procStatus(): string | undefined;
  uid(): number;
  /**
   * 'char' for a character device this process may open read-write,
   * 'no-access' for one it may not, 'other' for anything else, 'missing' if absent.
   */
  tunNode(): 'char' | 'no-access' | 'other' | 'missing';
  /** Absolute path of `ip` on PATH, or undefined. */
  findIp(): string | undefined;
}

/** Effective capability mask from /proc/self/status (`CapEff:` hex line). */
export function parseCapEff(status: string): bigint | undefined {
  const m = /^CapEff:\s*([0-9a-fA-F]+)\s*$/m.exec(status);
  return m ? BigInt(`0x${m[1]!}`) : undefined;
}

/** Whether a capability mask holds capability `bit`. */
export function hasCapability(mask: bigint, bit: number): boolean {
  return ((mask >> BigInt(bit)) & 1n) === 1n;
}

/**
 * What the command needs. `demo` and `bench` build namespaces (root, iproute2);
 * `bridge` needs only /dev/net/tun up front, because attaching to a persistent
 * device the user owns needs no capability: a refusal there is reported when
 * the device is opened, with {@link PERMISSION_FIX}.
 */
export interface PrerequisiteNeeds {
  /** `ip netns add` mounts under /run/netns, which needs CAP_SYS_ADMIN as well. */
  namespaces: boolean;
}

/** How to get the right to create TUN devices. */
export const PERMISSION_FIX =
  'run as root (sudo), give the process CAP_NET_ADMIN, or create the devices beforehand for your user: sudo ip tuntap add dev NAME mode tun vnet_hdr user "$USER"';

/** Runs every check; all are reported, not just the first failure. */
export function checkPrerequisites(needs: PrerequisiteNeeds, probe: PrerequisiteProbe = systemProbe()): PrerequisiteResult[] {
  const results: PrerequisiteResult[] = [];
  if (needs.namespaces) results.push(checkPrivileges(probe));

  const tun = probe.tunNode();
  results.push({
    id: 'tun',
    ok: tun === 'char',
    detail: {
      char: '/dev/net/tun present',
      'no-access': 'no read/write access to /dev/net/tun',
      missing: '/dev/net/tun does not exist',
      other: '/dev/net/tun is not a character device',
    }[tun],
    fix:
      tun === 'char'
        ? ''
        : tun === 'no-access'
          ? 'run as root, or make the device usable by all as most distributions do: sudo chmod 0666 /dev/net/tun'
          : 'load the tun module (sudo modprobe tun); in a container, pass the device through (docker run --device /dev/net/tun --cap-add NET_ADMIN)',
  });

  if (!needs.namespaces) return results;
  const ip = probe.findIp();
  results.push({
    id: 'iproute2',
    ok: ip !== undefined,
    detail: ip !== undefined ? `ip at ${ip}` : "iproute2's ip command not found on PATH",
    fix: ip !== undefined ? '' : 'install iproute2 (Debian/Ubuntu: sudo apt-get install iproute2; Fedora: sudo dnf install iproute)',
  });
  return results;
}

/** Root, or both capabilities that network namespaces and TUN devices need. */
function checkPrivileges(probe: PrerequisiteProbe): PrerequisiteResult {
  const uid = probe.uid();
  const status = probe.procStatus();
  const cap = status === undefined ? undefined : parseCapEff(status);
  // Root in a user namespace or a container may lack the capabilities, so the
  // effective mask decides; uid 0 is only a fallback when /proc is unreadable.
  const missing: string[] = [];
  for (const [name, bit] of [['CAP_NET_ADMIN', CAP_NET_ADMIN_BIT], ['CAP_SYS_ADMIN', CAP_SYS_ADMIN_BIT]] as const) {
    if (cap === undefined ? uid !== 0 : !hasCapability(cap, bit)) missing.push(name);
  }
  const who = uid === 0 ? 'root' : `uid ${uid}`;
  if (missing.length === 0) {
    return {
      id: 'privileges',
      ok: true,
      detail: cap === undefined ? `${who} (capabilities unknown: /proc/self/status unreadable)` : `${who} with CAP_NET_ADMIN and CAP_SYS_ADMIN`,
      fix: '',
    };
  }
  return {
    id: 'privileges',
    ok: false,
    detail: `${who} without ${missing.join(' and ')}${cap === undefined ? ' (could not read /proc/self/status)' : ''}`,
    fix: 'run as root, e.g. sudo npm run demo (network namespaces need CAP_SYS_ADMIN and CAP_NET_ADMIN)',
  };
}

/** The failed checks as an error text for stderr, or undefined when all passed. */
export function describeMissing(results: readonly PrerequisiteResult[]): string | undefined {
  const failed = results.filter((r) => !r.ok);
  if (failed.length === 0) return undefined;
  const lines = ['vectun: prerequisites missing:'];
  for (const r of failed) lines.push(`  - ${r.detail}`, `    fix: ${r.fix}`);
  return lines.join('\n') + '\n';
}

/** The probe that reads the real system. */
export function systemProbe(env: NodeJS.ProcessEnv = process.env): PrerequisiteProbe {
  return {
    procStatus: () => {
      try {
        return fs.readFileSync('/proc/self/status', 'utf8');
      } catch {
        return undefined;
      }
    },
    uid: () => (typeof process.getuid === 'function' ? process.getuid() : -1),
    tunNode: () => {
      try {
        if (!fs.statSync('/dev/net/tun').isCharacterDevice()) return 'other';
      } catch {
        return 'missing';
      }
      try {
        fs.accessSync('/dev/net/tun', fs.constants.R_OK | fs.constants.W_OK);
        return 'char';
      } catch {
        return 'no-access';
      }
    },
    findIp: () => findOnPath('ip', env['PATH'] ?? '', ['/usr/sbin', '/sbin', '/usr/bin', '/bin']),
  };
}

/** First executable `name` on `pathVar`, then in `extra` (sbin dirs are often not on a user's PATH). */
export function findOnPath(name: string, pathVar: string, extra: readonly string[] = []): string | undefined {
  const dirs = [...pathVar.split(path.delimiter).filter((d) => d !== ''), ...extra];
  for (const dir of dirs) {
    const p = path.join(dir, name);
    try {
      fs.accessSync(p, fs.constants.X_OK);
      if (fs.statSync(p).isFile()) return p;
    } catch {
      // not here
    }
  }
  return undefined;
}

/** The lab spawns `ip` by name; sudo without a login shell often leaves /usr/sbin off PATH. */
export function ensureIpOnPath(): void {
  const pathVar = process.env['PATH'] ?? '';
  if (findOnPath('ip', pathVar) !== undefined) return;
  const found = findOnPath('ip', '', ['/usr/sbin', '/sbin', '/usr/bin', '/bin']);
  if (found !== undefined) process.env['PATH'] = `${pathVar}${pathVar === '' ? '' : path.delimiter}${path.dirname(found)}`;
}
