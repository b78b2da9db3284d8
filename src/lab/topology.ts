/**
 * The two standard lab setups, with the same addresses so results compare:
 *
 * - TUN pair: namespaces A and B each hold one vectun TUN, opened by this
 *   process (`Tun.open`), moved into its namespace, addressed and brought up
 *   there. Packets A sends to B leave through tunA into this process; a
 *   forwarding loop (e.g. `bridge`) writes them into tunB, where B's kernel
 *   receives them.
 * - veth pair: the kernel's own baseline, vethA in A wired to vethB in B.
 *
 * A: 198.18.0.1/24 and 2001:2:0:1::1/64; B: 198.18.1.1/24 and
 * 2001:2:0:2::1/64; each side routes the other's prefixes through its link.
 * @module
 */
import type { Tun } from '../device/tun.js';
import { createNetns, createVethPair, moveLink, type Netns } from './netns.js';

/** Addresses of one side: host address and the prefix routed to it. */
export interface LabAddresses {
  readonly v4: string;
  readonly v4Net: string;
  readonly v6: string;
  readonly v6Net: string;
}

/** Addresses of the standard setup (198.18.0.0/15 and 2001:2::/48 only). */
export const LAB: { readonly a: LabAddresses; readonly b: LabAddresses } = {
  a: { v4: '198.18.0.1', v4Net: '198.18.0.0/24', v6: '2001:2:0:1::1', v6Net: '2001:2:0:1::/64' },
  b: { v4: '198.18.1.1', v4Net: '198.18.1.0/24', v6: '2001:2:0:2::1', v6Net: '2001:2:0:2::/64' },
};

/** One side of a topology. */
export interface LabSide {
  ns: Netns;
  /** Link name inside `ns`. */
  dev: string;
  v4: string;
  v6: string;
}

/** A two-namespace setup; `remove()` deletes everything it created (idempotent). */
export interface Topology {
  a: LabSide;
  b: LabSide;
  remove(): Promise<void>;
}

/** The TUN setup: also holds the two open devices (closed by `remove()`). */
export interface TunTopology extends Topology {
  tunA: Tun;
  tunB: Tun;
}

/** Options of the topology builders. */
export interface TopologyOptions {
  /** Link MTU; default 1500. */
  mtu?: number;
}

/** Options of {@link createTunTopology}. */
export interface TunTopologyOptions extends TopologyOptions {
  /** Passed to `Tun.open` (default true: virtio-net header and TSO/USO). */
  offload?: boolean | 'require';
  /** Passed to `Tun.open`. */
  batchSize?: number;
  /** Passed to `Tun.open` (IFF_MULTI_QUEUE when > 1). */
  queues?: number;
  /**
   * Runs once both devices are open, before they move into the namespaces:
   * e.g. to hand queues to worker threads, which adopt them by name here.
   * A rejection undoes the topology.
   */
  beforeMove?: (tunA: Tun, tunB: Tun) => Promise<void>;
}

let devCounter = 0;

/** Interface names are limited to 15 bytes; pid + counter keeps them unique per host. */
function devName(side: 'a' | 'b', kind: string): string {
  return `${kind}${process.pid % 1_000_000}${side}${++devCounter}`.slice(0, 15);
}

async function configure(ns: Netns, dev: string, self: LabAddresses, peer: LabAddresses, mtu: number): Promise<LabSide> {
  await ns.setMtu(dev, mtu);
  await ns.addAddress(dev, `${self.v4}/24`);
  await ns.addAddress(dev, `${self.v6}/64`);
  await ns.setUp(dev);
  await ns.addRoute(peer.v4Net, dev);
  await ns.addRoute(peer.v6Net, dev);
  return { ns, dev, v4: self.v4, v6: self.v6 };
}

/** Runs `build`; on failure undoes what was created, then rethrows. */
async function buildOrUndo<T>(undo: () => Promise<void>, build: () => Promise<T>): Promise<T> {
  try {
    return await build();
  } catch (err) {
    await undo().catch(() => undefined);
    throw err;
  }
}

/** Namespaces A and B, each pushed to `created` as soon as it exists, so `remove` undoes a half-built pair. */
async function createNamespacePair(created: Netns[]): Promise<[Netns, Netns]> {
  const nsA = await createNetns('a');
  created.push(nsA);
  const nsB = await createNetns('b');
  created.push(nsB);
  return [nsA, nsB];
}

/** Namespaces A and B joined by a veth pair (the kernel baseline). */
export async function createVethTopology(options: TopologyOptions = {}): Promise<Topology> {
  const mtu = options.mtu ?? 1500;
  const created: Netns[] = [];
  const remove = async (): Promise<void> => {
    for (const ns of created.splice(0)) await ns.remove();
  };
  return buildOrUndo(remove, async () => {
    const [nsA, nsB] = await createNamespacePair(created);
    const devA = devName('a', 've');
    const devB = devName('b', 've');
    await createVethPair(nsA, devA, nsB, devB);
    const a = await configure(nsA, devA, LAB.a, LAB.b, mtu);
    const b = await configure(nsB, devB, LAB.b, LAB.a, mtu);
    return { a, b, remove };
  });
}

/**
 * Namespaces A and B around two links of this namespace, e.g. TUN devices this
 * process opened: moves `devA` into A and `devB` into B and gives them the
 * standard addresses and routes. `release` (close the devices) runs before
 * the namespaces go, in `remove()` and when building fails.
 */
export async function createTopologyAround(
  devA: string,
  devB: string,
  release: () => Promise<void>,
  options: TopologyOptions = {},
): Promise<Topology> {
  const mtu = options.mtu ?? 1500;
  const created: Netns[] = [];
  let released = false;
  const remove = async (): Promise<void> => {
    // Devices first, so no read is left waiting on a vanished link.
    if (!released) {
      released = true;
      await release().catch(() => undefined);
    }
    for (const ns of created.splice(0)) await ns.remove();
  };
  return buildOrUndo(remove, async () => {
    const [nsA, nsB] = await createNamespacePair(created);
    await moveLink(devA, nsA);
    await moveLink(devB, nsB);
    const a = await configure(nsA, devA, LAB.a, LAB.b, mtu);
    const b = await configure(nsB, devB, LAB.b, LAB.a, mtu);
    return { a, b, remove };
  });
}

/** A fresh interface name for a device this process creates (<= 15 bytes, unique per host). */
export function labDeviceName(side: 'a' | 'b'): string {
  return devName(side, 'vt');
}

/**
 * Namespaces A and B, each with one vectun TUN opened by this process. The
 * caller forwards between `tunA` and `tunB` (e.g. with `bridge`).
 */
export async function createTunTopology(options: TunTopologyOptions = {}): Promise<TunTopology> {
  // Loaded here so the veth baseline works without the native addon.
  const { Tun } = await import('../device/tun.js');
  const tuns: Tun[] = [];
  const close = async (): Promise<void> => {
    for (const t of tuns.splice(0)) await t.close().catch(() => undefined);
  };
  const open = (side: 'a' | 'b'): Promise<Tun> =>
    Tun.open({
      name: labDeviceName(side),
      offload: options.offload ?? true,
      ...(options.batchSize === undefined ? {} : { batchSize: options.batchSize }),
      ...(options.queues === undefined ? {} : { queues: options.queues }),
    });
  const [tunA, tunB] = await buildOrUndo(close, async () => {
    tuns.push(await open('a'));
    tuns.push(await open('b'));
    await options.beforeMove?.(tuns[0]!, tuns[1]!);
    return tuns.slice() as [Tun, Tun];
  });
  const topo = await createTopologyAround(tunA.name, tunB.name, close, options);
  return { ...topo, tunA, tunB };
}
