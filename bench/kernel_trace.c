/* Every GPU kernel a process runs, with its start and end on the GPU's clock, graph replays
 * included: preloaded into a program (LD_PRELOAD=libmlxc_kernel_trace.so), it records through
 * CUPTI's activity API and writes "start_ns end_ns grid_x name" lines to $MLXC_KERNEL_TRACE
 * (default kernel_trace.txt) as the records arrive and at exit. scripts/kernel_trace.py turns
 * them into each decode step's critical path: what every kernel adds after the one before
 * ended. The tracer slows the host's launches, not the kernels. */
#include <cupti.h>
#include <stdio.h>
#include <stdlib.h>

static FILE* trace_file;

static void CUPTIAPI buffer_requested(uint8_t** buffer, size_t* size, size_t* max_records) {
  *size = (size_t)16 << 20;
  *buffer = aligned_alloc(8, *size);
  *max_records = 0;
}

static void CUPTIAPI buffer_completed(CUcontext context, uint32_t stream, uint8_t* buffer, size_t size,
                                      size_t valid) {
  (void)context;
  (void)stream;
  (void)size;
  CUpti_Activity* record = NULL;
  while (buffer && cuptiActivityGetNextRecord(buffer, valid, &record) == CUPTI_SUCCESS) {
    if (record->kind != CUPTI_ACTIVITY_KIND_CONCURRENT_KERNEL || !trace_file) continue;
    const CUpti_ActivityKernel10* k = (const CUpti_ActivityKernel10*)record;
    fprintf(trace_file, "%llu %llu %d %s\n", (unsigned long long)k->start, (unsigned long long)k->end, k->gridX,
            k->name);
  }
  free(buffer);
}

__attribute__((constructor)) static void trace_start(void) {
  const char* path = getenv("MLXC_KERNEL_TRACE");
  trace_file = fopen(path && *path ? path : "kernel_trace.txt", "w");
  if (!trace_file) {
    perror("mlxc_kernel_trace");
    return;
  }
  if (cuptiActivityEnable(CUPTI_ACTIVITY_KIND_CONCURRENT_KERNEL) != CUPTI_SUCCESS ||
      cuptiActivityRegisterCallbacks(buffer_requested, buffer_completed) != CUPTI_SUCCESS) {
    fprintf(stderr, "mlxc_kernel_trace: CUPTI refused the kernel activity\n");
    return;
  }
  cuptiActivityFlushPeriod(200); /* ms: records leave while the program runs */
}

__attribute__((destructor)) static void trace_stop(void) {
  cuptiActivityFlushAll(1);
  if (trace_file) fclose(trace_file);
  trace_file = NULL;
}
