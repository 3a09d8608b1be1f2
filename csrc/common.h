/* Shared by every C source: the working precision, typed prototypes, the
 * OpenMP and SIMD switches, and the workspace layout. */
#ifndef FM_COMMON_H
#define FM_COMMON_H

#include <stdint.h>

#include "real.h"
#include "kernels.h"

#ifdef _OPENMP
#include <omp.h>
#endif

/* Hot loops are compiled for several x86-64 levels and the widest one the
 * CPU supports is chosen when the library loads, so one build uses AVX2 or
 * AVX-512 where present without -march=native. OpenMP outlines parallel
 * bodies into functions that do not inherit the attribute, so FM_HOT goes
 * on the serial helpers those bodies call. */
#if defined(FM_USE_CLONES) && defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define FM_HOT __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define FM_HOT
#endif

/* GEMM blocking, in elements: K block, rows of A packed at once (a multiple
 * of every micro-kernel's MR), columns of B packed at once (a multiple of
 * every NR). */
#define FM_KC 256
#define FM_MC 96
#define FM_NC 512

/* Threads only pay above this many multiply-adds per parallel loop: waking
 * a second thread and joining it costs a few microseconds, which smaller
 * products finish in alone. */
#define FM_PARALLEL_MIN_WORK (1 << 18)

/* fn(ctx, tid, n_threads) on n_threads threads, or directly in the calling
 * thread when n_threads is 1 (no OpenMP runtime call at all). */
void fm_parallel(int n_threads, void (*fn)(void *ctx, int tid, int n_threads), void *ctx);

static inline int64_t fm_min64(int64_t a, int64_t b) { return a < b ? a : b; }

/* Workspace layout for `rows` samples and n_threads threads: 64-byte
 * aligned regions in order
 *   acts   per layer 1..L: its buffers (fm_layer_bytes)
 *   delta  2 x [rows x max(units[1..L])]  ping-pong deltas
 *   loss   [rows] doubles        per-sample losses
 *   steps  [n_params / FM_STEP_CHUNK + 1] doubles  optimizer partial sums
 *   pack   n_threads x fm_pack_elems  GEMM packing buffers                 */
typedef struct {
    int64_t acts; /* byte offset of layer 1's activations; layer l follows l-1 */
    int64_t delta0, delta1, loss, steps, pack, total;
} fm_layout;

fm_layout fm_workspace_layout(const fm_net *net, int64_t rows, int64_t elem_bytes,
                              int n_threads);
/* elements of GEMM packing space one thread needs (the same for both precisions) */
int64_t fm_pack_elems(void);
int64_t fm_max_width(const fm_net *net);
int fm_is_canonical(int32_t loss, int32_t out_activation);
/* 1 for the activations whose derivative needs the pre-activation z. */
int fm_needs_preactivation(int32_t activation);
/* 1 when hidden layer `layer` (1 .. n_layers - 1) has a dropout rate. */
int fm_dropout(const fm_net *net, int64_t layer);
/* bytes rounded up to a 64-byte boundary */
int64_t fm_buffer_bytes(int64_t bytes);
/* Workspace bytes of layer `layer` (1 .. n_layers) for `rows` samples: its
 * outputs, and its pre-activations and dropout masks when it keeps them
 * (see model.c's layer_at); -1 beyond int64. */
int64_t fm_layer_bytes(const fm_net *net, int64_t rows, int64_t layer, int64_t elem_bytes);

#endif
