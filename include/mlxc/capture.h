/* mlxc recording and replay of GPU work (CUDA graphs), for loops that evaluate the same graph
 * again and again, such as the decode step of a language model:
 *
 *   mlxc_capture_begin(gpu_stream);
 *   ... build the step; mlx_eval(...) ...        (recorded, nothing runs yet)
 *   mlxc_capture* step = NULL;
 *   mlxc_capture_end(gpu_stream, &step);          (instantiated, and run once)
 *   for (;;) {
 *     mlxc_array_write(input, &value, sizeof value);   (new input values, in place)
 *     mlxc_capture_replay(step);                        (the same kernels over the same memory)
 *     ... read the outputs evaluated during the recording ...
 *   }
 *   mlxc_capture_free(step);
 *
 * A replay reads the current contents of every array the recorded kernels read and overwrites
 * the arrays they wrote, so values that change from one replay to the next must live in arrays
 * (written with mlxc_array_write), never in shapes or in host values baked into the graph. The
 * recording keeps every buffer it uses alive until mlxc_capture_free.
 *
 * While recording: every node evaluated must have a GPU kernel for its case (a CPU fallback is
 * an error that voids the recording), host reads of GPU data and synchronisation are errors, and
 * one recording at a time per process. See docs/cuda.md.
 */
#ifndef MLXC_CAPTURE_H
#define MLXC_CAPTURE_H

#include <stddef.h>
#include <stdint.h>

#include "mlx/c/array.h"
#include "mlx/c/stream.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct mlxc_capture mlxc_capture;

/* Starts recording the work of `stream`'s GPU. Non-zero (with a message) for a CPU stream, a
 * build without CUDA, or when a recording is already in progress. */
int mlxc_capture_begin(mlx_stream stream);
/* Ends the recording begun on `stream`, instantiates it and runs it once, so that the arrays
 * evaluated while recording hold their values. On any failure during the recording (or here),
 * returns non-zero with a message, *out stays NULL, and the arrays evaluated while recording
 * hold undefined values. */
int mlxc_capture_end(mlx_stream stream, mlxc_capture** out);
/* While recording: at the end of the recorded work, copy src's bytes into dst from byte
 * `offset` on (both evaluated, row-contiguous and in the memory of the GPU being recorded; at
 * most 1024 bytes; dst shares its memory with no other array, as mlxc_array_write takes it).
 * Every replay makes the copies too, in the order given, at most 8 a recording, all in one
 * kernel after the recorded work: a loop's step can feed its own outputs to the next replay's
 * inputs (the chosen token, the next position) with no transfer between the replays. */
int mlxc_capture_feed(mlx_array dst, size_t offset, mlx_array src);
/* While recording: at the end of every run of the recording (the one mlxc_capture_end makes, and
 * each replay), after the feeds' copies, copy src's bytes (evaluated, row-contiguous, in the
 * memory of the GPU being recorded) into host memory, appended to the bytes of the reads before
 * it: at most 256 bytes in all and 8 reads a recording. The run itself writes them, into one of
 * MLXC_CAPTURE_READ_SLOTS slots of page-locked memory (the run number modulo the slots), so
 * that no transfer is queued between two replays and a replay queued ahead does not overwrite
 * the bytes of the run before it. */
#define MLXC_CAPTURE_READ_SLOTS 4
int mlxc_capture_read(mlx_array src);
/* Runs launched so far: 1 after mlxc_capture_end, one more for each replay. */
uint64_t mlxc_capture_runs(const mlxc_capture* capture);
/* Waits until run `run` (1 to mlxc_capture_runs) has finished and gives its reads' bytes in
 * order (*nbytes of them), valid until run + MLXC_CAPTURE_READ_SLOTS is launched. Errors: a
 * recording without reads, a run not launched yet, a run whose bytes later runs overwrote. */
int mlxc_capture_read_wait(mlxc_capture* capture, uint64_t run, const void** data, size_t* nbytes);
/* Runs the recorded work again, ordered after the work queued on its GPU. */
int mlxc_capture_replay(mlxc_capture* capture);
void mlxc_capture_free(mlxc_capture* capture);

/* Overwrites the data of an evaluated, row-contiguous array that shares its memory with no other
 * array (nbytes must be its size in bytes), in place: the host copy at once, the GPU copy ordered
 * after the work queued on its GPU. For the inputs of a recording; arrays are otherwise
 * immutable. Memory-mapped or borrowed data cannot be written. */
int mlxc_array_write(mlx_array array, const void* data, size_t nbytes);
/* Overwrites dst's data with src's (both evaluated and row-contiguous, of the same size in bytes;
 * dst as mlxc_array_write takes it). Where both live on one GPU the copy is made there, ordered
 * after the work queued on it, and the host waits for nothing: a recording's output fed back as
 * the next replay's input. Otherwise through the host. */
int mlxc_array_copy(mlx_array dst, mlx_array src);

/* Asynchronous reads, so that the host can queue the next step of a loop before the results of
 * the previous one arrive:
 *
 *   mlxc_readback_add(r, token);           (a copy queued behind the work that computes it)
 *   mlxc_capture_replay(next_step);        (queued behind the copy)
 *   mlxc_readback_wait(r, &data, &n);      (waits for the copy only: the token's bytes)
 *
 * A readback holds `capacity` bytes of host memory (page-locked when a GPU is present). add
 * appends an evaluated, row-contiguous array's bytes: a GPU array's are copied ordered after the
 * work queued on its GPU (one GPU per readback), a host array's at once. wait blocks until
 * every copy added since the last wait has landed, then gives their bytes in order (valid until
 * the next add). Errors: too many bytes, an array on a second GPU, a GPU being recorded. */
typedef struct mlxc_readback mlxc_readback;
int mlxc_readback_new(mlxc_readback** readback, size_t capacity);
int mlxc_readback_add(mlxc_readback* readback, mlx_array array);
int mlxc_readback_wait(mlxc_readback* readback, const void** data, size_t* nbytes);
/* Waits for copies still in flight, then frees. */
void mlxc_readback_free(mlxc_readback* readback);

#ifdef __cplusplus
}
#endif

#endif
