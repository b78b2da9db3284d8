/*
 * UDP sockets: open (optionally in another network namespace), bind, connect,
 * options by name, and the two batch calls: one sendmmsg over a send plan
 * made in TypeScript (src/udp/plan.ts), one recvmmsg into arena slots with
 * the UDP_GRO segment size and the SO_RXQ_OVFL drop count per batch.
 * No policy: fallbacks and error mapping live in src/udp/socket.ts.
 */
#define _GNU_SOURCE
#include "addon.h"
#include "netns.h"

#include <fcntl.h>
#include <stdbool.h>
#include <netinet/in.h>
#include <netinet/udp.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#ifndef UDP_SEGMENT
#define UDP_SEGMENT 103 /* linux/udp.h, Linux 4.18 */
#endif
#ifndef UDP_GRO
#define UDP_GRO 104 /* linux/udp.h, Linux 5.0 */
#endif
#ifndef SO_RXQ_OVFL
#define SO_RXQ_OVFL 40
#endif

/* sendmmsg/recvmmsg take at most UIO_MAXIOV (1024) messages per call. */
#define MAX_MSGS 1024
/* iovecs per sendmmsg call; a GSO message holds at most 64 (UDP_MAX_SEGMENTS). */
#define MAX_IOVS 4096
#define PLAN_STRIDE 3

/* udpOpen(family 4|6, v6only, netnsPath): non-blocking, close-on-exec socket;
 * with a path, created inside that namespace (setns is per thread). */
static napi_value udp_open(napi_env env, napi_callback_info info) {
  napi_value argv[3];
  int32_t family, v6only;
  char path[512];
  size_t n;
  if (get_args(env, info, 3, argv) || get_i32(env, argv[0], &family) || get_i32(env, argv[1], &v6only)) return NULL;
  if (napi_get_value_string_utf8(env, argv[2], path, sizeof path, &n) != napi_ok || n >= sizeof path - 1) {
    napi_throw_type_error(env, "ERR_INVALID_ARG", "expected a namespace path");
    return NULL;
  }
  int domain = family == 6 ? AF_INET6 : AF_INET;
  int home = -1;
  if (n > 0) {
    int target = open(path, O_RDONLY | O_CLOEXEC);
    if (target < 0) return make_int(env, -errno);
    home = vt_netns_enter(target);
    close(target);
    if (home < 0) return make_int(env, home);
  }
  int fd = socket(domain, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  int e = errno;
  if (home >= 0) vt_netns_leave(home, "vectun udpOpen");
  if (fd < 0) return make_int(env, -e);
  if (domain == AF_INET6 && setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &v6only, sizeof v6only) < 0) {
    e = errno;
    close(fd);
    return make_int(env, -e);
  }
  return make_int(env, fd);
}

/* sockaddr bytes from JS; 16 (sockaddr_in) or 28 (sockaddr_in6), 0 = AF_UNSPEC. */
static int get_sockaddr(napi_env env, napi_value v, struct sockaddr_storage *ss, socklen_t *len) {
  size_t n;
  void *p = get_bytes(env, v, &n, napi_uint8_array);
  if (p == NULL) return -1;
  if (n > sizeof *ss) {
    napi_throw_range_error(env, "ERR_INVALID_ARG", "sockaddr too long");
    return -1;
  }
  memset(ss, 0, sizeof *ss);
  memcpy(ss, p, n);
  if (n == 0) ss->ss_family = AF_UNSPEC;
  *len = n == 0 ? (socklen_t)sizeof(sa_family_t) : (socklen_t)n;
  return 0;
}

/* The (fd, sockaddr) arguments of udpBind and udpConnect; -1 after throwing. */
static int get_fd_sockaddr(napi_env env, napi_callback_info info, int32_t *fd, struct sockaddr_storage *ss, socklen_t *len) {
  napi_value argv[2];
  if (get_args(env, info, 2, argv) || get_i32(env, argv[0], fd) || get_sockaddr(env, argv[1], ss, len)) return -1;
  return 0;
}

static napi_value udp_bind(napi_env env, napi_callback_info info) {
  int32_t fd;
  struct sockaddr_storage ss;
  socklen_t len;
  if (get_fd_sockaddr(env, info, &fd, &ss, &len)) return NULL;
  return make_int(env, bind(fd, (struct sockaddr *)&ss, len) < 0 ? -errno : 0);
}

static napi_value udp_connect(napi_env env, napi_callback_info info) {
  int32_t fd;
  struct sockaddr_storage ss;
  socklen_t len;
  if (get_fd_sockaddr(env, info, &fd, &ss, &len)) return NULL;
  int r;
  do r = connect(fd, (struct sockaddr *)&ss, len);
  while (r < 0 && errno == EINTR);
  return make_int(env, r < 0 ? -errno : 0);
}

static napi_value udp_sockname(napi_env env, napi_callback_info info) {
  int32_t fd;
  size_t n;
  uint8_t *out = get_fd_bytes(env, info, &fd, &n);
  if (out == NULL) return NULL;
  struct sockaddr_storage ss;
  socklen_t len = sizeof ss;
  if (getsockname(fd, (struct sockaddr *)&ss, &len) < 0) return make_int(env, -errno);
  if (len > n) len = (socklen_t)n;
  memcpy(out, &ss, len);
  return make_int(env, len);
}

/* Level and number of an option name; 0 when unknown. */
static int option_of(const char *name, int *level, int *opt) {
  static const struct { const char *name; int level, opt; } table[] = {
      {"SO_RCVBUF", SOL_SOCKET, SO_RCVBUF}, {"SO_SNDBUF", SOL_SOCKET, SO_SNDBUF},
      {"SO_RCVBUFFORCE", SOL_SOCKET, SO_RCVBUFFORCE}, {"SO_SNDBUFFORCE", SOL_SOCKET, SO_SNDBUFFORCE},
      {"SO_MARK", SOL_SOCKET, SO_MARK}, {"SO_RXQ_OVFL", SOL_SOCKET, SO_RXQ_OVFL},
      {"UDP_GRO", IPPROTO_UDP, UDP_GRO}, {"UDP_SEGMENT", IPPROTO_UDP, UDP_SEGMENT},
  };
  for (size_t i = 0; i < sizeof table / sizeof table[0]; i++) {
    if (strcmp(name, table[i].name) == 0) {
      *level = table[i].level;
      *opt = table[i].opt;
      return 1;
    }
  }
  return 0;
}

static int get_option_name(napi_env env, napi_value v, int *level, int *opt) {
  char name[32];
  size_t n;
  if (napi_get_value_string_utf8(env, v, name, sizeof name, &n) != napi_ok || !option_of(name, level, opt)) {
    napi_throw_type_error(env, "ERR_INVALID_ARG", "unknown socket option");
    return -1;
  }
  return 0;
}

/* udpSetOption(fd, name, value): setsockopt with an int. */
static napi_value udp_set_option(napi_env env, napi_callback_info info) {
  napi_value argv[3];
  int32_t fd, value;
  int level, opt;
  if (get_args(env, info, 3, argv) || get_i32(env, argv[0], &fd) || get_option_name(env, argv[1], &level, &opt) ||
      get_i32(env, argv[2], &value))
    return NULL;
  return make_int(env, setsockopt(fd, level, opt, &value, sizeof value) < 0 ? -errno : 0);
}

/* udpGetOption(fd, name): getsockopt as an int. */
static napi_value udp_get_option(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  int32_t fd;
  int level, opt, value = 0;
  socklen_t len = sizeof value;
  if (get_args(env, info, 2, argv) || get_i32(env, argv[0], &fd) || get_option_name(env, argv[1], &level, &opt)) return NULL;
  return make_int(env, getsockopt(fd, level, opt, &value, &len) < 0 ? -errno : value);
}

/* sockaddr_in -> IPv4-mapped sockaddr_in6 (::ffff:a.b.c.d) for AF_INET6 sockets. */
static void map_v4(const struct sockaddr_in *in, struct sockaddr_in6 *out) {
  memset(out, 0, sizeof *out);
  out->sin6_family = AF_INET6;
  out->sin6_port = in->sin_port;
  out->sin6_addr.s6_addr[10] = 0xff;
  out->sin6_addr.s6_addr[11] = 0xff;
  memcpy(&out->sin6_addr.s6_addr[12], &in->sin_addr, 4);
}

/* Per-call scratch: only the loop thread calls the addon. */
static struct mmsghdr msgs[MAX_MSGS];
static struct iovec iovs[MAX_IOVS];
static struct sockaddr_in6 mapped[MAX_MSGS];
static union {
  char buf[CMSG_SPACE(sizeof(uint16_t))];
  struct cmsghdr align;
} send_cmsgs[MAX_MSGS];

/* udpSend(fd, buffers, plan, addresses, start, count, mapV4): one sendmmsg
 * over plan messages start.. (see src/udp/native.ts). Messages the kernel
 * took, or -errno of the first one. */
static napi_value udp_send(napi_env env, napi_callback_info info) {
  napi_value argv[7];
  int32_t fd, start, count;
  bool map;
  size_t plan_len;
  uint32_t nbuffers, naddrs;
  if (get_args(env, info, 7, argv) || get_i32(env, argv[0], &fd)) return NULL;
  CHECK(napi_get_array_length(env, argv[1], &nbuffers));
  int32_t *plan = get_bytes(env, argv[2], &plan_len, napi_int32_array);
  if (plan == NULL) return NULL;
  CHECK(napi_get_array_length(env, argv[3], &naddrs));
  if (get_i32(env, argv[4], &start) || get_i32(env, argv[5], &count)) return NULL;
  CHECK(napi_get_value_bool(env, argv[6], &map));
  if (start < 0 || count <= 0 || (size_t)(start + count) * PLAN_STRIDE > plan_len || (naddrs > 1 && (uint32_t)(start + count) > naddrs)) {
    napi_throw_range_error(env, "ERR_INVALID_ARG", "plan or addresses shorter than the messages to send");
    return NULL;
  }
  void *one_addr = NULL;
  size_t one_len = 0;
  if (naddrs == 1) {
    napi_value a;
    CHECK(napi_get_element(env, argv[3], 0, &a));
    if ((one_addr = get_bytes(env, a, &one_len, napi_uint8_array)) == NULL) return NULL;
    if (map && one_len == sizeof(struct sockaddr_in)) {
      map_v4(one_addr, &mapped[0]);
      one_addr = &mapped[0];
      one_len = sizeof(struct sockaddr_in6);
    }
  }
  int nmsgs = 0, niov = 0;
  for (int32_t m = start; m < start + count && nmsgs < MAX_MSGS; m++) {
    int32_t first = plan[m * PLAN_STRIDE], nb = plan[m * PLAN_STRIDE + 1], seg = plan[m * PLAN_STRIDE + 2];
    if (first < 0 || nb <= 0 || (uint32_t)first + (uint32_t)nb > nbuffers || nb > MAX_IOVS) {
      napi_throw_range_error(env, "ERR_INVALID_ARG", "plan refers to buffers that do not exist");
      return NULL;
    }
    if (niov + nb > MAX_IOVS) break;
    struct msghdr *h = &msgs[nmsgs].msg_hdr;
    memset(h, 0, sizeof *h);
    for (int32_t j = 0; j < nb; j++) {
      napi_value buf;
      size_t len;
      CHECK(napi_get_element(env, argv[1], (uint32_t)(first + j), &buf));
      void *data = get_bytes(env, buf, &len, napi_uint8_array);
      if (data == NULL) return NULL;
      iovs[niov + j].iov_base = data;
      iovs[niov + j].iov_len = len;
    }
    h->msg_iov = &iovs[niov];
    h->msg_iovlen = (size_t)nb;
    niov += nb;
    if (naddrs == 1) {
      h->msg_name = one_addr;
      h->msg_namelen = (socklen_t)one_len;
    } else if (naddrs > 1) {
      napi_value a;
      size_t alen;
      CHECK(napi_get_element(env, argv[3], (uint32_t)m, &a));
      void *addr = get_bytes(env, a, &alen, napi_uint8_array);
      if (addr == NULL) return NULL;
      if (map && alen == sizeof(struct sockaddr_in)) {
        map_v4(addr, &mapped[nmsgs]);
        addr = &mapped[nmsgs];
        alen = sizeof(struct sockaddr_in6);
      }
      h->msg_name = addr;
      h->msg_namelen = (socklen_t)alen;
    }
    if (seg > 0) {
      /* udp(7) UDP_SEGMENT: the payload is cut into seg-byte datagrams (the last may be shorter). */
      h->msg_control = send_cmsgs[nmsgs].buf;
      h->msg_controllen = sizeof send_cmsgs[nmsgs].buf;
      struct cmsghdr *c = CMSG_FIRSTHDR(h);
      c->cmsg_level = IPPROTO_UDP;
      c->cmsg_type = UDP_SEGMENT;
      c->cmsg_len = CMSG_LEN(sizeof(uint16_t));
      uint16_t size = (uint16_t)seg;
      memcpy(CMSG_DATA(c), &size, sizeof size);
    }
    nmsgs++;
  }
  int r;
  do r = sendmmsg(fd, msgs, (unsigned)nmsgs, 0);
  while (r < 0 && errno == EINTR);
  return make_int(env, r < 0 ? -errno : r);
}

static struct sockaddr_in6 recv_names[MAX_MSGS];
static union {
  char buf[CMSG_SPACE(sizeof(int)) + CMSG_SPACE(sizeof(uint32_t)) + 64];
  struct cmsghdr align;
} recv_cmsgs[MAX_MSGS];

/* udpRecv(fd, arena, slotSize, max, lengths, segments, names, drops): one
 * recvmmsg (see src/udp/native.ts). */
static napi_value udp_recv(napi_env env, napi_callback_info info) {
  napi_value argv[8];
  int32_t fd, slot, max;
  size_t arena_len, lengths_len, segments_len, names_len, drops_len;
  if (get_args(env, info, 8, argv) || get_i32(env, argv[0], &fd)) return NULL;
  uint8_t *arena = get_bytes(env, argv[1], &arena_len, napi_uint8_array);
  if (arena == NULL || get_i32(env, argv[2], &slot) || get_i32(env, argv[3], &max)) return NULL;
  int32_t *lengths = get_bytes(env, argv[4], &lengths_len, napi_int32_array);
  if (lengths == NULL) return NULL;
  int32_t *segments = get_bytes(env, argv[5], &segments_len, napi_int32_array);
  if (segments == NULL) return NULL;
  uint8_t *names = get_bytes(env, argv[6], &names_len, napi_uint8_array);
  if (names == NULL) return NULL;
  uint32_t *drops = get_bytes(env, argv[7], &drops_len, napi_uint32_array);
  if (drops == NULL) return NULL;
  if (slot <= 0 || max <= 0 || max > MAX_MSGS || (size_t)max > lengths_len || (size_t)max > segments_len ||
      (size_t)max * sizeof(struct sockaddr_in6) > names_len || drops_len < 2 || (size_t)slot * (size_t)max > arena_len) {
    napi_throw_range_error(env, "ERR_INVALID_ARG", "buffers too small for the batch");
    return NULL;
  }
  static struct iovec riov[MAX_MSGS];
  for (int i = 0; i < max; i++) {
    struct msghdr *h = &msgs[i].msg_hdr;
    riov[i].iov_base = arena + (size_t)i * (size_t)slot;
    riov[i].iov_len = (size_t)slot;
    h->msg_iov = &riov[i];
    h->msg_iovlen = 1;
    h->msg_name = &recv_names[i];
    h->msg_namelen = sizeof recv_names[i];
    h->msg_control = recv_cmsgs[i].buf;
    h->msg_controllen = sizeof recv_cmsgs[i].buf;
    h->msg_flags = 0;
  }
  int r;
  do r = recvmmsg(fd, msgs, (unsigned)max, MSG_DONTWAIT, NULL);
  while (r < 0 && errno == EINTR);
  if (r < 0) return make_int(env, -errno);
  drops[1] = 0;
  for (int i = 0; i < r; i++) {
    struct msghdr *h = &msgs[i].msg_hdr;
    lengths[i] = (h->msg_flags & MSG_TRUNC) ? -1 : (int32_t)msgs[i].msg_len;
    segments[i] = 0;
    memset(names + (size_t)i * sizeof(struct sockaddr_in6), 0, sizeof(struct sockaddr_in6));
    memcpy(names + (size_t)i * sizeof(struct sockaddr_in6), &recv_names[i],
           h->msg_namelen < sizeof recv_names[i] ? h->msg_namelen : sizeof recv_names[i]);
    for (struct cmsghdr *c = CMSG_FIRSTHDR(h); c != NULL; c = CMSG_NXTHDR(h, c)) {
      if (c->cmsg_level == IPPROTO_UDP && c->cmsg_type == UDP_GRO) {
        int size;
        memcpy(&size, CMSG_DATA(c), sizeof size);
        segments[i] = size;
      } else if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SO_RXQ_OVFL) {
        /* socket(7): the count of datagrams dropped since the socket was created. */
        uint32_t n;
        memcpy(&n, CMSG_DATA(c), sizeof n);
        drops[0] = n;
        drops[1] = 1;
      }
    }
  }
  return make_int(env, r);
}

const vt_function vt_udp_functions[] = {
    {"udpOpen", udp_open}, {"udpBind", udp_bind}, {"udpConnect", udp_connect}, {"udpSockname", udp_sockname},
    {"udpSetOption", udp_set_option}, {"udpGetOption", udp_get_option}, {"udpSend", udp_send}, {"udpRecv", udp_recv},
    {NULL, NULL},
};
