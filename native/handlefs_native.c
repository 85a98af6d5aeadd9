/*
 * handlefs native helper: the few Linux system calls Node cannot make by itself.
 *
 *   pidfdOpen(pid)            -> fd          pidfd_open(2), O_CLOEXEC implied by the kernel
 *   pidfdOpenByHandle(ino)    -> fd          a pidfd reopened from a pidfs inode number through a
 *                                            pidfs file handle (open_by_handle_at, FD_PIDFS_ROOT,
 *                                            6.17): no pid, so no pid-reuse race; ESTALE once the
 *                                            process is reaped (a zombie still opens)
 *   nsIoctl(fd, op)           -> number | bigint
 *       op: "NS_GET_USERNS" | "NS_GET_PARENT"  -> new fd (caller closes it)
 *           "NS_GET_NSTYPE"                    -> CLONE_NEW* value
 *           "NS_GET_OWNER_UID"                 -> uid (user namespaces only)
 *           "NS_GET_ID" | "NS_GET_MNTNS_ID"    -> bigint (64-bit, never-reused namespace id)
 *   watchFd(fd, callback)     -> handle      one-shot: calls callback() on the event loop the
 *                                            first time fd becomes readable, then stops
 *   unwatch(handle)           -> boolean     stops a watch that has not fired (true if it was
 *                                            still active); idempotent
 *   readProc(dir, wantIno, links) -> array   one process's /proc files in one call, no thread
 *                                            hop: [stat, pidfsIno, status, cgroup, ...readlink
 *                                            of dir/ns/<link> per link, stat again]. A file is
 *                                            its text, or its errno (a positive number) when it
 *                                            could not be read. pidfsIno: the inode of a pidfd
 *                                            of the pid (dir's last component) when wantIno,
 *                                            else 0; -errno if pidfd_open/fstat failed. When the
 *                                            first stat fails the array has that one element;
 *                                            when pidfsIno fails, those two.
 *   pidfdInfo(fd)             -> {mask, pid, ruid, euid, suid, exitStatus}
 *                                            PIDFD_GET_INFO (6.13) asking for PID, CREDS and EXIT
 *                                            (6.15): a live or zombie process answers PID|CREDS, a
 *                                            reaped one EXIT (exitStatus in wait-status form, -1
 *                                            when absent); ESRCH once reaped on older kernels
 *   pidfdSendSignal(fd, sig)  -> undefined   pidfd_send_signal(2): signals exactly that process
 *   peerCred(sock)            -> {pid, uid, gid, ruid}
 *                                            SO_PEERCRED of a connected unix socket (uid is the
 *                                            effective uid); ruid through SO_PEERPIDFD where the
 *                                            kernel has it (6.5), else equal to uid
 *
 * Failures throw an Error whose .code is the errno name ("ESRCH", "EACCES", "ENOTTY", ...),
 * with .errno (number) and .syscall set, like Node's own system errors.
 *
 * The file descriptors are owned by the JavaScript side: this file never closes an fd it
 * did not create, and a watch must be stopped (unwatch, or fired) before its fd is closed.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <limits.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <node_api.h>
#include "napi_helpers.h"
#include <uv.h>

#ifndef __NR_pidfd_open
#define __NR_pidfd_open 434 /* same number on every architecture */
#endif

/* linux/nsfs.h; older userspace headers lack the newer requests, so define them here. */
#define HFS_NSIO 0xb7
#ifndef NS_GET_USERNS
#define NS_GET_USERNS _IO(HFS_NSIO, 0x1)
#endif
#ifndef NS_GET_PARENT
#define NS_GET_PARENT _IO(HFS_NSIO, 0x2)
#endif
#ifndef NS_GET_NSTYPE
#define NS_GET_NSTYPE _IO(HFS_NSIO, 0x3)
#endif
#ifndef NS_GET_OWNER_UID
#define NS_GET_OWNER_UID _IO(HFS_NSIO, 0x4)
#endif
#ifndef NS_GET_MNTNS_ID
#define NS_GET_MNTNS_ID _IOR(HFS_NSIO, 0x5, uint64_t) /* 6.11 */
#endif
#ifndef NS_GET_ID
#define NS_GET_ID _IOR(HFS_NSIO, 0xd, uint64_t) /* 6.18 */
#endif

#ifndef __NR_pidfd_send_signal
#define __NR_pidfd_send_signal 424
#endif

/* linux/pidfd.h (6.13+); the headers here may predate it. The kernel accepts any size it knows. */
struct hfs_pidfd_info {
  uint64_t mask;
  uint64_t cgroupid;
  uint32_t pid, tgid, ppid, ruid, rgid, euid, egid, suid, sgid, fsuid, fsgid;
  int32_t exit_code;
  uint32_t coredump_mask, spare1;
  uint64_t spare2;
};
#define HFS_PIDFD_GET_INFO _IOWR(0xFF, 11, struct hfs_pidfd_info)
#define HFS_PIDFD_INFO_PID (1ULL << 0)
#define HFS_PIDFD_INFO_CREDS (1ULL << 1)
#define HFS_PIDFD_INFO_EXIT (1ULL << 3)
#ifndef SO_PEERPIDFD
#define SO_PEERPIDFD 77
#endif

/* ------------------------------------------------------------------------------------------ */
/* errors */

static const char *errno_name(int err) {
  switch (err) {
    case EPERM: return "EPERM";
    case ENOENT: return "ENOENT";
    case ESRCH: return "ESRCH";
    case EINTR: return "EINTR";
    case EIO: return "EIO";
    case EBADF: return "EBADF";
    case EAGAIN: return "EAGAIN";
    case ENOMEM: return "ENOMEM";
    case EACCES: return "EACCES";
    case EFAULT: return "EFAULT";
    case EBUSY: return "EBUSY";
    case EEXIST: return "EEXIST";
    case ENODEV: return "ENODEV";
    case ENOTDIR: return "ENOTDIR";
    case EINVAL: return "EINVAL";
    case ENFILE: return "ENFILE";
    case EMFILE: return "EMFILE";
    case ENOTTY: return "ENOTTY";
    case ENOSYS: return "ENOSYS";
    case EOPNOTSUPP: return "EOPNOTSUPP";
    case EOVERFLOW: return "EOVERFLOW";
    case ENOPROTOOPT: return "ENOPROTOOPT";
    case ENOTSOCK: return "ENOTSOCK";
    case ESTALE: return "ESTALE";
    default: return "EUNKNOWN";
  }
}

/* Throws Error(message) with .code = errno name, .errno, .syscall. Returns NULL for convenience. */
static napi_value throw_errno(napi_env env, int err, const char *syscall_name) {
  char msg[256];
  const char *name = errno_name(err);
  snprintf(msg, sizeof msg, "%s: %s (%s)", syscall_name, name, strerror(err));
  napi_value code, message, error, errno_value, syscall_value;
  if (napi_create_string_utf8(env, name, NAPI_AUTO_LENGTH, &code) != napi_ok) return NULL;
  if (napi_create_string_utf8(env, msg, NAPI_AUTO_LENGTH, &message) != napi_ok) return NULL;
  if (napi_create_error(env, code, message, &error) != napi_ok) return NULL;
  if (napi_create_int32(env, -err, &errno_value) == napi_ok)
    napi_set_named_property(env, error, "errno", errno_value);
  if (napi_create_string_utf8(env, syscall_name, NAPI_AUTO_LENGTH, &syscall_value) == napi_ok)
    napi_set_named_property(env, error, "syscall", syscall_value);
  napi_throw(env, error);
  return NULL;
}



/* ------------------------------------------------------------------------------------------ */
/* pidfdOpen(pid) */

static napi_value pidfd_open_js(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  NAPI_CALL(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  int32_t pid;
  if (argc < 1 || !get_int_arg(env, argv[0], &pid) || pid <= 0)
    return throw_type(env, "pidfdOpen(pid): pid must be a positive integer");
  long fd = syscall(__NR_pidfd_open, (pid_t)pid, 0);
  if (fd < 0) return throw_errno(env, errno, "pidfd_open");
  napi_value result;
  NAPI_CALL(env, napi_create_int32(env, (int32_t)fd, &result));
  return result;
}

/* ------------------------------------------------------------------------------------------ */
/* pidfdOpenByHandle(pidfsIno): a pidfd reopened from the process's pidfs inode number alone */

/* A pidfs file handle (6.14+): type FILEID_KERNFS (0xfe), 8 bytes: the pidfs inode number. */
#define HFS_FILEID_KERNFS 0xfe
#ifndef FD_PIDFS_ROOT
#define FD_PIDFS_ROOT -10002 /* 6.17: open_by_handle_at's mount fd for pidfs handles */
#endif

static napi_value pidfd_open_by_handle_js(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  NAPI_CALL(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  napi_valuetype t;
  int64_t ino = 0;
  if (argc < 1 || napi_typeof(env, argv[0], &t) != napi_ok || t != napi_number || napi_get_value_int64(env, argv[0], &ino) != napi_ok || ino <= 0)
    return throw_type(env, "pidfdOpenByHandle(pidfsIno): pidfsIno must be a positive integer");
  union {
    struct file_handle fh;
    char buf[sizeof(struct file_handle) + sizeof(uint64_t)];
  } h;
  uint64_t v = (uint64_t)ino;
  h.fh.handle_bytes = sizeof v;
  h.fh.handle_type = HFS_FILEID_KERNFS;
  memcpy(h.fh.f_handle, &v, sizeof v);
  /* ESTALE: no such process any more (reaped); the pidfd of a zombie still opens. */
  int fd = open_by_handle_at(FD_PIDFS_ROOT, &h.fh, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return throw_errno(env, errno, "open_by_handle_at");
  napi_value result;
  NAPI_CALL(env, napi_create_int32(env, fd, &result));
  return result;
}

/* ------------------------------------------------------------------------------------------ */
/* nsIoctl(fd, op) */

static napi_value ns_ioctl_js(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  NAPI_CALL(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  int32_t fd;
  if (argc < 2 || !get_int_arg(env, argv[0], &fd) || fd < 0)
    return throw_type(env, "nsIoctl(fd, op): fd must be a non-negative integer");
  char op[32];
  size_t len = 0;
  if (napi_get_value_string_utf8(env, argv[1], op, sizeof op, &len) != napi_ok)
    return throw_type(env, "nsIoctl(fd, op): op must be a string");

  napi_value result;
  if (strcmp(op, "NS_GET_ID") == 0 || strcmp(op, "NS_GET_MNTNS_ID") == 0) {
    uint64_t id = 0;
    unsigned long req = strcmp(op, "NS_GET_ID") == 0 ? NS_GET_ID : NS_GET_MNTNS_ID;
    if (ioctl(fd, req, &id) < 0) return throw_errno(env, errno, op);
    NAPI_CALL(env, napi_create_bigint_uint64(env, id, &result));
    return result;
  }
  if (strcmp(op, "NS_GET_OWNER_UID") == 0) {
    uid_t uid = 0;
    if (ioctl(fd, NS_GET_OWNER_UID, &uid) < 0) return throw_errno(env, errno, op);
    NAPI_CALL(env, napi_create_uint32(env, (uint32_t)uid, &result));
    return result;
  }
  unsigned long req;
  if (strcmp(op, "NS_GET_USERNS") == 0) req = NS_GET_USERNS;
  else if (strcmp(op, "NS_GET_PARENT") == 0) req = NS_GET_PARENT;
  else if (strcmp(op, "NS_GET_NSTYPE") == 0) req = NS_GET_NSTYPE;
  else return throw_type(env, "nsIoctl(fd, op): unknown op");
  int r = ioctl(fd, req);
  if (r < 0) return throw_errno(env, errno, op);
  NAPI_CALL(env, napi_create_int32(env, r, &result));
  return result;
}

/* ------------------------------------------------------------------------------------------ */
/* watchFd(fd, callback) / unwatch(handle) */

typedef struct watch {
  uv_poll_t poll;
  napi_env env;
  napi_ref callback;         /* strong reference while active */
  napi_async_context async;  /* for napi_make_callback (drains microtasks/nextTicks) */
  int active;                /* poll started and neither fired nor unwatched */
  int uv_closed;             /* uv_close completed (memory of poll no longer used by libuv) */
  int js_released;           /* the JS handle object was garbage-collected */
} watch_t;

static void maybe_free(watch_t *w) {
  if (w->uv_closed && w->js_released) free(w);
}

static void on_uv_close(uv_handle_t *h) {
  watch_t *w = (watch_t *)h->data;
  w->uv_closed = 1;
  maybe_free(w);
}

/* Stops the poll and drops the JS references. Must run on the JS thread with a live env. */
static void stop_watch(watch_t *w) {
  if (!w->active) return;
  w->active = 0;
  uv_poll_stop(&w->poll);
  uv_close((uv_handle_t *)&w->poll, on_uv_close);
}

static void release_js(watch_t *w) {
  if (w->callback) {
    napi_delete_reference(w->env, w->callback);
    w->callback = NULL;
  }
  if (w->async) {
    napi_async_destroy(w->env, w->async);
    w->async = NULL;
  }
}

static void on_poll(uv_poll_t *handle, int status, int events) {
  (void)events;
  (void)status; /* an error (e.g. EBADF) is reported as "readable" too: the caller re-checks */
  watch_t *w = (watch_t *)handle->data;
  if (!w->active) return;
  napi_env env = w->env;
  napi_ref cbref = w->callback;
  napi_async_context async = w->async;
  w->callback = NULL;
  w->async = NULL;
  stop_watch(w); /* one-shot: the fd stays readable forever after a process exits */

  napi_handle_scope scope;
  if (napi_open_handle_scope(env, &scope) != napi_ok) return;
  napi_value cb, resource, result;
  if (cbref && napi_get_reference_value(env, cbref, &cb) == napi_ok && cb != NULL &&
      napi_get_global(env, &resource) == napi_ok) {
    napi_value recv = resource;
    napi_status s = napi_make_callback(env, async, recv, cb, 0, NULL, &result);
    if (s == napi_pending_exception) {
      napi_value exc;
      if (napi_get_and_clear_last_exception(env, &exc) == napi_ok) napi_fatal_exception(env, exc);
    }
  }
  if (cbref) napi_delete_reference(env, cbref);
  if (async) napi_async_destroy(env, async);
  napi_close_handle_scope(env, scope);
}

static void finalize_handle(napi_env env, void *data, void *hint) {
  (void)env;
  (void)hint;
  watch_t *w = (watch_t *)data;
  /* A handle collected while still active keeps watching (the watch holds its callback);
     firing or unwatch ends it. Memory is freed once libuv is done with the poll too. */
  w->js_released = 1;
  maybe_free(w);
}

static napi_value watch_fd_js(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  NAPI_CALL(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  int32_t fd;
  if (argc < 2 || !get_int_arg(env, argv[0], &fd) || fd < 0)
    return throw_type(env, "watchFd(fd, callback): fd must be a non-negative integer");
  napi_valuetype t;
  NAPI_CALL(env, napi_typeof(env, argv[1], &t));
  if (t != napi_function) return throw_type(env, "watchFd(fd, callback): callback must be a function");

  uv_loop_t *loop;
  NAPI_CALL(env, napi_get_uv_event_loop(env, &loop));
  watch_t *w = (watch_t *)calloc(1, sizeof *w);
  if (!w) return throw_errno(env, ENOMEM, "watchFd");
  w->env = env;
  int r = uv_poll_init(loop, &w->poll, fd);
  if (r < 0) {
    free(w);
    return throw_errno(env, -r, "uv_poll_init");
  }
  w->poll.data = w;
  r = uv_poll_start(&w->poll, UV_READABLE, on_poll);
  if (r < 0) {
    w->js_released = 1; /* no JS handle will exist */
    uv_close((uv_handle_t *)&w->poll, on_uv_close);
    return throw_errno(env, -r, "uv_poll_start");
  }
  w->active = 1;

  napi_value name, handle;
  if (napi_create_reference(env, argv[1], 1, &w->callback) != napi_ok ||
      napi_create_string_utf8(env, "handlefs:watchFd", NAPI_AUTO_LENGTH, &name) != napi_ok ||
      napi_async_init(env, NULL, name, &w->async) != napi_ok ||
      napi_create_external(env, w, finalize_handle, NULL, &handle) != napi_ok) {
    release_js(w);
    stop_watch(w);
    w->js_released = 1;
    napi_throw_error(env, NULL, "watchFd: N-API setup failed");
    return NULL;
  }
  return handle;
}

static napi_value unwatch_js(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  NAPI_CALL(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  napi_valuetype t;
  if (argc < 1 || napi_typeof(env, argv[0], &t) != napi_ok || t != napi_external)
    return throw_type(env, "unwatch(handle): handle must come from watchFd");
  watch_t *w;
  NAPI_CALL(env, napi_get_value_external(env, argv[0], (void **)&w));
  int was_active = w->active;
  if (was_active) {
    release_js(w);
    stop_watch(w);
  }
  napi_value result;
  NAPI_CALL(env, napi_get_boolean(env, was_active != 0, &result));
  return result;
}

/* ------------------------------------------------------------------------------------------ */
/* readProc(dir, wantIno, links) */

/* Reads a whole /proc file into *buf (grown as needed, up to 1 MiB); returns its length or -errno. */
static ssize_t read_whole(const char *path, char **buf, size_t *cap) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return -errno;
  size_t len = 0;
  for (;;) {
    if (len == *cap) {
      if (*cap >= (1u << 20)) break; /* longer than any file we read: keep the first MiB */
      size_t ncap = *cap * 2;
      char *nb = realloc(*buf, ncap);
      if (nb == NULL) {
        close(fd);
        return -ENOMEM;
      }
      *buf = nb;
      *cap = ncap;
    }
    ssize_t n = read(fd, *buf + len, *cap - len);
    if (n < 0) {
      if (errno == EINTR) continue;
      int e = errno;
      close(fd);
      return -e;
    }
    if (n == 0) break;
    len += (size_t)n;
  }
  close(fd);
  return (ssize_t)len;
}

/* Sets result[i] to the text (len >= 0) or the errno (len < 0). */
static int put_text(napi_env env, napi_value result, uint32_t i, const char *text, ssize_t len) {
  napi_value v;
  if (len < 0) {
    if (napi_create_int32(env, (int32_t)-len, &v) != napi_ok) return 0;
  } else if (napi_create_string_utf8(env, text, (size_t)len, &v) != napi_ok) {
    return 0;
  }
  return napi_set_element(env, result, i, v) == napi_ok;
}

static napi_value read_proc_js(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  NAPI_CALL(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  char dir[256]; /* a /proc/PID path: short, so every path built below fits PATH_MAX */
  size_t dlen = 0;
  bool want_ino = false;
  uint32_t nlinks = 0;
  bool is_array = false;
  if (argc < 3 || napi_get_value_string_utf8(env, argv[0], dir, sizeof dir, &dlen) != napi_ok || dlen == 0 || dlen >= sizeof dir - 1 ||
      napi_get_value_bool(env, argv[1], &want_ino) != napi_ok || napi_is_array(env, argv[2], &is_array) != napi_ok || !is_array ||
      napi_get_array_length(env, argv[2], &nlinks) != napi_ok || nlinks > 32)
    return throw_type(env, "readProc(dir, wantIno, links): a /proc/PID path, a boolean and at most 32 link names");
  const char *slash = strrchr(dir, '/');
  long pid = slash == NULL ? 0 : strtol(slash + 1, NULL, 10);
  if (want_ino && pid <= 0) return throw_type(env, "readProc: the directory must end in a pid when wantIno");

  napi_value result;
  NAPI_CALL(env, napi_create_array(env, &result));
  size_t cap = 4096;
  char *buf = malloc(cap);
  if (buf == NULL) return throw_errno(env, ENOMEM, "malloc");
  char path[PATH_MAX];
  uint32_t i = 0;
  int ok = 1;

  snprintf(path, sizeof path, "%s/stat", dir);
  ssize_t n = read_whole(path, &buf, &cap);
  ok = put_text(env, result, i++, buf, n);
  if (!ok || n < 0) goto done;

  double ino = 0;
  if (want_ino) {
    long fd = syscall(__NR_pidfd_open, (pid_t)pid, 0);
    if (fd < 0) {
      ino = -errno;
    } else {
      struct stat st;
      ino = fstat((int)fd, &st) == 0 ? (double)st.st_ino : -errno;
      close((int)fd);
    }
  }
  napi_value v;
  if (napi_create_double(env, ino, &v) != napi_ok || napi_set_element(env, result, i++, v) != napi_ok) {
    ok = 0;
    goto done;
  }
  if (ino < 0) goto done;

  snprintf(path, sizeof path, "%s/status", dir);
  n = read_whole(path, &buf, &cap);
  if (!(ok = put_text(env, result, i++, buf, n))) goto done;
  snprintf(path, sizeof path, "%s/cgroup", dir);
  n = read_whole(path, &buf, &cap);
  if (!(ok = put_text(env, result, i++, buf, n))) goto done;
  for (uint32_t k = 0; k < nlinks; k++) {
    napi_value name_v;
    char name[64];
    size_t name_len = 0;
    if (napi_get_element(env, argv[2], k, &name_v) != napi_ok ||
        napi_get_value_string_utf8(env, name_v, name, sizeof name, &name_len) != napi_ok) {
      ok = 0;
      goto done;
    }
    snprintf(path, sizeof path, "%s/ns/%s", dir, name);
    ssize_t r = readlink(path, buf, cap);
    if (r < 0) r = -errno;
    if (!(ok = put_text(env, result, i++, buf, r))) goto done;
  }
  snprintf(path, sizeof path, "%s/stat", dir);
  n = read_whole(path, &buf, &cap);
  ok = put_text(env, result, i++, buf, n);

done:
  free(buf);
  if (!ok) {
    bool pending = false;
    napi_is_exception_pending(env, &pending);
    if (!pending) napi_throw_error(env, NULL, "readProc: N-API call failed");
    return NULL;
  }
  return result;
}

/* ------------------------------------------------------------------------------------------ */
/* pidfdInfo(fd) / pidfdSendSignal(fd, sig) / peerCred(sock) */

static int set_u32(napi_env env, napi_value obj, const char *name, uint32_t v) {
  napi_value x;
  if (napi_create_uint32(env, v, &x) != napi_ok) return 0;
  return napi_set_named_property(env, obj, name, x) == napi_ok;
}

static int set_i32(napi_env env, napi_value obj, const char *name, int32_t v) {
  napi_value x;
  if (napi_create_int32(env, v, &x) != napi_ok) return 0;
  return napi_set_named_property(env, obj, name, x) == napi_ok;
}

static napi_value pidfd_info_js(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  NAPI_CALL(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  int32_t fd;
  if (argc < 1 || !get_int_arg(env, argv[0], &fd) || fd < 0)
    return throw_type(env, "pidfdInfo(fd): fd must be a non-negative integer");
  struct hfs_pidfd_info pi;
  memset(&pi, 0, sizeof pi);
  pi.mask = HFS_PIDFD_INFO_PID | HFS_PIDFD_INFO_CREDS | HFS_PIDFD_INFO_EXIT;
  if (ioctl(fd, HFS_PIDFD_GET_INFO, &pi) < 0) return throw_errno(env, errno, "PIDFD_GET_INFO");
  napi_value out;
  NAPI_CALL(env, napi_create_object(env, &out));
  int has_pid = (pi.mask & HFS_PIDFD_INFO_PID) != 0, has_creds = (pi.mask & HFS_PIDFD_INFO_CREDS) != 0;
  if (!set_u32(env, out, "mask", (uint32_t)pi.mask) || !set_i32(env, out, "pid", has_pid ? (int32_t)pi.pid : -1) ||
      !set_i32(env, out, "ruid", has_creds ? (int32_t)pi.ruid : -1) ||
      !set_i32(env, out, "euid", has_creds ? (int32_t)pi.euid : -1) ||
      !set_i32(env, out, "suid", has_creds ? (int32_t)pi.suid : -1) ||
      !set_i32(env, out, "exitStatus", (pi.mask & HFS_PIDFD_INFO_EXIT) ? pi.exit_code : -1))
    return NULL;
  return out;
}

static napi_value pidfd_send_signal_js(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  NAPI_CALL(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  int32_t fd, sig;
  if (argc < 2 || !get_int_arg(env, argv[0], &fd) || fd < 0 || !get_int_arg(env, argv[1], &sig) || sig < 0 || sig > 64)
    return throw_type(env, "pidfdSendSignal(fd, sig): fd must be a descriptor and sig 0..64");
  if (syscall(__NR_pidfd_send_signal, fd, sig, NULL, 0) < 0) return throw_errno(env, errno, "pidfd_send_signal");
  napi_value undef;
  NAPI_CALL(env, napi_get_undefined(env, &undef));
  return undef;
}

static napi_value peer_cred_js(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  NAPI_CALL(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  int32_t sock;
  if (argc < 1 || !get_int_arg(env, argv[0], &sock) || sock < 0)
    return throw_type(env, "peerCred(sock): sock must be a non-negative integer");
  struct ucred cred;
  socklen_t len = sizeof cred;
  if (getsockopt(sock, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0) return throw_errno(env, errno, "SO_PEERCRED");
  uint32_t ruid = cred.uid;
  int pidfd = -1;
  len = sizeof pidfd;
  if (getsockopt(sock, SOL_SOCKET, SO_PEERPIDFD, &pidfd, &len) == 0 && pidfd >= 0) {
    struct hfs_pidfd_info pi;
    memset(&pi, 0, sizeof pi);
    pi.mask = HFS_PIDFD_INFO_CREDS;
    if (ioctl(pidfd, HFS_PIDFD_GET_INFO, &pi) == 0 && (pi.mask & HFS_PIDFD_INFO_CREDS)) ruid = pi.ruid;
    close(pidfd);
  }
  napi_value out;
  NAPI_CALL(env, napi_create_object(env, &out));
  if (!set_i32(env, out, "pid", cred.pid) || !set_u32(env, out, "uid", cred.uid) || !set_u32(env, out, "gid", cred.gid) ||
      !set_u32(env, out, "ruid", ruid))
    return NULL;
  return out;
}

/* ------------------------------------------------------------------------------------------ */

NAPI_MODULE_INIT(/* napi_env env, napi_value exports */) {
  napi_property_descriptor props[] = {
    {"pidfdOpen", NULL, pidfd_open_js, NULL, NULL, NULL, napi_enumerable, NULL},
    {"pidfdOpenByHandle", NULL, pidfd_open_by_handle_js, NULL, NULL, NULL, napi_enumerable, NULL},
    {"nsIoctl", NULL, ns_ioctl_js, NULL, NULL, NULL, napi_enumerable, NULL},
    {"watchFd", NULL, watch_fd_js, NULL, NULL, NULL, napi_enumerable, NULL},
    {"unwatch", NULL, unwatch_js, NULL, NULL, NULL, napi_enumerable, NULL},
    {"readProc", NULL, read_proc_js, NULL, NULL, NULL, napi_enumerable, NULL},
    {"pidfdInfo", NULL, pidfd_info_js, NULL, NULL, NULL, napi_enumerable, NULL},
    {"pidfdSendSignal", NULL, pidfd_send_signal_js, NULL, NULL, NULL, napi_enumerable, NULL},
    {"peerCred", NULL, peer_cred_js, NULL, NULL, NULL, napi_enumerable, NULL},
  };
  if (napi_define_properties(env, exports, sizeof props / sizeof props[0], props) != napi_ok)
    return NULL;
  return exports;
}
