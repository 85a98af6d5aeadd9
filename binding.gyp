{
  "targets": [
    {
      "target_name": "handlefs_native",
      "sources": [
        "native/handlefs_native.c"
      ],
      "cflags_c": [
        "-std=gnu11",
        "-Wall",
        "-Wextra",
        "-Wno-unused-parameter"
      ],
      "defines": [
        "NAPI_VERSION=8"
      ]
    },
    {
      "target_name": "handlefs_fuse",
      "sources": [
        "native/fuse_device.c"
      ],
      "cflags_c": [
        "-std=gnu11",
        "-Wall",
        "-Wextra",
        "-Wno-unused-parameter"
      ],
      "defines": [
        "NAPI_VERSION=8"
      ]
    }
  ]
}
