/**
 * The send path of a {@link UdpSocket}: validation, planning (runs of
 * equal-size datagrams to one destination become UDP_SEGMENT messages,
 * `plan.ts`), and executing the plan through sendmmsg(2) with its fallbacks:
 * EIO on a GSO send (the route's device cannot checksum, so the kernel cannot
 * segment) → GSO off for the socket, one `'warning'`, the rest of the batch
 * resent without it; EINVAL on a GSO send (segments above the path MTU) →
 * that message resent one datagram at a time and smaller segment sizes only.
 * @module
 */
import { VectunError } from '../errors.js';
import { EAGAIN, EINTR, EINVAL, EIO, EMSGSIZE } from '../device/native.js';
import { waitWritable } from '../io/event-loop.js';
import { UdpEndpoint } from './address.js';
import { PLAN_STRIDE, UDP_MAX_PAYLOAD_V4, UDP_MAX_PAYLOAD_V6, planSend } from './plan.js';
import { MAX_EINTR, checkOpen, closedError, destination, kState, udpError, usable, type UdpHost, type UdpState } from './socket-state.js';
import { invalid } from '../options.js';

/** One datagram of {@link UdpSocket.sendBatch}. */
export interface UdpTransmit {
  /** The payload (sent from where it is, no copy). */
  data: Uint8Array;
  /** Where to (from {@link UdpSocket.endpoint}). */
  destination: UdpEndpoint;
}

/** A datagram the kernel did not take. */
export interface UdpSendFailure {
  /** Position in the array passed to send/sendBatch. */
  index: number;
  /** Why: ERR_UDP_CONNECTION_REFUSED, ERR_UDP_HOST_UNREACHABLE, ERR_UDP_NETWORK_UNREACHABLE, ERR_UDP_MESSAGE_SIZE, ERR_UDP_INVALID_ENDPOINT, ERR_UDP_SYSCALL. */
  error: VectunError;
}

/** What one send achieved. */
export interface UdpSendResult {
  /** Datagrams the kernel accepted. */
  datagrams: number;
  /** Their payload bytes. */
  bytes: number;
  /** sendmmsg calls that sent something. */
  calls: number;
  /** Datagrams not sent, with the reason; every other datagram was sent. */
  failures: UdpSendFailure[];
}

const NO_ADDRESSES: readonly Uint8Array[] = Object.freeze([]);
const EMPTY = new Uint8Array(0);
/** Stands in for a missing destination of a rejected transmit (never sent). */
const PLACEHOLDER = UdpEndpoint.of('0.0.0.0', 0);

/** `UdpSocket.send()`: validates, then queues the send behind any running one. */
export function send(sock: UdpHost, datagrams: readonly Uint8Array[], to: UdpEndpoint | undefined): Promise<UdpSendResult> {
  let s: UdpState;
  let dest: UdpEndpoint | undefined;
  try {
    s = checkOpen(sock, 'send');
    if (!Array.isArray(datagrams)) throw invalid('datagrams must be an array of Uint8Array');
    if (to === undefined) {
      if (s.remote === undefined) throw new VectunError('ERR_UDP_INVALID_ENDPOINT', 'send without a destination needs a connected socket');
    } else dest = destination(s, to, 'destination');
  } catch (err) {
    return Promise.reject(err);
  }
  return enqueue(sock, () => sendSame(sock, datagrams, dest));
}

/** `UdpSocket.sendBatch()`: validates the array, then queues the send. */
export function sendBatch(sock: UdpHost, transmits: readonly UdpTransmit[]): Promise<UdpSendResult> {
  try {
    checkOpen(sock, 'sendBatch');
    if (!Array.isArray(transmits)) throw invalid('transmits must be an array of { data, destination }');
  } catch (err) {
    return Promise.reject(err);
  }
  return enqueue(sock, () => sendTransmits(sock, transmits));
}

/** One send at a time (the plan and wait state are shared); the first runs at once, in the caller's tick. */
function enqueue(sock: UdpHost, run: () => Promise<UdpSendResult>): Promise<UdpSendResult> {
  const s = sock[kState];
  if (!s.sendBusy && s.sendQueued === 0) {
    const p = run();
    s.sendChain = p.catch(() => undefined);
    return p;
  }
  s.sendQueued++;
  const p = s.sendChain.then(() => {
    s.sendQueued--;
    return run();
  });
  s.sendChain = p.catch(() => undefined);
  return p;
}

async function sendSame(sock: UdpHost, datagrams: readonly Uint8Array[], dest: UdpEndpoint | undefined): Promise<UdpSendResult> {
  const s = sock[kState];
  if (s.closed) throw closedError('send');
  const result: UdpSendResult = { datagrams: 0, bytes: 0, calls: 0, failures: [] };
  if (datagrams.length === 0) return result;
  const max = (dest ?? s.remote!).family === 4 ? UDP_MAX_PAYLOAD_V4 : UDP_MAX_PAYLOAD_V6;
  let skip: Uint8Array | undefined;
  for (let i = 0; i < datagrams.length; i++) {
    const d = datagrams[i];
    if (d instanceof Uint8Array && d.length <= max) continue;
    skip ??= new Uint8Array(datagrams.length);
    skip[i] = 1;
    fail(sock, result, i, d instanceof Uint8Array
      ? new VectunError('ERR_UDP_MESSAGE_SIZE', `datagrams[${i}] has ${d.length} bytes, more than the ${max} UDP can carry`)
      : invalid(`datagrams[${i}] must be a Uint8Array`));
  }
  const addresses = dest === undefined ? NO_ADDRESSES : dest.sockaddrs;
  await transmit(sock, datagrams, undefined, skip, addresses, dest, result);
  return result;
}

async function sendTransmits(sock: UdpHost, transmits: readonly UdpTransmit[]): Promise<UdpSendResult> {
  const s = sock[kState];
  if (s.closed) throw closedError('sendBatch');
  const result: UdpSendResult = { datagrams: 0, bytes: 0, calls: 0, failures: [] };
  const n = transmits.length;
  if (n === 0) return result;
  const datagrams: Uint8Array[] = new Array<Uint8Array>(n);
  const destinations: UdpEndpoint[] = new Array<UdpEndpoint>(n);
  let skip: Uint8Array | undefined;
  for (let i = 0; i < n; i++) {
    const t = transmits[i];
    const data = t?.data;
    const dest = t?.destination;
    let error: VectunError | undefined;
    if (!(data instanceof Uint8Array)) error = invalid(`transmits[${i}].data must be a Uint8Array`);
    else if (!(dest instanceof UdpEndpoint)) error = new VectunError('ERR_UDP_INVALID_ENDPOINT', `transmits[${i}].destination must be a UdpEndpoint`);
    else if (!usable(s, dest) || dest.port === 0) error = new VectunError('ERR_UDP_INVALID_ENDPOINT', `transmits[${i}].destination ${dest.toString()} cannot be reached from this socket`);
    else if (data.length > (dest.family === 4 ? UDP_MAX_PAYLOAD_V4 : UDP_MAX_PAYLOAD_V6)) {
      error = new VectunError('ERR_UDP_MESSAGE_SIZE', `transmits[${i}].data has ${data.length} bytes, more than UDP can carry`);
    }
    if (error !== undefined) {
      skip ??= new Uint8Array(n);
      skip[i] = 1;
      fail(sock, result, i, error);
      datagrams[i] = EMPTY;
      destinations[i] = dest instanceof UdpEndpoint ? dest : PLACEHOLDER;
      continue;
    }
    datagrams[i] = data as Uint8Array;
    destinations[i] = dest as UdpEndpoint;
  }
  await transmit(sock, datagrams, destinations, skip, undefined, undefined, result);
  return result;
}

function fail(sock: UdpHost, result: UdpSendResult, index: number, error: VectunError): void {
  result.failures.push({ index, error });
  const f = sock[kState].stats.sendFailures;
  f[error.code] = (f[error.code] ?? 0) + 1;
}

/**
 * Plans and sends; EAGAIN waits for writability and resumes at the same
 * message, EINTR retries, EIO on a GSO message turns GSO off and replans the
 * rest, EINVAL/EMSGSIZE on a GSO message resends it one datagram per
 * message, other errnos fail the message's datagrams and go on.
 */
async function transmit(
  sock: UdpHost, datagrams: readonly Uint8Array[], destinations: readonly UdpEndpoint[] | undefined, skip: Uint8Array | undefined,
  fixed: readonly Uint8Array[] | undefined, target: UdpEndpoint | undefined, result: UdpSendResult,
): Promise<void> {
  const s = sock[kState];
  const st = s.stats;
  let plan = s.plan;
  plan.reset();
  planSend(datagrams, destinations, skip, 0, s.limits, plan);
  s.sendBusy = true;
  try {
    let m = 0;
    let interrupts = 0;
    while (m < plan.messages) {
      if (s.closed) throw closedError('send');
      const addresses = fixed ?? plan.addresses;
      const sent = s.binding.udpSend(s.fd, datagrams, plan.plan, addresses, m, plan.messages - m, s.inet6);
      if (sent > 0) {
        result.calls++;
        st.sendCalls++;
        st.sendMessages += sent;
        const p = plan.plan;
        let count = 0;
        let bytes = 0;
        for (let k = m; k < m + sent; k++) {
          const first = p[k * PLAN_STRIDE]!;
          const c = p[k * PLAN_STRIDE + 1]!;
          for (let j = first; j < first + c; j++) bytes += datagrams[j]!.length;
          count += c;
          if (p[k * PLAN_STRIDE + 2]! > 0) {
            st.gsoSends++;
            st.gsoSegments += c;
          }
        }
        result.datagrams += count;
        result.bytes += bytes;
        st.datagramsSent += count;
        st.bytesSent += bytes;
        m += sent;
        interrupts = 0;
        continue;
      }
      if (sent === -EINTR) {
        if (++interrupts > MAX_EINTR) throw udpError(sent, 'sendmmsg');
        continue;
      }
      if (sent === -EAGAIN) {
        st.sendWaits++;
        await waitWritable(s);
        continue;
      }
      if (sent === 0) throw new VectunError('ERR_UDP_SYSCALL', 'sendmmsg sent no message', { syscall: 'sendmmsg' });
      const first = plan.plan[m * PLAN_STRIDE]!;
      const count = plan.plan[m * PLAN_STRIDE + 1]!;
      const segment = plan.plan[m * PLAN_STRIDE + 2]!;
      if (segment > 0 && (sent === -EIO || sent === -EINVAL || sent === -EMSGSIZE)) {
        // Replan from this message on; the messages before it were sent.
        const rest = s.spare;
        rest.reset();
        if (sent === -EIO) {
          gsoFallback(sock);
          planSend(datagrams, destinations, skip, first, s.limits, rest);
        } else {
          // The route's MTU is below this segment size: this message one datagram at a time, smaller runs from now on.
          st.gsoSplits++;
          s.limits.maxSegmentSize = Math.min(s.limits.maxSegmentSize, segment - 1);
          for (let j = first; j < first + count; j++) {
            rest.push(j, 1, 0);
            if (destinations !== undefined) rest.addresses.push(destinations[j]!.sockaddr);
          }
          planSend(datagrams, destinations, skip, first + count, s.limits, rest);
        }
        s.spare = plan;
        s.plan = rest;
        plan = rest;
        m = 0;
        continue;
      }
      const error = udpError(sent, 'sendmmsg', (destinations?.[first] ?? target ?? s.remote)?.toString());
      for (let j = first; j < first + count; j++) fail(sock, result, j, error);
      m++;
    }
  } finally {
    s.sendBusy = false;
  }
}

function gsoFallback(sock: UdpHost): void {
  const s = sock[kState];
  s.gso = false;
  s.limits.maxSegments = 1;
  s.stats.gsoFallbacks++;
  if (!s.warned) {
    s.warned = true;
    sock.emit('warning', new VectunError('ERR_UDP_GSO_FALLBACK', `${s.local.toString()}: a UDP_SEGMENT send failed with EIO (no checksum offload on the route's device); GSO is now off for this socket`, { errno: EIO, syscall: 'sendmmsg' }));
  }
}
