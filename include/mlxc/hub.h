/* Hugging Face hub: resolve a model id to a local folder, downloading into the standard cache.
 *
 *   char* dir;
 *   mlxc_hub_params params = mlxc_hub_default_params();   // endpoint, cache, token from the env
 *   if (mlxc_hub_resolve(&dir, "Qwen/Qwen3-0.6B@main", &params)) { ... mlxc_last_error() ... }
 *   mlxc_lm_load(&model, dir, stream);
 *   free(dir);
 *
 * The cache is huggingface_hub's: {cache}/models--{org}--{name}/blobs/{etag} holds each file once,
 * snapshots/{commit}/{file} are relative symlinks to ../../blobs/{etag}, refs/{revision} holds the
 * commit a branch or tag pointed to at the last download. Folders written by the Python library
 * are read as they are, and the other way round. */
#ifndef MLXC_HUB_H
#define MLXC_HUB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Called as a file downloads: bytes of `file` on disk so far and its size (0 when unknown).
 * Return non-zero to cancel the resolve (the partial file is kept and resumed next time). */
typedef int (*mlxc_hub_progress_callback)(const char* file, uint64_t done, uint64_t total,
                                          void* user_data);

typedef struct {
  const char* endpoint;   /* NULL: $HF_ENDPOINT, else https://huggingface.co */
  const char* cache_dir;  /* NULL: $HF_HUB_CACHE, else $HF_HOME/hub, else ~/.cache/huggingface/hub */
  const char* token;      /* NULL: $HF_TOKEN, else the file $HF_TOKEN_PATH or $HF_HOME/token;
                             "" sends none */
  const char* revision;   /* branch, tag or commit (default "main"); "org/name@rev" overrides it */
  bool offline;           /* no network, the cache only (also when $HF_HUB_OFFLINE=1) */
  bool include_gguf;      /* with the default patterns, also download *.gguf */
  /* Files to download, fnmatch patterns ('*' also matches '/'); NULL: config.json, *.safetensors,
   * model.safetensors.index.json, tokenizer.json, tokenizer_config.json, generation_config.json,
   * chat_template.jinja, special_tokens_map.json. */
  const char* const* allow_patterns;
  size_t n_allow_patterns;
  /* NULL: a progress bar on stderr when stderr is a terminal (nothing otherwise). */
  mlxc_hub_progress_callback on_progress;
  void* user_data;
  bool quiet;             /* no default progress bar and no warnings on stderr */
} mlxc_hub_params;

mlxc_hub_params mlxc_hub_default_params(void);

/* Sets *local_dir (malloc'ed, the caller frees) to a folder holding the model:
 * - model_id_or_path itself when it names an existing file or folder;
 * - otherwise it is read as "org/name[@revision]" (or "name[@revision]"): online, the file list of
 *   that revision is fetched, the files matching the allow-patterns that are not yet in the cache
 *   are downloaded (partial files resumed with HTTP Range), and *local_dir is the snapshot folder;
 *   offline, refs/{revision} leads to the cached snapshot, or the call fails saying it is not
 *   cached. When the hub cannot be reached, a snapshot already cached for the revision is used.
 * params may be NULL (defaults). On failure *local_dir is NULL and the snapshot holds only
 * complete files; refs/{revision} is written last, once every file is in place. */
int mlxc_hub_resolve(char** local_dir, const char* model_id_or_path, const mlxc_hub_params* params);

#ifdef __cplusplus
}
#endif

#endif
