// Cross-check harness for vectun's WireGuard protocol modules (test/wg/go-crosscheck.test.ts).
//
// Not part of wireguard-go: the Node test copies the Debian wireguard-go source
// to a temporary GOPATH, drops this file into its device package (so it can use
// the package's unexported handshake functions) and builds it with `go test -c`.
// The binary reads one JSON command per line on stdin and answers one JSON line
// on stdout. Everything it computes is computed by wireguard-go's own code; the
// only additions are the glue and, before BeginSymmetricSession zeroes them,
// printing the transport keys with wireguard-go's KDF2 (its keypairs hold only
// cipher.AEAD values).

package device

import (
	"bufio"
	"bytes"
	crand "crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/crypto/blake2s"
	"golang.org/x/crypto/chacha20poly1305"
	"golang.zx2c4.com/wireguard/conn"
	"golang.zx2c4.com/wireguard/replay"
	"golang.zx2c4.com/wireguard/tun/tuntest"
)

type vectunCommand struct {
	Op        string `json:"op"`
	Priv      string `json:"priv"`
	PeerPub   string `json:"peerPub"`
	Psk       string `json:"psk"`
	Msg       string `json:"msg"`
	Src       string `json:"src"`
	Random    string `json:"random"`
	Plaintext string `json:"plaintext"`
	// replay: decimal counters; allowedips: steps.
	Counters []string          `json:"counters"`
	Script   []vectunTableStep `json:"script"`
}

// One step of an AllowedIPs script: insert (prefix -> peer), removeByPeer, lookup (ip hex), entries (of peer).
type vectunTableStep struct {
	Op     string `json:"op"`
	Prefix string `json:"prefix"`
	Peer   int    `json:"peer"`
	IP     string `json:"ip"`
}

type vectunReply struct {
	Ok        bool   `json:"ok"`
	Error     string `json:"error,omitempty"`
	Pub       string `json:"pub,omitempty"`
	Msg       string `json:"msg,omitempty"`
	SendKey   string `json:"sendKey,omitempty"`
	RecvKey   string `json:"recvKey,omitempty"`
	Plaintext string `json:"plaintext,omitempty"`
	Rotated   bool   `json:"rotated,omitempty"`
	Hash      string `json:"hash,omitempty"`
	ChainKey  string `json:"chainKey,omitempty"`
	Results   []string `json:"results,omitempty"`
}

// vectunRandom serves queued bytes first, then the system CSPRNG.
type vectunRandom struct{ queued *bytes.Reader }

func (r *vectunRandom) Read(p []byte) (int, error) {
	if r.queued != nil && r.queued.Len() > 0 {
		return r.queued.Read(p)
	}
	return io.ReadFull(systemRandom, p)
}

var systemRandom = crand.Reader

// The Debian wireguard-go (2023) (un)marshals messages with encoding/binary, as its send/receive paths do.
func vectunMarshal(m any) []byte {
	var w bytes.Buffer
	binary.Write(&w, binary.LittleEndian, m)
	return w.Bytes()
}

func vectunUnmarshal(b []byte, size int, m any) error {
	if len(b) != size {
		return fmt.Errorf("length %d, want %d", len(b), size)
	}
	return binary.Read(bytes.NewReader(b), binary.LittleEndian, m)
}

func vectunKeys(h *Handshake, initiator bool) (string, string) {
	var t0, t1 [blake2s.Size]byte
	KDF2(&t0, &t1, h.chainKey[:], nil)
	if initiator {
		return hex.EncodeToString(t0[:]), hex.EncodeToString(t1[:])
	}
	return hex.EncodeToString(t1[:]), hex.EncodeToString(t0[:])
}

func TestVectunCrossCheck(t *testing.T) {
	if os.Getenv("VECTUN_CROSSCHECK") != "1" {
		t.Skip("run by vectun's test/wg/go-crosscheck.test.ts")
	}
	random := &vectunRandom{}
	crand.Reader = random
	var dev *Device
	var peer *Peer
	in := bufio.NewScanner(os.Stdin)
	in.Buffer(make([]byte, 1<<20), 1<<20)
	out := bufio.NewWriter(os.Stdout)
	defer func() {
		if dev != nil {
			dev.Close()
		}
	}()
	for in.Scan() {
		var cmd vectunCommand
		reply := vectunReply{Ok: true}
		fail := func(format string, args ...any) { reply.Ok = false; reply.Error = fmt.Sprintf(format, args...) }
		if err := json.Unmarshal(in.Bytes(), &cmd); err != nil {
			fail("bad command: %v", err)
		}
		msg, _ := hex.DecodeString(cmd.Msg)
		switch cmd.Op {
		case "random":
			b, _ := hex.DecodeString(cmd.Random)
			random.queued = bytes.NewReader(b)
		case "new":
			var sk NoisePrivateKey
			var pk NoisePublicKey
			if err := sk.FromHex(cmd.Priv); err != nil {
				fail("priv: %v", err)
				break
			}
			if err := pk.FromHex(cmd.PeerPub); err != nil {
				fail("peerPub: %v", err)
				break
			}
			tun := tuntest.NewChannelTUN()
			dev = NewDevice(tun.TUN(), conn.NewDefaultBind(), NewLogger(LogLevelError, ""))
			dev.SetPrivateKey(sk)
			var err error
			peer, err = dev.NewPeer(pk)
			if err != nil {
				fail("NewPeer: %v", err)
				break
			}
			if cmd.Psk != "" {
				peer.handshake.presharedKey.FromHex(cmd.Psk)
			}
			peer.Start()
			pub := dev.staticIdentity.publicKey
			reply.Pub = hex.EncodeToString(pub[:])
		case "createInitiation":
			m, err := dev.CreateMessageInitiation(peer)
			if err != nil {
				fail("CreateMessageInitiation: %v", err)
				break
			}
			b := vectunMarshal(m)
			peer.cookieGenerator.AddMacs(b)
			reply.Msg = hex.EncodeToString(b)
		case "consumeInitiation":
			if !dev.cookieChecker.CheckMAC1(msg) {
				fail("mac1")
				break
			}
			var m MessageInitiation
			if err := vectunUnmarshal(msg, MessageInitiationSize, &m); err != nil {
				fail("unmarshal: %v", err)
				break
			}
			if dev.ConsumeMessageInitiation(&m) != peer {
				fail("ConsumeMessageInitiation rejected it")
				break
			}
			reply.Hash = hex.EncodeToString(peer.handshake.hash[:])
			reply.ChainKey = hex.EncodeToString(peer.handshake.chainKey[:])
		case "createResponse":
			m, err := dev.CreateMessageResponse(peer)
			if err != nil {
				fail("CreateMessageResponse: %v", err)
				break
			}
			b := vectunMarshal(m)
			peer.cookieGenerator.AddMacs(b)
			reply.Msg = hex.EncodeToString(b)
			reply.SendKey, reply.RecvKey = vectunKeys(&peer.handshake, false)
			if err := peer.BeginSymmetricSession(); err != nil {
				fail("BeginSymmetricSession: %v", err)
			}
		case "consumeResponse":
			if !dev.cookieChecker.CheckMAC1(msg) {
				fail("mac1")
				break
			}
			var m MessageResponse
			if err := vectunUnmarshal(msg, MessageResponseSize, &m); err != nil {
				fail("unmarshal: %v", err)
				break
			}
			if dev.ConsumeMessageResponse(&m) != peer {
				fail("ConsumeMessageResponse rejected it")
				break
			}
			reply.SendKey, reply.RecvKey = vectunKeys(&peer.handshake, true)
			if err := peer.BeginSymmetricSession(); err != nil {
				fail("BeginSymmetricSession: %v", err)
			}
		case "open":
			if len(msg) < MessageKeepaliveSize || binary.LittleEndian.Uint32(msg) != MessageTransportType {
				fail("not a transport message")
				break
			}
			entry := dev.indexTable.Lookup(binary.LittleEndian.Uint32(msg[MessageTransportOffsetReceiver:]))
			if entry.keypair == nil {
				fail("unknown receiver index")
				break
			}
			counter := binary.LittleEndian.Uint64(msg[MessageTransportOffsetCounter:])
			var nonce [chacha20poly1305.NonceSize]byte
			binary.LittleEndian.PutUint64(nonce[4:], counter)
			plain, err := entry.keypair.receive.Open(nil, nonce[:], msg[MessageTransportOffsetContent:], nil)
			if err != nil {
				fail("open: %v", err)
				break
			}
			if !entry.keypair.replayFilter.ValidateCounter(counter, RejectAfterMessages) {
				fail("replay")
				break
			}
			reply.Rotated = peer.ReceivedWithKeypair(entry.keypair)
			reply.Plaintext = hex.EncodeToString(plain)
		case "seal":
			keypair := peer.keypairs.Current()
			if keypair == nil {
				keypair = peer.keypairs.next.Load()
			}
			if keypair == nil {
				fail("no keypair")
				break
			}
			plain, _ := hex.DecodeString(cmd.Plaintext)
			header := make([]byte, MessageTransportHeaderSize)
			binary.LittleEndian.PutUint32(header, MessageTransportType)
			binary.LittleEndian.PutUint32(header[4:], keypair.remoteIndex)
			counter := keypair.sendNonce.Add(1) - 1
			binary.LittleEndian.PutUint64(header[8:], counter)
			var nonce [chacha20poly1305.NonceSize]byte
			binary.LittleEndian.PutUint64(nonce[4:], counter)
			reply.Msg = hex.EncodeToString(keypair.send.Seal(header, nonce[:], plain, nil))
		case "cookieReply":
			src, _ := hex.DecodeString(cmd.Src)
			sender := binary.LittleEndian.Uint32(msg[4:])
			r, err := dev.cookieChecker.CreateReply(msg, sender, src)
			if err != nil {
				fail("CreateReply: %v", err)
				break
			}
			b := vectunMarshal(r)
			reply.Msg = hex.EncodeToString(b)
		case "checkMac2":
			src, _ := hex.DecodeString(cmd.Src)
			reply.Ok = dev.cookieChecker.CheckMAC1(msg) && dev.cookieChecker.CheckMAC2(msg, src)
		case "consumeCookieReply":
			var r MessageCookieReply
			if err := vectunUnmarshal(msg, MessageCookieReplySize, &r); err != nil {
				fail("unmarshal: %v", err)
				break
			}
			reply.Ok = peer.cookieGenerator.ConsumeReply(&r)
		case "replay":
			var filter replay.Filter
			for _, c := range cmd.Counters {
				n, err := strconv.ParseUint(c, 10, 64)
				if err != nil {
					fail("counter %q: %v", c, err)
					break
				}
				reply.Results = append(reply.Results, strconv.FormatBool(filter.ValidateCounter(n, RejectAfterMessages)))
			}
		case "allowedips":
			var table AllowedIPs
			peers := map[int]*Peer{}
			peerOf := func(i int) *Peer {
				if peers[i] == nil {
					peers[i] = &Peer{}
				}
				return peers[i]
			}
			for _, step := range cmd.Script {
				switch step.Op {
				case "insert":
					prefix, err := netip.ParsePrefix(step.Prefix)
					if err != nil {
						fail("prefix %q: %v", step.Prefix, err)
						break
					}
					table.Insert(prefix, peerOf(step.Peer))
				case "removeByPeer":
					table.RemoveByPeer(peerOf(step.Peer))
				case "lookup":
					ip, _ := hex.DecodeString(step.IP)
					found := table.Lookup(ip)
					result := "-1"
					for i, p := range peers {
						if p == found && found != nil {
							result = strconv.Itoa(i)
						}
					}
					reply.Results = append(reply.Results, result)
				case "entries":
					var list []string
					table.EntriesForPeer(peerOf(step.Peer), func(prefix netip.Prefix) bool {
						list = append(list, prefix.String())
						return true
					})
					reply.Results = append(reply.Results, strings.Join(list, ","))
				}
			}
		default:
			fail("unknown op %q", cmd.Op)
		}
		line, _ := json.Marshal(reply)
		out.Write(append(line, '\n'))
		out.Flush()
	}
}
