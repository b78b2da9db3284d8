/*
 * vectun native addon: the system calls TypeScript cannot make itself.
 *
 * Syscalls, readiness (uv_poll) and batch draining only; no packet parsing and
 * no policy (offload negotiation, error mapping and events live in
 * src/device/). Every function returns a non-negative result or -errno, so
 * TypeScript can build VectunErrors with errno and syscall.
 * node-api only (ABI-stable); the signatures are declared in src/device/native.ts.
 */
#define NAPI_VERSION 8
#include <node_api.h>
#include <uv.h>

#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <linux/if_tun.h>
#include <linux/netlink.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

/* Kernel 6.2+ accepts UDP segmentation offload; older headers lack the bits. */
#ifndef TUN_F_USO4
#define TUN_F_USO4 0x20
#endif
#ifndef TUN_F_USO6
#define TUN_F_USO6 0x40
#endif

/* writev on Linux takes at most UIO_MAXIOV (1024) buffers (GRO-L2). */
#define MAX_IOV 1024

#define CHECK(call)                                                              \
  do {                                                                           \
    if ((call) != napi_ok) {                                                     \
      napi_throw_error(env, "ERR_TUN_NATIVE", "node-api call failed: " #call);   \
      return NULL;                                                               \
    }                                                                            \
  } while (0)

static napi_value make_int(napi_env env, int64_t v) {
  napi_value out;
  if (napi_create_int64(env, v, &out) != napi_ok) return NULL;
  return out;
}

static int get_args(napi_env env, napi_callback_info info, size_t want, napi_value *argv) {
  size_t argc = want;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < want) {
    napi_throw_type_error(env, "ERR_INVALID_ARG", "missing arguments");
    return -1;
  }
  return 0;
}

static int get_i32(napi_env env, napi_value v, int32_t *out) {
  if (napi_get_value_int32(env, v, out) != napi_ok) {
    napi_throw_type_error(env, "ERR_INVALID_ARG", "expected a number");
    return -1;
  }
  return 0;
}

/* Bytes of a Uint8Array (or Int32Array for `lengths`); NULL after throwing. */
static void *get_bytes(napi_env env, napi_value v, size_t *len, napi_typedarray_type want) {
  napi_typedarray_type type;
  size_t count;
  void *data;
  if (napi_get_typedarray_info(env, v, &type, &count, &data, NULL, NULL) != napi_ok || type != want) {
    napi_throw_type_error(env, "ERR_INVALID_ARG", "expected a typed array of the right kind");
    return NULL;
  }
  *len = count;
  return data;
}

static int get_name(napi_env env, napi_value v, char name[IFNAMSIZ]) {
  size_t n;
  memset(name, 0, IFNAMSIZ);
  if (napi_get_value_string_utf8(env, v, name, IFNAMSIZ, &n) != napi_ok) {
    napi_throw_type_error(env, "ERR_INVALID_ARG", "expected a string");
    return -1;
  }
  return 0;
}

/* tunOpen(name, flags): opens /dev/net/tun and attaches it (TUNSETIFF, DEV-1)
 * in non-blocking, close-on-exec mode. An empty name lets the kernel pick. */
static napi_value tun_open(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  char name[IFNAMSIZ];
  int32_t flags;
  if (get_args(env, info, 2, argv) || get_name(env, argv[0], name) || get_i32(env, argv[1], &flags)) return NULL;
  int fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) return make_int(env, -errno);
  struct ifreq ifr;
  memset(&ifr, 0, sizeof ifr);
  memcpy(ifr.ifr_name, name, IFNAMSIZ);
  ifr.ifr_flags = (short)flags;
  if (ioctl(fd, TUNSETIFF, &ifr) < 0) {
    int e = errno;
    close(fd);
    return make_int(env, -e);
  }
  return make_int(env, fd);
}

/* tunGetIff(fd): { name, flags } or -errno (EBADFD once the device is gone). */
static napi_value tun_get_iff(napi_env env, napi_callback_info info) {
  napi_value argv[1], out, v;
  int32_t fd;
  if (get_args(env, info, 1, argv) || get_i32(env, argv[0], &fd)) return NULL;
  struct ifreq ifr;
  memset(&ifr, 0, sizeof ifr);
  if (ioctl(fd, TUNGETIFF, &ifr) < 0) return make_int(env, -errno);
  CHECK(napi_create_object(env, &out));
  CHECK(napi_create_string_utf8(env, ifr.ifr_name, strnlen(ifr.ifr_name, IFNAMSIZ), &v));
  CHECK(napi_set_named_property(env, out, "name", v));
  CHECK(napi_create_int32(env, (uint16_t)ifr.ifr_flags, &v));
  CHECK(napi_set_named_property(env, out, "flags", v));
  return out;
}

/* The integer-argument TUN ioctls, by name so TypeScript never sees numbers
 * that depend on the architecture's _IOW encoding. */
static napi_value tun_ioctl(napi_env env, napi_callback_info info) {
  napi_value argv[3];
  char op[32];
  size_t n;
  int32_t fd, value;
  if (get_args(env, info, 3, argv) || get_i32(env, argv[0], &fd)) return NULL;
  if (napi_get_value_string_utf8(env, argv[1], op, sizeof op, &n) != napi_ok) {
    napi_throw_type_error(env, "ERR_INVALID_ARG", "expected an ioctl name");
    return NULL;
  }
  if (get_i32(env, argv[2], &value)) return NULL;
  int r;
  if (strcmp(op, "TUNSETOFFLOAD") == 0) {
    r = ioctl(fd, TUNSETOFFLOAD, (unsigned long)(uint32_t)value); /* by value */
  } else if (strcmp(op, "TUNSETVNETHDRSZ") == 0) {
    r = ioctl(fd, TUNSETVNETHDRSZ, &value); /* by pointer */
  } else if (strcmp(op, "TUNSETVNETLE") == 0) {
    r = ioctl(fd, TUNSETVNETLE, &value);
  } else if (strcmp(op, "TUNSETPERSIST") == 0) {
    r = ioctl(fd, TUNSETPERSIST, (unsigned long)value);
  } else if (strcmp(op, "TUNSETOWNER") == 0) {
    r = ioctl(fd, TUNSETOWNER, (unsigned long)(uint32_t)value);
  } else if (strcmp(op, "TUNSETGROUP") == 0) {
    r = ioctl(fd, TUNSETGROUP, (unsigned long)(uint32_t)value);
  } else {
    napi_throw_type_error(env, "ERR_INVALID_ARG", "unknown ioctl");
    return NULL;
  }
  return make_int(env, r < 0 ? -errno : r);
}

/* setNonBlocking(fd): for adopted descriptors (Tun.fromFd). */
static napi_value set_non_blocking(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  int32_t fd;
  if (get_args(env, info, 1, argv) || get_i32(env, argv[0], &fd)) return NULL;
  int fl = fcntl(fd, F_GETFL);
  if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0) return make_int(env, -errno);
  return make_int(env, 0);
}

static napi_value close_fd(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  int32_t fd;
  if (get_args(env, info, 1, argv) || get_i32(env, argv[0], &fd)) return NULL;
  /* No retry on EINTR: on Linux the descriptor is released either way. */
  return make_int(env, close(fd) < 0 ? -errno : 0);
}

static napi_value if_index(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  char name[IFNAMSIZ];
  if (get_args(env, info, 1, argv) || get_name(env, argv[0], name)) return NULL;
  unsigned idx = if_nametoindex(name);
  return make_int(env, idx == 0 ? -errno : (int64_t)idx);
}

/* readBatch(fd, arena, slotSize, maxFrames, lengths): reads frames into
 * consecutive slots of `arena` until EAGAIN or `maxFrames`; lengths[i] = bytes
 * of frame i. Returns the frame count, or -errno when the first read failed. A
 * later failure ends the batch; a lasting one (EBADFD) shows on the next call. */
static napi_value read_batch(napi_env env, napi_callback_info info) {
  napi_value argv[5];
  int32_t fd, slot, max;
  size_t arena_len, lengths_len;
  if (get_args(env, info, 5, argv) || get_i32(env, argv[0], &fd)) return NULL;
  uint8_t *arena = get_bytes(env, argv[1], &arena_len, napi_uint8_array);
  if (arena == NULL || get_i32(env, argv[2], &slot) || get_i32(env, argv[3], &max)) return NULL;
  int32_t *lengths = get_bytes(env, argv[4], &lengths_len, napi_int32_array);
  if (lengths == NULL) return NULL;
  if (slot <= 0 || max < 0 || (size_t)max > lengths_len || (size_t)slot * (size_t)max > arena_len) {
    napi_throw_range_error(env, "ERR_INVALID_ARG", "arena or lengths too small for the batch");
    return NULL;
  }
  int count = 0;
  while (count < max) {
    ssize_t n = read(fd, arena + (size_t)count * (size_t)slot, (size_t)slot);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (count == 0) return make_int(env, -errno);
      break;
    }
    lengths[count++] = (int32_t)n;
  }
  return make_int(env, count);
}

/* writeLists(fd, lists, start, results): one writev per list (each list is
 * an array of Uint8Array, <= 1024 of them), from lists[start] on. EINTR is
 * retried (SG-4). results[i] = bytes written or -errno; other errnos go on to
 * the next list. Stops at EAGAIN or EBADFD, leaving it in results[i], and
 * returns i; returns lists.length when every list was tried. */
static napi_value write_lists(napi_env env, napi_callback_info info) {
  napi_value argv[4];
  int32_t fd, start;
  uint32_t count;
  size_t results_len;
  struct iovec iov[MAX_IOV];
  if (get_args(env, info, 4, argv) || get_i32(env, argv[0], &fd) || get_i32(env, argv[2], &start)) return NULL;
  CHECK(napi_get_array_length(env, argv[1], &count));
  int32_t *results = get_bytes(env, argv[3], &results_len, napi_int32_array);
  if (results == NULL) return NULL;
  if (start < 0 || results_len < count) {
    napi_throw_range_error(env, "ERR_INVALID_ARG", "results shorter than the write lists");
    return NULL;
  }
  for (uint32_t i = (uint32_t)start; i < count; i++) {
    napi_value list, buf;
    uint32_t nbufs;
    CHECK(napi_get_element(env, argv[1], i, &list));
    CHECK(napi_get_array_length(env, list, &nbufs));
    if (nbufs > MAX_IOV) {
      results[i] = -EMSGSIZE;
      continue;
    }
    for (uint32_t j = 0; j < nbufs; j++) {
      size_t len;
      CHECK(napi_get_element(env, list, j, &buf));
      void *data = get_bytes(env, buf, &len, napi_uint8_array);
      if (data == NULL) return NULL;
      iov[j].iov_base = data;
      iov[j].iov_len = len;
    }
    ssize_t n;
    do n = writev(fd, iov, (int)nbufs);
    while (n < 0 && errno == EINTR);
    results[i] = n < 0 ? -errno : (int32_t)n;
    if (n < 0 && (errno == EAGAIN || errno == EBADFD)) return make_int(env, i);
  }
  return make_int(env, count);
}

/* nlOpen(groups): a non-blocking NETLINK_ROUTE socket bound to the multicast
 * `groups` bitmask (RTMGRP_LINK = 1 for link events; 0 for requests). */
static napi_value nl_open(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  int32_t groups;
  if (get_args(env, info, 1, argv) || get_i32(env, argv[0], &groups)) return NULL;
  int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC | SOCK_NONBLOCK, NETLINK_ROUTE);
  if (fd < 0) return make_int(env, -errno);
  struct sockaddr_nl sa;
  memset(&sa, 0, sizeof sa);
  sa.nl_family = AF_NETLINK;
  sa.nl_groups = (uint32_t)groups;
  if (bind(fd, (struct sockaddr *)&sa, sizeof sa) < 0) {
    int e = errno;
    close(fd);
    return make_int(env, -e);
  }
  return make_int(env, fd);
}

/* nlSend(fd, message): one datagram to the kernel. */
static napi_value nl_send(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  int32_t fd;
  size_t len;
  if (get_args(env, info, 2, argv) || get_i32(env, argv[0], &fd)) return NULL;
  uint8_t *data = get_bytes(env, argv[1], &len, napi_uint8_array);
  if (data == NULL) return NULL;
  struct sockaddr_nl sa;
  memset(&sa, 0, sizeof sa);
  sa.nl_family = AF_NETLINK;
  ssize_t n;
  do n = sendto(fd, data, len, 0, (struct sockaddr *)&sa, sizeof sa);
  while (n < 0 && errno == EINTR);
  return make_int(env, n < 0 ? -errno : n);
}

/* nlRecv(fd, buffer): one datagram, non-blocking; -EAGAIN when none. */
static napi_value nl_recv(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  int32_t fd;
  size_t len;
  if (get_args(env, info, 2, argv) || get_i32(env, argv[0], &fd)) return NULL;
  uint8_t *data = get_bytes(env, argv[1], &len, napi_uint8_array);
  if (data == NULL) return NULL;
  ssize_t n;
  do n = recv(fd, data, len, MSG_DONTWAIT);
  while (n < 0 && errno == EINTR);
  return make_int(env, n < 0 ? -errno : n);
}

/* ---- readiness: one uv_poll per descriptor ------------------------------ */

/* Freed when both the uv handle has closed and the JS external is gone. */
typedef struct {
  uv_poll_t handle;
  napi_env env;
  napi_ref callback;
  napi_async_context context;
  int closed;
  int handle_closed;
  int finalized;
} poller_t;

static void poller_freed(uv_handle_t *h) {
  poller_t *p = h->data;
  p->handle_closed = 1;
  if (p->finalized) free(p);
}

static void poller_close(poller_t *p) {
  if (p->closed) return;
  p->closed = 1;
  uv_poll_stop(&p->handle);
  napi_delete_reference(p->env, p->callback);
  napi_async_destroy(p->env, p->context);
  uv_close((uv_handle_t *)&p->handle, poller_freed);
}

static void poller_env_cleanup(void *arg) { poller_close(arg); }

/* Calls back (status, events) on the loop thread; status < 0 is a libuv
 * error, e.g. UV_EBADF after POLLERR (a deleted TUN device), which also stops
 * the watcher until pollSet is called again. */
static void poller_fired(uv_poll_t *h, int status, int events) {
  poller_t *p = h->data;
  napi_env env = p->env;
  napi_handle_scope scope;
  napi_value cb, recv, argv[2];
  if (p->closed || napi_open_handle_scope(env, &scope) != napi_ok) return;
  if (napi_get_reference_value(env, p->callback, &cb) == napi_ok && cb != NULL &&
      napi_get_global(env, &recv) == napi_ok && napi_create_int32(env, status, &argv[0]) == napi_ok &&
      napi_create_int32(env, events, &argv[1]) == napi_ok ) {
    napi_value result;
    if (napi_make_callback(env, p->context, recv, cb, 2, argv, &result) == napi_pending_exception) {
      napi_value err;
      napi_get_and_clear_last_exception(env, &err);
      napi_fatal_exception(env, err);
    }
  }
  napi_close_handle_scope(env, scope);
}

static void poller_finalize(napi_env env, void *data, void *hint) {
  (void)env;
  (void)hint;
  poller_t *p = data;
  if (!p->closed) {
    napi_remove_env_cleanup_hook(env, poller_env_cleanup, p);
    poller_close(p);
  }
  p->finalized = 1;
  if (p->handle_closed) free(p);
}

/* pollCreate(fd, callback): an idle poller; pollSet starts it. */
static napi_value poll_create(napi_env env, napi_callback_info info) {
  napi_value argv[2], out, name;
  int32_t fd;
  uv_loop_t *loop;
  if (get_args(env, info, 2, argv) || get_i32(env, argv[0], &fd)) return NULL;
  CHECK(napi_get_uv_event_loop(env, &loop));
  poller_t *p = calloc(1, sizeof *p);
  if (p == NULL) return make_int(env, -ENOMEM);
  int r = uv_poll_init(loop, &p->handle, fd);
  if (r < 0) {
    free(p);
    return make_int(env, r); /* libuv errors are -errno on Linux */
  }
  p->handle.data = p;
  p->env = env;
  CHECK(napi_create_reference(env, argv[1], 1, &p->callback));
  CHECK(napi_create_string_utf8(env, "vectun:poll", NAPI_AUTO_LENGTH, &name));
  CHECK(napi_async_init(env, NULL, name, &p->context));
  CHECK(napi_add_env_cleanup_hook(env, poller_env_cleanup, p));
  CHECK(napi_create_external(env, p, poller_finalize, NULL, &out));
  return out;
}

static poller_t *get_poller(napi_env env, napi_value v) {
  void *p;
  if (napi_get_value_external(env, v, &p) != napi_ok) {
    napi_throw_type_error(env, "ERR_INVALID_ARG", "expected a poller");
    return NULL;
  }
  return p;
}

/* pollSet(poller, events): 1 readable | 2 writable; 0 stops (an idle poller
 * does not keep the process alive). */
static napi_value poll_set(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  int32_t events;
  if (get_args(env, info, 2, argv)) return NULL;
  poller_t *p = get_poller(env, argv[0]);
  if (p == NULL || get_i32(env, argv[1], &events)) return NULL;
  if (p->closed) return make_int(env, -EBADF);
  int r = events == 0 ? uv_poll_stop(&p->handle) : uv_poll_start(&p->handle, events & (UV_READABLE | UV_WRITABLE), poller_fired);
  return make_int(env, r);
}

/* pollClose(poller): stops watching at once; call before closing the fd. */
static napi_value poll_close(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  if (get_args(env, info, 1, argv)) return NULL;
  poller_t *p = get_poller(env, argv[0]);
  if (p == NULL) return NULL;
  if (!p->closed) {
    napi_remove_env_cleanup_hook(env, poller_env_cleanup, p);
    poller_close(p);
  }
  return make_int(env, 0);
}

/* pollRef(poller, ref): whether an active poller keeps the process alive. */
static napi_value poll_ref(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  bool ref;
  if (get_args(env, info, 2, argv)) return NULL;
  poller_t *p = get_poller(env, argv[0]);
  if (p == NULL) return NULL;
  CHECK(napi_get_value_bool(env, argv[1], &ref));
  if (!p->closed) {
    if (ref) uv_ref((uv_handle_t *)&p->handle);
    else uv_unref((uv_handle_t *)&p->handle);
  }
  return make_int(env, 0);
}

NAPI_MODULE_INIT(/* napi_env env, napi_value exports */) {
  static const struct { const char *name; napi_callback fn; } fns[] = {
      {"tunOpen", tun_open},         {"tunGetIff", tun_get_iff}, {"tunIoctl", tun_ioctl},
      {"setNonBlocking", set_non_blocking}, {"close", close_fd}, {"ifIndex", if_index},
      {"readBatch", read_batch},     {"writeLists", write_lists}, {"nlOpen", nl_open},
      {"nlSend", nl_send},           {"nlRecv", nl_recv},         {"pollCreate", poll_create},
      {"pollSet", poll_set},         {"pollClose", poll_close},   {"pollRef", poll_ref},
  };
  for (size_t i = 0; i < sizeof fns / sizeof fns[0]; i++) {
    napi_value f;
    CHECK(napi_create_function(env, fns[i].name, NAPI_AUTO_LENGTH, fns[i].fn, NULL, &f));
    CHECK(napi_set_named_property(env, exports, fns[i].name, f));
  }
  return exports;
}
