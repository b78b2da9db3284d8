/**
 * Builds and drives test/wg/go/vectun_kat_test.go: a small program of ours
 * compiled into a temporary copy of the Debian wireguard-go source's device
 * package (golang-golang.zx2c4-wireguard-dev), so that wireguard-go's own,
 * unexported handshake and cookie code answers our messages.
 *
 * The binary is cached under the OS temp folder by a hash of the Go file and
 * the Go version; the first build takes about a minute on 2 cores.
 */
import { spawn, spawnSync, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { createInterface } from 'node:readline';

/** Where Debian's golang-golang.zx2c4-wireguard-dev puts the source. */
export const WIREGUARD_GO_SOURCE = '/usr/share/gocode/src/golang.zx2c4.com/wireguard';
const GO_CANDIDATES = ['/usr/lib/go-1.23/bin/go', '/usr/bin/go', '/usr/local/go/bin/go'];
const HARNESS_SOURCE = path.join(__dirname, '..', '..', '..', 'test', 'wg', 'go', 'vectun_kat_test.go');

/** The go binary, or undefined. */
export function findGo(): string | undefined {
  return GO_CANDIDATES.find((p) => fs.existsSync(p));
}

/** Why the harness cannot be built here, or undefined if it can. */
export function harnessUnavailableReason(): string | undefined {
  if (findGo() === undefined) return `no Go toolchain (looked at ${GO_CANDIDATES.join(', ')}; Debian: golang-1.23-go from bookworm-backports)`;
  if (!fs.existsSync(path.join(WIREGUARD_GO_SOURCE, 'device', 'noise-protocol.go'))) return `no wireguard-go source at ${WIREGUARD_GO_SOURCE} (Debian: golang-golang.zx2c4-wireguard-dev)`;
  if (!fs.existsSync(HARNESS_SOURCE)) return `harness source missing: ${HARNESS_SOURCE}`;
  return undefined;
}

/** Builds (or reuses) the harness binary; returns its path. Throws with the compiler output on failure. */
export function buildHarness(): string {
  const go = findGo()!;
  const source = fs.readFileSync(HARNESS_SOURCE);
  const version = spawnSync(go, ['version'], { encoding: 'utf8' }).stdout.trim();
  const key = createHash('sha256').update(source).update(version).update(fs.readFileSync(path.join(WIREGUARD_GO_SOURCE, 'device', 'noise-protocol.go'))).digest('hex').slice(0, 16);
  const dir = path.join(os.tmpdir(), `vectun-wg-crosscheck-${key}`);
  const binary = path.join(dir, 'crosscheck.test');
  if (fs.existsSync(binary)) return binary;
  const gopath = fs.mkdtempSync(path.join(os.tmpdir(), 'vectun-wg-gopath-'));
  try {
    const copy = path.join(gopath, 'src', 'golang.zx2c4.com', 'wireguard');
    fs.mkdirSync(path.dirname(copy), { recursive: true });
    fs.cpSync(WIREGUARD_GO_SOURCE, copy, { recursive: true, dereference: true });
    fs.writeFileSync(path.join(copy, 'device', 'vectun_kat_test.go'), source);
    fs.mkdirSync(dir, { recursive: true });
    const tmpBinary = `${binary}.${process.pid}`;
    const r = spawnSync(go, ['test', '-c', '-o', tmpBinary, 'golang.zx2c4.com/wireguard/device'], {
      cwd: gopath,
      encoding: 'utf8',
      timeout: 300_000,
      // Offline GOPATH build against the Debian source. Go's default build cache
      // (warm after scripts/install-wireguard-go.sh built the same packages) needs $HOME.
      env: {
        ...process.env,
        GO111MODULE: 'off',
        GOPATH: `${gopath}:/usr/share/gocode`,
        GOPROXY: 'off',
        GOFLAGS: '',
        GOTOOLCHAIN: 'local',
        ...(process.env['GOCACHE'] || process.env['HOME'] ? {} : { GOCACHE: path.join(os.tmpdir(), 'vectun-go-build-cache') }),
      },
    });
    if (r.status !== 0) throw new Error(`go test -c failed (${r.status ?? r.signal}):\n${r.stdout}\n${r.stderr}`);
    fs.renameSync(tmpBinary, binary);
    return binary;
  } finally {
    fs.rmSync(gopath, { recursive: true, force: true });
  }
}

/** One reply of the harness. */
export interface HarnessReply {
  ok: boolean;
  error?: string;
  pub?: string;
  msg?: string;
  sendKey?: string;
  recvKey?: string;
  plaintext?: string;
  rotated?: boolean;
  hash?: string;
  chainKey?: string;
  results?: string[];
}

/** A running harness process: one wireguard-go device with one peer. */
export class GoPeer {
  private readonly child: ChildProcessWithoutNullStreams;
  private readonly pending: ((line: string) => void)[] = [];
  private stderr = '';

  constructor(binary: string) {
    this.child = spawn(binary, ['-test.run', '^TestVectunCrossCheck$', '-test.v=false'], { env: { ...process.env, VECTUN_CROSSCHECK: '1' } });
    this.child.stderr.on('data', (d: Buffer) => (this.stderr += d.toString()));
    createInterface({ input: this.child.stdout }).on('line', (line) => {
      if (!line.startsWith('{')) return; // go test's own PASS/ok lines
      this.pending.shift()?.(line);
    });
  }

  /** Sends one command and waits (at most 10 s) for its reply. */
  call(command: Record<string, unknown>): Promise<HarnessReply> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`harness did not answer ${command['op']}; stderr: ${this.stderr}`)), 10_000);
      this.pending.push((line) => {
        clearTimeout(timer);
        resolve(JSON.parse(line) as HarnessReply);
      });
      this.child.stdin.write(JSON.stringify(command) + '\n');
    });
  }

  /** Ends the process (closing stdin ends its loop). */
  async close(): Promise<void> {
    if (this.child.exitCode !== null) return;
    const exited = new Promise<void>((resolve) => this.child.once('exit', () => resolve()));
    this.child.stdin.end();
    const timer = setTimeout(() => this.child.kill('SIGKILL'), 5_000);
    await exited;
    clearTimeout(timer);
  }
}
