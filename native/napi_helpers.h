/* Small N-API helpers shared by the project's native helpers (header-only, static). */
#ifndef HANDLEFS_NAPI_HELPERS_H
#define HANDLEFS_NAPI_HELPERS_H

#include <stdbool.h>
#include <stdint.h>
#include <node_api.h>

/* Throws a TypeError with code ERR_INVALID_ARG_TYPE. Returns NULL for convenience. */
static inline napi_value throw_type(napi_env env, const char *msg) {
  napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", msg);
  return NULL;
}

/* Evaluates an N-API call; on failure makes sure an exception is pending and returns NULL. */
#define NAPI_CALL(env, call)                                                   \
  do {                                                                         \
    if ((call) != napi_ok) {                                                   \
      bool pending = false;                                                    \
      napi_is_exception_pending((env), &pending);                              \
      if (!pending) napi_throw_error((env), NULL, "N-API call failed: " #call); \
      return NULL;                                                             \
    }                                                                          \
  } while (0)

/* A JS number that fits an int32: 1 and *out set, else 0. */
static inline int get_int_arg(napi_env env, napi_value v, int32_t *out) {
  napi_valuetype t;
  if (napi_typeof(env, v, &t) != napi_ok || t != napi_number) return 0;
  return napi_get_value_int32(env, v, out) == napi_ok;
}

#endif
