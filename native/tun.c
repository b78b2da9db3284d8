/*
 * TUN descriptors: open/attach (TUNSETIFF), the integer ioctls, batch reads
 * into arena slots and one writev per write list. No packet parsing.
 */
#include "addon.h"

#include <fcntl.h>
#include <linux/if_tun.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

/* Kernel 6.2+ accepts UDP segmentation offload; older headers lack the bits. */
#ifndef TUN_F_USO4
#define TUN_F_USO4 0x20
#endif
#ifndef TUN_F_USO6
#define TUN_F_USO6 0x40
#endif

/* Linux 5.2+; older headers lack it (linux/if_tun.h: _IO('T', 227)). */
#ifndef TUNGETDEVNETNS
#define TUNGETDEVNETNS _IO('T', 227)
#endif

/* writev on Linux takes at most UIO_MAXIOV (1024) buffers (GRO-L2). */
#define MAX_IOV 1024

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

/* tunNetns(fd): TUNGETDEVNETNS, a new descriptor (close-on-exec) of the
 * network namespace the device is in now, with that namespace's st_dev and
 * st_ino (what `ip netns identify` compares); or -errno (ENOTTY/EINVAL before
 * Linux 5.2, EPERM without CAP_NET_ADMIN there, EBADFD once deleted). */
static napi_value tun_netns(napi_env env, napi_callback_info info) {
  napi_value argv[1], out, v;
  int32_t fd;
  if (get_args(env, info, 1, argv) || get_i32(env, argv[0], &fd)) return NULL;
  int ns = ioctl(fd, TUNGETDEVNETNS);
  if (ns < 0) return make_int(env, -errno);
  struct stat st;
  if (fstat(ns, &st) < 0) {
    int e = errno;
    close(ns);
    return make_int(env, -e);
  }
  CHECK(napi_create_object(env, &out));
  CHECK(napi_create_int32(env, ns, &v));
  CHECK(napi_set_named_property(env, out, "fd", v));
  CHECK(napi_create_double(env, (double)st.st_dev, &v));
  CHECK(napi_set_named_property(env, out, "dev", v));
  CHECK(napi_create_double(env, (double)st.st_ino, &v));
  CHECK(napi_set_named_property(env, out, "inode", v));
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

const vt_function vt_tun_functions[] = {
    {"tunOpen", tun_open},   {"tunGetIff", tun_get_iff},       {"tunIoctl", tun_ioctl},
    {"tunNetns", tun_netns},
    {"setNonBlocking", set_non_blocking}, {"close", close_fd}, {"ifIndex", if_index},
    {"readBatch", read_batch}, {"writeLists", write_lists},    {NULL, NULL},
};
