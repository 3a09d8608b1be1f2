/* Shared by every C source: the working precision, typed prototypes,
 * threads, GEMM blocking and the workspace layout. */
#ifndef FM_COMMON_H
#define FM_COMMON_H

#include <stdint.h>

#include "compat.h"
#include "real.h"
#include "kernels.h"

/* GEMM blocking, in elements: K block, rows of A packed (or, read in place,
 * pointed to) at once (a multiple of every micro-kernel's MR), columns of B
 * packed at once (a multiple of every NR). */
#define FM_KC 256
#define FM_MC 96
#define FM_NC 512

/* Threads only pay above this many multiply-adds per parallel loop: handing
 * work to a second thread and waiting for it costs about a microsecond,
 * which smaller products finish in alone. */
#define FM_PARALLEL_MIN_WORK (1 << 18)
/* Packed products (gemm.c) take threads from half that. In a pass on
 * threads (training or prediction) their operands were written by the
 * threads' shares of the products before them, which one thread alone
 * fetches from the other cores' caches, while threads that split the
 * product read much of their share where they wrote it. W2's output layer
 * (128 rows, 128 units to 10 classes: 163,840 multiply-adds a product),
 * timed product by product in a fit on two cores of an AMD EPYC: its three
 * products took 85-97 us a batch on one thread and 60-62 on two in
 * float32, 161 and 99 in float64. The gain is in where the data lie: the
 * same products called alone on data one thread wrote gain less, and the
 * error carried back loses (float64: 40 us on one thread, 57 on two). */
#define FM_GEMM_MIN_WORK (FM_PARALLEL_MIN_WORK / 2)
/* When deciding on threads, an element streamed from memory (a weight read
 * for few rows, a sparse row's outputs, a value checked for NaN) counts as
 * this many multiply-adds; products of fewer than FM_PACKED_MIN_ROWS rows
 * are weighed that way. */
#define FM_STREAM_COST 8
#define FM_PACKED_MIN_ROWS 16

/* ---- threads (threads.c) ----
 * An entry point runs inside a scope: the first parallel loop in it borrows
 * a team of up to max_threads threads from the pool, kept until the scope
 * ends. fm_parallel_for(n_threads, n_tasks, fn, ctx) runs fn(ctx, task, tid)
 * for every task in [0, n_tasks) exactly once, on up to n_threads members
 * of the team (the caller among them), tid < n_threads being the member's
 * index (for per-thread scratch); without a scope it borrows a team for the
 * one loop. Inside a task of a loop that runs on threads, or with one
 * thread, the tasks run in order on the calling thread, with its tid: a task
 * must not run a loop whose tasks use the same per-thread scratch as itself.
 * (The tasks of a loop that runs in order are not inside a task: a loop they
 * run may take threads.) */
typedef struct fm_team fm_team;
typedef struct fm_scope {
    int max_threads;
    fm_team *team;
} fm_scope;

void fm_scope_begin(fm_scope *s, int max_threads);
void fm_scope_end(fm_scope *s);
void fm_parallel_for(int n_threads, int64_t n_tasks,
                     void (*fn)(void *ctx, int64_t task, int tid), void *ctx);
/* The thread count for the next piece of work (max when t is NULL), and
 * how long a piece of `rows` rows took on `threads` threads. Of the loops
 * it ran on a team, the calling thread's even split was `fair` tasks (the
 * tasks over the members, loop by loop), and it ran `own` tasks. */
int fm_tuner_pick(fm_tuner *t, int max);
void fm_tuner_record(fm_tuner *t, int threads, int64_t ns, int64_t rows, double fair,
                     int64_t own);
/* The same, measured: a mark where the piece begins, then its end (both do
 * nothing when t is NULL). */
typedef struct {
    int64_t ns, own;
    double fair;
} fm_tuner_mark;
fm_tuner_mark fm_tuner_begin(const fm_tuner *t);
void fm_tuner_end(fm_tuner *t, int threads, fm_tuner_mark began, int64_t rows);

static inline int64_t fm_min64(int64_t a, int64_t b) { return a < b ? a : b; }

/* The first cache-line boundary at or after p. Callers' workspaces (numpy's
 * arrays among them) may start anywhere, and the layout's regions are
 * aligned from there: unaligned, a row of activations that two threads
 * split by columns (at a multiple of the micro-kernel's NR, a line wide with
 * AVX2 and AVX-512) would share a line at the split. fm_workspace_bytes
 * counts the FM_LINE - 1 bytes this may skip. */
static inline void *fm_line_start(void *p)
{
    return (void *)(((uintptr_t)p + (FM_LINE - 1)) & ~(uintptr_t)(FM_LINE - 1));
}

/* Small networks pass rows through in blocks of at most FM_BLOCK_ROWS rows,
 * each block all the way through the network on one thread, its gradient
 * summed apart and the blocks' sums added in block order: threads then share
 * whole passes, which small layers repay, where a share of each product
 * would not. The blocks are cut from the rows alone (fm_block_rows), so
 * results do not depend on the thread count. */
#define FM_BLOCK_ROWS 32
#define FM_BLOCK_MAX_PARAMS 65536
#define FM_BLOCK_MAX_ROWS 1024
/* FM_BLOCK_ROWS when passes of up to `rows` rows through net go in blocks,
 * else 0. */
int64_t fm_block_rows(const fm_net *net, int64_t rows);

/* Workspace layout for `rows` samples and n_threads threads: 64-byte
 * aligned regions from fm_line_start(work), in order
 *   blocks areas, each for area_rows rows (rows, or FM_BLOCK_ROWS in blocks):
 *       acts   per layer 1..L: its buffers (fm_layer_bytes)
 *       delta  2 x [area_rows x max(units[1..L])]  ping-pong deltas
 *       loss   [area_rows] doubles        per-sample losses
 *   partials (blocks - 1) x [n_params]   the gradient sums of blocks 1..
 *   steps  [n_params / FM_STEP_CHUNK + 1] doubles  optimizer partial sums
 *   pack   fm_pack_total_elems(n_threads)  GEMM packing buffers
 * The offsets of acts, delta0, delta1 and loss are the first area's; area
 * b's are block_bytes x b further. */
typedef struct {
    int64_t acts; /* byte offset of layer 1's activations; layer l follows l-1 */
    int64_t delta0, delta1, loss, steps, pack, total;
    int64_t area_rows, blocks, block_bytes, partials;
} fm_layout;

fm_layout fm_workspace_layout(const fm_net *net, int64_t rows, int64_t elem_bytes,
                              int n_threads);
/* elements of GEMM packing space one thread needs (the same for both precisions) */
int64_t fm_pack_elems(void);
/* Elements of an A operand that the threads of a product split by columns
 * pack once, together (see gemm.c): after n_threads x fm_pack_elems when
 * n_threads > 1. */
#define FM_SHARED_A_ELEMS ((int64_t)1 << 17)
/* elements of GEMM packing space for n_threads: each thread's and the shared */
int64_t fm_pack_total_elems(int n_threads);
int64_t fm_max_width(const fm_net *net);
int fm_is_canonical(int32_t loss, int32_t out_activation);
/* 1 for the activations whose derivative needs the pre-activation z. */
int fm_needs_preactivation(int32_t activation);
/* 1 when hidden layer `layer` (1 .. n_layers - 1) has a dropout rate. */
int fm_dropout(const fm_net *net, int64_t layer);
/* 0 when no loop of a pass of `rows` rows through net can use a second
 * thread (every product, and the optimizer's step, below the sizes where
 * the kernels start one; see the kernels' thread counts): a tuner then has
 * nothing to time. */
int fm_may_use_threads(const fm_net *net, int64_t rows);
/* bytes rounded up to a 64-byte boundary */
int64_t fm_buffer_bytes(int64_t bytes);
/* Workspace bytes of layer `layer` (1 .. n_layers) for `rows` samples: its
 * outputs, and its pre-activations and dropout masks when it keeps them
 * (see model.c's layer_at); -1 beyond int64. */
int64_t fm_layer_bytes(const fm_net *net, int64_t rows, int64_t layer, int64_t elem_bytes);

#endif
