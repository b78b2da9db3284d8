{
  "targets": [
    {
      "target_name": "vectun",
      "sources": ["native/vectun.c"],
      "cflags": ["-std=gnu11", "-O2", "-Wall", "-Wextra"],
      "defines": ["NAPI_VERSION=8"]
    }
  ]
}
