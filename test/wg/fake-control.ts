/**
 * An in-memory {@link WgControl} with wireguard-go's `IpcSet` semantics, for
 * testing the UAPI server and the CLI without a device: replace_peers,
 * remove, update_only, replace_allowed_ips, an allowed IP moving to the peer
 * that adds it last, the device's own public key ignored as a peer, and a
 * listen port that is "in use" (EADDRINUSE) when listed in `busyPorts`.
 */
import { VectunError } from '../../src/errors.js';
import { publicKeyOf } from '../../src/wg/crypto.js';
import type { WgConfigUpdate, WgControl, WgDeviceStatus, WgKey, WgPeerStatus } from '../../src/wg/config.js';

const hex = (k: WgKey): string => Buffer.from(k).toString('hex');

/** A peer as the device reports one just added (no handshake, no traffic), with `overrides`; the UAPI tests build statuses with it too. */
export function newPeerStatus(publicKey: WgKey, overrides: Partial<WgPeerStatus> = {}): WgPeerStatus {
  return {
    publicKey,
    presharedKey: null,
    endpoint: null,
    persistentKeepalive: 0,
    allowedIps: [],
    lastHandshake: null,
    rxBytes: 0,
    txBytes: 0,
    protocolVersion: 1,
    ...overrides,
  };
}

export class FakeWgControl implements WgControl {
  privateKey: WgKey | null = null;
  listenPort = 0;
  fwmark = 0;
  readonly peers = new Map<string, WgPeerStatus>();
  readonly busyPorts = new Set<number>();
  /** Every update received, in order. */
  readonly updates: WgConfigUpdate[] = [];
  /** Delay each update by this many ms (to test serialisation). */
  delayMs = 0;
  /** Make the next update fail with this error. */
  failNext: Error | undefined;

  status(): WgDeviceStatus {
    return {
      privateKey: this.privateKey,
      publicKey: this.privateKey === null ? null : publicKeyOf(this.privateKey),
      listenPort: this.listenPort,
      fwmark: this.fwmark,
      peers: [...this.peers.values()].map((p) => ({ ...p, allowedIps: [...p.allowedIps] })),
    };
  }

  async update(update: WgConfigUpdate): Promise<void> {
    this.updates.push(update);
    if (this.delayMs > 0) await new Promise((r) => setTimeout(r, this.delayMs));
    if (this.failNext !== undefined) {
      const err = this.failNext;
      this.failNext = undefined;
      throw err;
    }
    if (update.privateKey !== undefined) {
      this.privateKey = update.privateKey;
      if (update.privateKey !== null) this.peers.delete(hex(publicKeyOf(update.privateKey)));
    }
    if (update.listenPort !== undefined) {
      if (this.busyPorts.has(update.listenPort)) {
        throw new VectunError('ERR_WG_CONFIG', `listen port ${update.listenPort} is in use`, { errno: 98, syscall: 'bind' });
      }
      this.listenPort = update.listenPort;
    }
    if (update.fwmark !== undefined) this.fwmark = update.fwmark;
    if (update.replacePeers === true) this.peers.clear();
    const own = this.privateKey === null ? null : hex(publicKeyOf(this.privateKey));
    for (const change of update.peers ?? []) {
      const id = hex(change.publicKey);
      if (id === own) continue;
      if (change.remove === true) {
        this.peers.delete(id);
        continue;
      }
      let peer = this.peers.get(id);
      if (peer === undefined) {
        if (change.updateOnly === true) continue;
        peer = newPeerStatus(change.publicKey);
        this.peers.set(id, peer);
      }
      if (change.presharedKey !== undefined) peer.presharedKey = change.presharedKey;
      if (change.endpoint !== undefined) peer.endpoint = change.endpoint;
      if (change.persistentKeepalive !== undefined) peer.persistentKeepalive = change.persistentKeepalive;
      if (change.replaceAllowedIps === true) peer.allowedIps = [];
      for (const cidr of change.allowedIps ?? []) {
        for (const other of this.peers.values()) other.allowedIps = other.allowedIps.filter((c) => c !== cidr);
        peer.allowedIps.push(cidr);
      }
    }
  }
}
