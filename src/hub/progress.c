/* The default download progress bar: one line per file on stderr, redrawn at most ten times a
 * second, when stderr is a terminal. */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "hub/hub_internal.h"

#define BAR_WIDTH 30
#define REDRAW_SECONDS 0.1

static double now_seconds(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static void format_size(char* out, size_t cap, uint64_t bytes) {
  if (bytes >= (1ull << 30))
    snprintf(out, cap, "%.2f GB", bytes / 1e9);
  else if (bytes >= (1ull << 20))
    snprintf(out, cap, "%.1f MB", bytes / 1e6);
  else
    snprintf(out, cap, "%.1f kB", bytes / 1e3);
}

int hub_bar_progress(const char* file, uint64_t done, uint64_t total, void* user_data) {
  hub_bar* bar = user_data;
  bool finished = total && done >= total;
  double now = now_seconds();
  if (!finished && bar->line_open && now - bar->last_draw < REDRAW_SECONDS) return 0;
  bar->last_draw = now;
  char have[32], size[32];
  format_size(have, sizeof have, done);
  const char* name = strrchr(file, '/') ? strrchr(file, '/') + 1 : file;
  if (total) {
    format_size(size, sizeof size, total);
    int filled = (int)(BAR_WIDTH * (double)done / (double)total);
    if (filled > BAR_WIDTH) filled = BAR_WIDTH;
    char cells[BAR_WIDTH + 1];
    memset(cells, '#', (size_t)filled);
    memset(cells + filled, '.', (size_t)(BAR_WIDTH - filled));
    cells[BAR_WIDTH] = '\0';
    fprintf(stderr, "\r%-28.28s [%s] %3d%% %s / %s ", name, cells, (int)(100.0 * done / total), have, size);
  } else {
    fprintf(stderr, "\r%-28.28s %s ", name, have);
  }
  bar->line_open = !finished;
  if (finished) fputc('\n', stderr);
  fflush(stderr);
  return 0;
}

void hub_bar_finish(hub_bar* bar) {
  if (!bar->line_open) return;
  fputc('\n', stderr);
  bar->line_open = false;
}
