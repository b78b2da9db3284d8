/**
 * The forwarder's user-space cost per super-packet, without the kernel: a
 * `Tun` on a stub binding whose reads hand over the same prepared frames
 * (two TCPv4 super-packets of 44 x 1448 bytes, as the kernel sends a bulk
 * stream) and whose writevs succeed at once, driven by the bridge's loop
 * (read, then write the batch to the second device). What is left is the
 * split, the coalescing and the device bookkeeping: the part of issue #4's
 * forwarding loop that vectun controls. No root needed.
 *
 *   node dist/bench/forwarder.js [--ms 1000] [--repeats 5] [--json]
 *
 * Variants run interleaved; `ratio` is the median of per-repeat ratios of
 * time per super-packet against `validate` (GRO re-validates every checksum,
 * as a plain `Tun.write` does). `verified` passes the reading device's
 * `checksumsVerified` flags, as `bridge` does.
 */
import { Tun } from '../src/device/tun.js';
import { GSO_TCPV4, VNET_HDR_LEN } from '../src/core/virtio.js';
import { FakeBinding } from '../test/device/fake-binding.js';
import { V4, buildPacket, frame } from '../test/core/packets.js';

function arg(name: string, fallback: number): number {
  const i = process.argv.indexOf(name);
  const n = i >= 0 ? Number(process.argv[i + 1]) : fallback;
  if (!Number.isInteger(n) || n <= 0) throw new Error(`${name} must be a positive integer`);
  return n;
}

const SEGMENTS = 44;
const MSS = 1448;
const FRAMES_PER_READ = 2;
// Linux bulk TCP: timestamps option (NOP, NOP, TS), so a 32-byte TCP header.
const TS_OPTION = Uint8Array.of(1, 1, 8, 10, 0, 0, 0, 1, 0, 0, 0, 2);

/** Reads return the prepared frames in place; writes succeed at once. */
class StubBinding extends FakeBinding {
  frames2: Uint8Array[] = [];
  #filled: Uint8Array | undefined;

  override readBatch(_fd: number, arena: Uint8Array, slotSize: number, maxFrames: number, lengths: Int32Array): number {
    const n = Math.min(maxFrames, this.frames2.length);
    // The split leaves frames unchanged (RD-8 restores what it zeroes): copy once.
    if (this.#filled !== arena) {
      for (let i = 0; i < n; i++) arena.set(this.frames2[i]!, i * slotSize);
      this.#filled = arena;
    }
    for (let i = 0; i < n; i++) lengths[i] = this.frames2[i]!.length;
    return n;
  }

  override writeLists(_fd: number, lists: readonly (readonly Uint8Array[])[], start: number, results: Int32Array): number {
    for (let i = start; i < lists.length; i++) {
      let n = 0;
      for (const b of lists[i]!) n += b.length;
      results[i] = n;
    }
    return lists.length;
  }
}

function superPacket(seq: number): Uint8Array {
  const p = buildPacket({
    version: 4, proto: 'tcp', src: V4.A, dst: V4.B, payload: SEGMENTS * MSS, seq, ack: 1, options: TS_OPTION,
  });
  return frame({ needsCsum: true, gsoType: GSO_TCPV4, hdrLen: 52, gsoSize: MSS, csumStart: 20, csumOffset: 16 }, p);
}

type Variant = 'validate' | 'verified';

async function run(src: Tun, dst: Tun, variant: Variant, ms: number): Promise<number> {
  const end = performance.now() + ms;
  let frames = 0;
  let start = 0;
  for (let i = 0; ; i++) {
    if (i === 20) start = performance.now(); // warm-up batches excluded
    if (i >= 20 && performance.now() >= end) break;
    const batch = await src.read();
    const r = await dst.write(batch, variant === 'verified' ? { checksumsVerified: src.checksumsVerified } : undefined);
    if (r.packets !== batch.length || r.writes !== FRAMES_PER_READ) throw new Error(`unexpected write result ${JSON.stringify(r)}`);
    if (i >= 20) frames += FRAMES_PER_READ;
  }
  return ((performance.now() - start) * 1e6) / frames; // ns per super-packet
}

async function main(): Promise<void> {
  const ms = arg('--ms', 1000);
  const repeats = arg('--repeats', 5);
  const srcBinding = new StubBinding();
  srcBinding.frames2 = [superPacket(1), superPacket(1 + SEGMENTS * MSS)];
  const src = await Tun.open({ binding: srcBinding });
  const dst = await Tun.open({ binding: new StubBinding() });
  const variants: Variant[] = ['validate', 'verified'];
  const times: Record<Variant, number[]> = { validate: [], verified: [] };
  for (let r = 0; r < repeats; r++) for (const v of variants) times[v].push(await run(src, dst, v, ms));
  await src.close();
  await dst.close();
  const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
  const payload = SEGMENTS * MSS;
  const rows = variants.map((v) => ({
    variant: v,
    nsPerSuperPacket: median(times[v]),
    msPerGiB: (median(times[v]) * (1 << 30)) / payload / 1e6,
    ratio: median(times[v].map((t, i) => t / times.validate[i]!)),
    samples: times[v].map((t) => Math.round(t)),
  }));
  if (process.argv.includes('--json')) {
    console.log(JSON.stringify(rows));
    return;
  }
  console.log(`forwarder user-space cost, ${FRAMES_PER_READ} x ${SEGMENTS}-segment TCPv4 super-packets per read (${VNET_HDR_LEN}+${52 + payload} bytes each)`);
  for (const r of rows) {
    console.log(`  ${r.variant.padEnd(9)} ${(r.nsPerSuperPacket / 1000).toFixed(1).padStart(6)} us/super-packet  ${r.msPerGiB.toFixed(0).padStart(4)} ms/GiB  ratio ${r.ratio.toFixed(2)}  [${r.samples.join(', ')}] ns`);
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exitCode = 1;
});
