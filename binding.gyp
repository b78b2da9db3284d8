{
  "targets": [
    {
      "target_name": "vectun",
      "sources": ["native/addon.c", "native/tun.c", "native/netlink.c", "native/netns.c", "native/poll.c", "native/udp.c", "native/aead.c"],
      "cflags": ["-std=gnu11", "-O2", "-Wall", "-Wextra"],
      "defines": ["NAPI_VERSION=8"]
    }
  ]
}
