/*
 * handlefs FUSE device helper: reads and writes /dev/fuse without Node's per-call overheads.
 *
 *   startReader(fd, buffer, onRequest) -> reader
 *       Watches fd (non-blocking) on the event loop. Each time it is readable, read()s requests
 *       into `buffer` one at a time (each read returns exactly one request) and calls
 *       onRequest(n) synchronously for each (the buffer is reused after the call returns),
 *       until read() reports EAGAIN or BATCH requests were delivered; then returns to the loop.
 *       EINTR and ENOENT (the kernel's "request interrupted, read again") are read again; any
 *       other read error, or a read of 0 bytes (reported as ENODEV), calls onRequest(-errno)
 *       once and stops the reader (ENODEV = unmounted). onRequest returning false stops it too.
 *   stopReader(reader) -> boolean    stops the watch (true if it was active); idempotent
 *   write(fd, buffer, len) -> n | -errno
 *   writev(fd, buffers) -> n | -errno
 *       One write(2)/writev(2) = one reply; the result is returned, never thrown, because a
 *       failed reply is routine (ENOENT: the request was interrupted).
 *
 *   socketpair() -> [fd, fd]          AF_UNIX stream pair, close-on-exec (fusermount3's channel)
 *   recvFd(sock) -> fd | -errno       one descriptor passed with SCM_RIGHTS (close-on-exec),
 *                                     without waiting: -EAGAIN when none has arrived
 *       fusermount3 mounts for users without root and hands back the /dev/fuse descriptor this
 *       way (the _FUSE_COMMFD protocol); Node cannot receive descriptors by itself.
 *
 * Why: per request Node's path costs a libuv loop turn and a C++->JS callback for every read,
 * and fs.readSync/fs.writeSync validate their arguments and build an Error object for EAGAIN.
 * Here a wake-up reads every queued request in one callback scope, and an empty queue costs one
 * read(2) that returns EAGAIN. See docs/fuse.md.
 *
 * The descriptor is owned by JavaScript: stop the reader before closing it.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <node_api.h>
#include "napi_helpers.h"
#include <uv.h>

/* Requests delivered per wake-up at most, so timers and other I/O are not starved. */
#define BATCH 64
/* Pieces one writev() takes at most (WRITEV_MAX_PIECES in src/fuse/device-addon.ts). */
#define MAX_PIECES 64

typedef struct reader {
  uv_poll_t poll;
  napi_env env;
  int fd;
  napi_ref callback; /* strong while active */
  napi_ref buffer;   /* strong while active: keeps `data` alive */
  void *data;
  size_t size;
  napi_async_context async;
  int active;
  int dispatching; /* inside on_poll: JS references are released when it returns */
  int uv_closed;
  int js_released;
} reader_t;


static int get_fd(napi_env env, napi_value v, int32_t *out) {
  return get_int_arg(env, v, out) && *out >= 0;
}

/* Buffer or any TypedArray/DataView over an ArrayBuffer. */
static int get_bytes(napi_env env, napi_value v, void **data, size_t *len) {
  bool is;
  if (napi_is_buffer(env, v, &is) == napi_ok && is) return napi_get_buffer_info(env, v, data, len) == napi_ok;
  if (napi_is_typedarray(env, v, &is) == napi_ok && is) {
    napi_typedarray_type type;
    size_t count, offset;
    napi_value ab;
    if (napi_get_typedarray_info(env, v, &type, &count, data, &ab, &offset) != napi_ok) return 0;
    if (type != napi_uint8_array && type != napi_int8_array && type != napi_uint8_clamped_array) return 0;
    *len = count;
    return 1;
  }
  return 0;
}

static void maybe_free(reader_t *r) {
  if (r->uv_closed && r->js_released) free(r);
}

static void on_close(uv_handle_t *h) {
  reader_t *r = (reader_t *)h->data;
  r->uv_closed = 1;
  maybe_free(r);
}

static void release_js(reader_t *r) {
  if (r->callback) napi_delete_reference(r->env, r->callback);
  if (r->buffer) napi_delete_reference(r->env, r->buffer);
  if (r->async) napi_async_destroy(r->env, r->async);
  r->callback = r->buffer = NULL;
  r->async = NULL;
}

/* Stops watching. May be called from onRequest (the session closing on DESTROY): the callback
   scope on_poll has open still uses the async context, so on_poll releases it afterwards. */
static void stop(reader_t *r) {
  if (!r->active) return;
  r->active = 0;
  uv_poll_stop(&r->poll);
  uv_close((uv_handle_t *)&r->poll, on_close);
  if (!r->dispatching) release_js(r);
}

/* Calls onRequest(n); returns 0 when the reader must stop (false returned, or an exception). */
static int deliver(reader_t *r, napi_value cb, napi_value recv, int32_t n) {
  napi_value arg, result;
  if (napi_create_int32(r->env, n, &arg) != napi_ok) return 0;
  napi_status s = napi_call_function(r->env, recv, cb, 1, &arg, &result);
  if (s == napi_pending_exception) {
    napi_value exc;
    if (napi_get_and_clear_last_exception(r->env, &exc) == napi_ok) napi_fatal_exception(r->env, exc);
    return 0;
  }
  if (s != napi_ok) return 0;
  bool keep = true;
  napi_valuetype t;
  if (napi_typeof(r->env, result, &t) == napi_ok && t == napi_boolean) napi_get_value_bool(r->env, result, &keep);
  return keep;
}

static void on_poll(uv_poll_t *handle, int status, int events) {
  (void)events;
  reader_t *r = (reader_t *)handle->data;
  if (!r->active) return;
  napi_env env = r->env;
  napi_handle_scope hs;
  if (napi_open_handle_scope(env, &hs) != napi_ok) return;
  napi_value resource, cb;
  napi_callback_scope cs;
  if (napi_get_global(env, &resource) != napi_ok || napi_get_reference_value(env, r->callback, &cb) != napi_ok ||
      napi_open_callback_scope(env, resource, r->async, &cs) != napi_ok) {
    napi_close_handle_scope(env, hs);
    return;
  }
  r->dispatching = 1;
  /* libuv reports POLLERR (the connection was aborted or unmounted) as status UV_EBADF and stops
     the watch: read() tells the real condition (ENODEV, ECONNABORTED). */
  int err = 0;
  for (int i = 0; err == 0 && i < BATCH && r->active; i++) {
    ssize_t n = read(r->fd, r->data, r->size);
    if (n > 0) {
      napi_handle_scope inner;
      if (napi_open_handle_scope(env, &inner) != napi_ok) break;
      int keep = deliver(r, cb, resource, (int32_t)n);
      napi_close_handle_scope(env, inner);
      if (!keep) stop(r);
      continue;
    }
    if (n == 0) err = ENODEV;
    else if (errno == EAGAIN || errno == EWOULDBLOCK) break;
    else if (errno == EINTR || errno == ENOENT) continue; /* ENOENT: the request was interrupted */
    else err = errno;
  }
  if (err != 0 && r->active) {
    deliver(r, cb, resource, -err);
    stop(r);
  }
  if (status < 0 && r->active && uv_poll_start(&r->poll, UV_READABLE, on_poll) < 0) {
    deliver(r, cb, resource, -EBADF);
    stop(r);
  }
  napi_close_callback_scope(env, cs); /* runs microtasks and process.nextTick callbacks */
  r->dispatching = 0;
  if (!r->active) release_js(r);
  napi_close_handle_scope(env, hs);
}

static void finalize(napi_env env, void *data, void *hint) {
  (void)env;
  (void)hint;
  reader_t *r = (reader_t *)data;
  r->js_released = 1;
  maybe_free(r);
}

static napi_value start_reader_js(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  NAPI_CALL(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  int32_t fd;
  void *data;
  size_t size;
  napi_valuetype t;
  if (argc < 3 || !get_fd(env, argv[0], &fd)) return throw_type(env, "startReader(fd, buffer, onRequest): bad fd");
  if (!get_bytes(env, argv[1], &data, &size) || size == 0)
    return throw_type(env, "startReader(fd, buffer, onRequest): buffer must be a non-empty Uint8Array");
  NAPI_CALL(env, napi_typeof(env, argv[2], &t));
  if (t != napi_function) return throw_type(env, "startReader(fd, buffer, onRequest): onRequest must be a function");

  uv_loop_t *loop;
  NAPI_CALL(env, napi_get_uv_event_loop(env, &loop));
  reader_t *r = (reader_t *)calloc(1, sizeof *r);
  if (!r) {
    napi_throw_error(env, "ENOMEM", "startReader: out of memory");
    return NULL;
  }
  r->env = env;
  r->fd = fd;
  r->data = data;
  r->size = size;
  int rc = uv_poll_init(loop, &r->poll, fd);
  if (rc < 0) {
    free(r);
    napi_throw_error(env, uv_err_name(rc), uv_strerror(rc));
    return NULL;
  }
  r->poll.data = r;
  napi_value name, handle;
  if (napi_create_reference(env, argv[2], 1, &r->callback) != napi_ok ||
      napi_create_reference(env, argv[1], 1, &r->buffer) != napi_ok ||
      napi_create_string_utf8(env, "handlefs:fuseReader", NAPI_AUTO_LENGTH, &name) != napi_ok ||
      napi_async_init(env, NULL, name, &r->async) != napi_ok ||
      napi_create_external(env, r, finalize, NULL, &handle) != napi_ok) {
    r->active = 1;
    stop(r);
    r->js_released = 1;
    napi_throw_error(env, NULL, "startReader: N-API setup failed");
    return NULL;
  }
  rc = uv_poll_start(&r->poll, UV_READABLE, on_poll);
  r->active = 1;
  if (rc < 0) {
    stop(r);
    napi_throw_error(env, uv_err_name(rc), uv_strerror(rc));
    return NULL;
  }
  return handle;
}

static napi_value stop_reader_js(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  NAPI_CALL(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  napi_valuetype t;
  if (argc < 1 || napi_typeof(env, argv[0], &t) != napi_ok || t != napi_external)
    return throw_type(env, "stopReader(reader): reader must come from startReader");
  reader_t *r;
  NAPI_CALL(env, napi_get_value_external(env, argv[0], (void **)&r));
  int was = r->active;
  stop(r);
  napi_value result;
  NAPI_CALL(env, napi_get_boolean(env, was != 0, &result));
  return result;
}

static napi_value result_of(napi_env env, ssize_t n) {
  napi_value v;
  NAPI_CALL(env, napi_create_int32(env, n < 0 ? -errno : (int32_t)n, &v));
  return v;
}

static napi_value write_js(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  NAPI_CALL(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  int32_t fd;
  uint32_t len;
  void *data;
  size_t size;
  if (argc < 3 || !get_fd(env, argv[0], &fd) || !get_bytes(env, argv[1], &data, &size) ||
      napi_get_value_uint32(env, argv[2], &len) != napi_ok || len > size)
    return throw_type(env, "write(fd, buffer, len): bad arguments");
  return result_of(env, write(fd, data, len));
}

static napi_value writev_js(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  NAPI_CALL(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  int32_t fd;
  bool is_array;
  uint32_t count;
  if (argc < 2 || !get_fd(env, argv[0], &fd) || napi_is_array(env, argv[1], &is_array) != napi_ok || !is_array ||
      napi_get_array_length(env, argv[1], &count) != napi_ok || count > MAX_PIECES)
    return throw_type(env, "writev(fd, buffers): bad arguments");
  struct iovec iov[MAX_PIECES];
  for (uint32_t i = 0; i < count; i++) {
    napi_value el;
    NAPI_CALL(env, napi_get_element(env, argv[1], i, &el));
    if (!get_bytes(env, el, &iov[i].iov_base, &iov[i].iov_len)) return throw_type(env, "writev(fd, buffers): not a Uint8Array");
  }
  return result_of(env, writev(fd, iov, (int)count));
}

static napi_value socketpair_js(napi_env env, napi_callback_info info) {
  (void)info;
  int sv[2];
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0) {
    napi_throw_error(env, "ESOCKETPAIR", strerror(errno));
    return NULL;
  }
  napi_value arr, a, b;
  NAPI_CALL(env, napi_create_array_with_length(env, 2, &arr));
  NAPI_CALL(env, napi_create_int32(env, sv[0], &a));
  NAPI_CALL(env, napi_create_int32(env, sv[1], &b));
  NAPI_CALL(env, napi_set_element(env, arr, 0, a));
  NAPI_CALL(env, napi_set_element(env, arr, 1, b));
  return arr;
}

static napi_value recv_fd_js(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  NAPI_CALL(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  int32_t sock;
  if (argc < 1 || !get_fd(env, argv[0], &sock)) return throw_type(env, "recvFd(sock): bad descriptor");
  char byte;
  struct iovec iov = {.iov_base = &byte, .iov_len = 1};
  union {
    struct cmsghdr align;
    char buf[CMSG_SPACE(sizeof(int))];
  } control;
  memset(&control, 0, sizeof control);
  struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = control.buf, .msg_controllen = sizeof control.buf};
  ssize_t n;
  do n = recvmsg(sock, &msg, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
  while (n < 0 && errno == EINTR);
  int result = -EPROTO;
  if (n < 0) result = -errno;
  else if (n == 0) result = -ECONNRESET; /* closed without sending anything */
  else {
    struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
    if (c && c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS && c->cmsg_len == CMSG_LEN(sizeof(int)))
      memcpy(&result, CMSG_DATA(c), sizeof(int));
  }
  napi_value v;
  NAPI_CALL(env, napi_create_int32(env, result, &v));
  return v;
}

NAPI_MODULE_INIT(/* napi_env env, napi_value exports */) {
  napi_property_descriptor props[] = {
    {"startReader", NULL, start_reader_js, NULL, NULL, NULL, napi_enumerable, NULL},
    {"stopReader", NULL, stop_reader_js, NULL, NULL, NULL, napi_enumerable, NULL},
    {"write", NULL, write_js, NULL, NULL, NULL, napi_enumerable, NULL},
    {"writev", NULL, writev_js, NULL, NULL, NULL, napi_enumerable, NULL},
    {"socketpair", NULL, socketpair_js, NULL, NULL, NULL, napi_enumerable, NULL},
    {"recvFd", NULL, recv_fd_js, NULL, NULL, NULL, napi_enumerable, NULL},
  };
  if (napi_define_properties(env, exports, sizeof props / sizeof props[0], props) != napi_ok) return NULL;
  return exports;
}
