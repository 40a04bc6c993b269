/* Stop strings over streamed text: text is held back while it could still be the start of a
 * stop string, so a stop string split over several tokens is never shown. */
#include <stdlib.h>
#include <string.h>

#include "mlxc/lm.h"
#include "util/error.h"
#include "util/strbuf.h"

struct mlxc_lm_stop {
  char** stops;
  size_t n_stops;
  strbuf pending;     /* text received and not yet released */
  size_t released;    /* bytes of `pending` handed out by the previous call */
  bool stopped;
};

int mlxc_lm_stop_new(mlxc_lm_stop** out, const char* const* stops, size_t n_stops) {
  if (!out || (n_stops && !stops)) return util_error("mlxc_lm_stop_new: null argument");
  mlxc_lm_stop* m = calloc(1, sizeof *m);
  if (m) m->stops = calloc(n_stops ? n_stops : 1, sizeof *m->stops);
  if (!m || !m->stops) {
    free(m);
    return util_error("out of memory");
  }
  for (size_t i = 0; i < n_stops; i++) {
    if (!stops[i] || !stops[i][0]) {
      mlxc_lm_stop_free(m);
      return util_error("stop strings must not be empty");
    }
    if (!(m->stops[i] = strdup(stops[i]))) {
      mlxc_lm_stop_free(m);
      return util_error("out of memory");
    }
    m->n_stops = i + 1;
  }
  *out = m;
  return 0;
}

void mlxc_lm_stop_free(mlxc_lm_stop* m) {
  if (!m) return;
  for (size_t i = 0; i < m->n_stops; i++) free(m->stops[i]);
  free(m->stops);
  strbuf_free(&m->pending);
  free(m);
}

/* Bytes at the end of text[0..n) that are a proper prefix of some stop string. */
static size_t held_suffix(const mlxc_lm_stop* m, const char* text, size_t n) {
  size_t keep = 0;
  for (size_t s = 0; s < m->n_stops; s++) {
    size_t len = strlen(m->stops[s]);
    for (size_t k = len - 1 < n ? len - 1 : n; k > keep; k--)
      if (!memcmp(text + n - k, m->stops[s], k)) {
        keep = k;
        break;
      }
  }
  return keep;
}

int mlxc_lm_stop_push(mlxc_lm_stop* m, const char* text, size_t length, const char** emit, size_t* emit_length,
                      bool* stopped) {
  if (!m || (length && !text) || !emit || !emit_length || !stopped) return util_error("mlxc_lm_stop_push: null argument");
  *emit = "";
  *emit_length = 0;
  *stopped = m->stopped;
  if (m->stopped) return 0;
  /* Drop what the previous call released, then add the new text. */
  if (m->released) {
    memmove(m->pending.data, m->pending.data + m->released, m->pending.length - m->released);
    m->pending.length -= m->released;
    m->released = 0;
  }
  strbuf_append(&m->pending, text ? text : "", length);
  if (m->pending.failed) return util_error("out of memory");
  char* p = m->pending.data ? m->pending.data : "";
  size_t n = m->pending.length;
  size_t first = n;
  for (size_t s = 0; s < m->n_stops; s++) {
    char* hit = memmem(p, n, m->stops[s], strlen(m->stops[s]));
    if (hit && (size_t)(hit - p) < first) first = (size_t)(hit - p);
  }
  if (first < n) {
    m->stopped = *stopped = true;
    *emit = p;
    *emit_length = first;
    m->released = n;
    return 0;
  }
  size_t release = n - held_suffix(m, p, n);
  *emit = p;
  *emit_length = release;
  m->released = release;
  return 0;
}

int mlxc_lm_stop_finish(mlxc_lm_stop* m, const char** emit, size_t* emit_length) {
  if (!m || !emit || !emit_length) return util_error("mlxc_lm_stop_finish: null argument");
  *emit = m->pending.data ? m->pending.data + m->released : "";
  *emit_length = m->stopped ? 0 : m->pending.length - m->released;
  m->released = m->pending.length;
  return 0;
}
