/* fastmlp: multilayer perceptrons trained by backpropagation, in C.
 *
 * This header is the whole C API. The Python package drives it through
 * src/fastmlp/_fastmlp_engine.pyx (declared in _fastmlp.pxd); nothing here
 * knows about Python.
 *
 * Conventions
 *   - Matrices are row-major and contiguous. A batch of n samples flowing
 *     through layer l is an n x units[l] matrix.
 *   - Weights follow scikit-learn's orientation: W_l is units[l] x units[l+1]
 *     (fan_in x fan_out), so a layer computes Z = A W + b.
 *   - All parameters live in one flat buffer: every W_l in layer order, then
 *     every b_l in layer order (scikit-learn's packing for L-BFGS). Gradients
 *     and optimizer state use the same layout.
 *   - Functions take `dtype` and untyped pointers; every array an entry point
 *     receives is of that dtype unless its type says otherwise.
 *   - Argument order: outputs, inputs, weights, sizes, n_threads.
 *   - Results never depend on n_threads: every output element is computed by
 *     one thread in a fixed order and reductions over threads are serial.
 *     Work is cut into tasks of fixed extent that threads claim one at a
 *     time, so the same elements are computed the same way whatever thread
 *     runs them, and the engine may change its thread count at any time.
 *   - Nothing here allocates. Workspaces are passed in, sized by
 *     fm_workspace_bytes.
 */
#ifndef FASTMLP_H
#define FASTMLP_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum {
    FM_OK = 0,
    FM_ERR_ARGUMENT = 1,    /* a description (fm_net, sizes, enums) is invalid */
    FM_ERR_INTERRUPTED = 2, /* the interrupt flag was seen between pieces of work */
    FM_ERR_NONFINITE = 3,   /* fm_predict with check_finite met a NaN or infinity */
} fm_status;

typedef enum { FM_FLOAT32 = 0, FM_FLOAT64 = 1 } fm_dtype;

/* Activations, with the derivative written in terms of the output a = f(z)
 * (of z itself for GELU and SiLU, whose output does not determine it). */
typedef enum {
    FM_IDENTITY = 0,   /* a = z                          f' = 1               */
    FM_LOGISTIC = 1,   /* a = 1 / (1 + exp(-z))          f' = a (1 - a)       */
    FM_TANH = 2,       /* a = tanh(z)                    f' = 1 - a^2         */
    FM_RELU = 3,       /* a = max(z, 0)                  f' = 1[a != 0]       */
    FM_EXP = 4,        /* a = exp(z)                     f' = a               */
    FM_SOFTMAX = 5,    /* a_k = exp(z_k) / sum_j exp(z_j), row-wise; output layer only */
    FM_LEAKY_RELU = 6, /* a = z > 0 ? z : 0.01 z         f' = a > 0 ? 1 : 0.01 */
    FM_ELU = 7,        /* a = z > 0 ? z : exp(z) - 1     f' = a > 0 ? 1 : a + 1 */
    FM_GELU = 8,       /* a = z Phi(z)                   f' = Phi(z) + z phi(z) */
    FM_SOFTPLUS = 9,   /* a = log(1 + exp(z)) (z if z > 20)  f' = 1 - exp(-a) */
    FM_SILU = 10,      /* a = z / (1 + exp(-z))          f' = s (1 + z (1 - s)), s = 1/(1+e^-z) */
    FM_N_ACTIVATIONS
} fm_activation;

#define FM_LEAKY_SLOPE 0.01

/* Per-sample losses l(y, p) over K outputs; batch loss = sum_i sw_i l_i / sum_i sw_i. */
typedef enum {
    FM_SQUARED_ERROR = 0, /* l = 1/(2K) sum_k (y_k - p_k)^2                              */
    FM_LOG_LOSS = 1,      /* l = -sum_k y_k log p_k,  p clipped to [eps, 1 - eps]        */
    FM_BINARY_LOG_LOSS = 2, /* l = -sum_k y_k log p_k + (1 - y_k) log(1 - p_k), clipped  */
    FM_POISSON = 3,       /* l = sum_k y_k log(y_k / p_k) - y_k + p_k  (half deviance)   */
    FM_N_LOSSES
} fm_loss;

typedef enum { FM_SGD = 0, FM_ADAM = 1, FM_ADAMW = 2, FM_RPROP = 3 } fm_solver;

/* The network: n_layers weight layers between n_layers + 1 widths.
 * activation[l] is applied to the output of layer l; the last one is the
 * output activation. During training, hidden layer l's outputs are then
 * multiplied by a mask of 0 (with probability dropout[l]) or
 * 1 / (1 - dropout[l]) (inverted dropout), drawn from a counter-based hash
 * of (dropout_seed, training step, layer, row, unit): the same for any
 * thread count. */
typedef struct {
    int64_t n_layers;
    const int64_t *units;      /* [n_layers + 1]: units[0] inputs, units[n_layers] outputs */
    const int32_t *activation; /* [n_layers] fm_activation */
    int32_t loss;              /* fm_loss */
    double alpha;              /* L2 strength: adds 0.5 alpha sum ||W_l||^2 / sum(sw) */
    const double *dropout;     /* [n_layers] rates in [0, 1), the last 0; NULL for none */
    uint64_t dropout_seed;
} fm_net;

/* Training or prediction data. X is dense (x) or CSR (indptr, indices,
 * values); y and sample_weight are only read when training. */
typedef struct {
    int64_t n_samples;
    const void *x;             /* [n_samples x units[0]] or NULL when CSR */
    const int64_t *indptr;     /* [n_samples + 1] CSR row pointers */
    const int64_t *indices;    /* [nnz] CSR column indices, each < units[0] */
    const void *values;        /* [nnz] CSR values */
    const void *y;             /* [n_samples x units[n_layers]] targets */
    const void *sample_weight; /* [n_samples] or NULL for all ones */
} fm_data;

/* Optimizer settings and the state the solver carries between calls.
 * state layout: SGD velocity [n_params]; Adam and AdamW m then v
 * [2 n_params]; iRprop- previous gradient then step sizes [2 n_params]
 * (the step sizes start at learning_rate). */
typedef struct {
    int32_t solver;       /* fm_solver */
    double learning_rate; /* SGD: the current rate; Adam, AdamW: the base rate */
    double momentum;      /* SGD */
    int32_t nesterov;     /* SGD */
    double beta_1, beta_2, epsilon; /* Adam, AdamW */
    int64_t t;            /* Adam and AdamW steps taken so far (IN/OUT) */
    double weight_decay;  /* AdamW: w -= learning_rate weight_decay w on weights */
    double clip_norm;     /* > 0: scale each step's gradient to at most this L2 norm */
} fm_optimizer;

/* Most threads one call may use. */
#define FM_MAX_THREADS 256

/* The alignment in bytes the engine gives its buffers, and the one callers'
 * optimizer state should start on: 64, a cache line on x86-64 and most
 * aarch64 cores. */
#define FM_LINE 64

/* How many threads a call runs, chosen by timing (see threads.c). Entry
 * points given one use up to n_threads threads and change the count as they
 * go, keeping whichever is faster (results never depend on it); the state
 * carries over between calls. Zero it before its first call. */
typedef struct {
    int32_t max;          /* the n_threads it was last used with */
    int32_t threads;      /* OUT: the count in use */
    int32_t trial;        /* the count it is compared with, 0 outside trials */
    int32_t on_trial;     /* the block under way runs `trial` threads */
    int32_t rounds;       /* of the trial, done */
    int32_t up;           /* the next trial goes up (1) or down (0) */
    int32_t last;         /* the count of the last piece of work */
    int32_t kept_over_fewer; /* the last trial kept `threads` over fewer */
    int64_t piece_ns;     /* how long the last piece of work took */
    int64_t interval_ns;  /* work between trials */
    int64_t left_ns;      /* of the stretch or block under way */
    int64_t own;          /* of the stretch: the tasks the caller ran, */
    double fair;          /* and its even split of its loops' tasks */
    double base_ns, base_rows;   /* the trial's blocks at `threads` */
    double trial_ns, trial_rows; /* and at `trial` */
} fm_tuner;

/* ---- layout ------------------------------------------------------------ */

/* FM_OK when net is a valid description (widths >= 1, known activations and
 * loss, softmax last, a parameter count far from overflowing int64), else
 * FM_ERR_ARGUMENT. The layout functions below expect a valid net. */
fm_status fm_check_net(const fm_net *net);
/* Total parameters: sum_l units[l] units[l+1] + units[l+1]. */
int64_t fm_n_params(const fm_net *net);
/* Offset of W_l (and of b_l) in the flat parameter buffer. */
int64_t fm_weight_offset(const fm_net *net, int64_t layer);
int64_t fm_bias_offset(const fm_net *net, int64_t layer);
/* Bytes of workspace for passing `rows` samples at a time through net on
 * n_threads threads, from any start address (the engine aligns its regions
 * to cache lines itself); -1 for an invalid net or a size beyond int64. */
int64_t fm_workspace_bytes(const fm_net *net, int64_t rows, fm_dtype dtype, int n_threads);
/* Bytes of GEMM packing space the dense kernels need on n_threads threads
 * (-1 beyond int64). */
int64_t fm_pack_bytes(fm_dtype dtype, int n_threads);

/* ---- whole-model entry points -------------------------------------------- */

/* numpy's MT19937 state, as RandomState.get_state() gives it. */
typedef struct {
    uint32_t key[624];
    int32_t pos;
} fm_mt19937;

/* Shuffle x [n] in place exactly as numpy's RandomState.shuffle(x) does,
 * advancing rng the same way. n must be below 2^32. */
fm_status fm_shuffle(fm_mt19937 *rng, int64_t *x, int64_t n);

typedef enum { FM_CONSTANT = 0, FM_INVSCALING = 1, FM_ADAPTIVE = 2 } fm_schedule;

/* What the last epoch of a run decided. */
typedef enum {
    FM_EVENT_NONE = 0,
    FM_EVENT_STOP = 1,               /* no improvement for too long: stop */
    FM_EVENT_STOP_LR_TOO_SMALL = 2,  /* adaptive SGD rate already at 1e-6: stop */
    FM_EVENT_LR_REDUCED = 3,         /* adaptive SGD rate divided by 5 */
    FM_EVENT_DIVERGED = 4,           /* the epoch's loss or weights were not finite */
} fm_event;

/* The bookkeeping between epochs (scikit-learn's rules). After each epoch:
 *   loss = loss_sum / n_rows;  t += n_rows
 *   watching the loss: no_improvement = loss > best_loss - tol ? +1 : 0,
 *                      best_loss = min(best_loss, loss)
 *   SGD invscaling: learning_rate = learning_rate_init / (t + 1)^power_t
 *   no_improvement > n_iter_no_change: adaptive SGD divides the rate by 5
 *   (resetting the count) unless it is <= 1e-6; otherwise training stops. */
typedef struct {
    int64_t max_epochs;       /* IN: epochs this call may run */
    int32_t shuffle;          /* IN: shuffle `order` with rng before each epoch */
    int32_t watch_loss;       /* IN: apply the no-improvement rule to the loss */
    int32_t schedule;         /* IN: fm_schedule of SGD */
    double tol;               /* IN */
    double n_iter_no_change;  /* IN (may be infinite) */
    double learning_rate_init, power_t; /* IN: invscaling */
    int64_t t;                /* INOUT: samples seen */
    double best_loss;         /* INOUT */
    int64_t no_improvement;   /* INOUT */
    int64_t step;             /* INOUT: batches trained so far (dropout masks) */
    int64_t epochs;           /* OUT: epochs completed by this call */
    int32_t event;            /* OUT: fm_event of the last completed epoch */
    int32_t finish_epoch;     /* IN: an interrupt ends the call once the epoch
                                 under way is complete, instead of at once */
} fm_run;

/* Mini-batch training for up to run->max_epochs epochs over the rows
 * order [n_rows] of data. Each epoch (shuffled first when run->shuffle)
 * runs, for each batch of batch_size rows in order, forward, loss, backward
 * and one optimizer step on params; a batch passes through the network at
 * most `chunk` rows at a time, its gradient summed over the pieces, so
 * work is fm_workspace_bytes(net, min(chunk, batch_size), n_threads).
 * grads [n_params] is scratch; state holds the optimizer's memory: SGD
 * velocity [n_params]; Adam and AdamW m then v [2 n_params]; iRprop- the
 * previous gradient then the step sizes [2 n_params]. loss_curve (OUT)
 * [max_epochs] gets each epoch's loss: the mean over batches of batch loss
 * (L2 term included) weighted by batch length. rng may be NULL when not
 * shuffling. interrupt may be NULL; a nonzero value seen between two
 * pieces of work ends the call with FM_ERR_INTERRUPTED, run->epochs
 * counting the epochs completed before, and params, state and opt->t back
 * at the end of the last completed epoch: snapshot [n_params + state size]
 * holds them meanwhile (required when interrupt is given). With
 * run->finish_epoch, the epoch under way completes instead and the call
 * returns after it, FM_OK. An epoch whose
 * loss or resulting weights are not finite is not counted: training stops
 * with FM_EVENT_DIVERGED, params and state restored from snapshot (when
 * given) to the last finite epoch. n_threads: threads (at most; tuner, when
 * given, picks the count per batch). */
fm_status fm_train(fm_dtype dtype, void *params, void *grads, void *state, void *snapshot,
                   void *work, double *loss_curve, int64_t *order, int64_t n_rows,
                   fm_run *run, fm_mt19937 *rng, const fm_data *data, const fm_net *net,
                   fm_optimizer *opt, int64_t batch_size, int64_t chunk, int n_threads,
                   fm_tuner *tuner, const volatile int *interrupt);

/* Loss and gradient over the whole data set (the L-BFGS objective):
 * loss (OUT) = sum_i sw_i l_i / S + 0.5 alpha sum ||W||^2 / S, S = sum_i sw_i;
 * grads (OUT) [n_params] = d loss / d params, or the loss alone when grads
 * is NULL. No dropout. Rows go through the network `chunk` at a time;
 * work: fm_workspace_bytes(net, chunk, n_threads). Data without rows is
 * refused (FM_ERR_ARGUMENT). interrupt (may be NULL): looked at before each
 * chunk; nonzero ends the call with FM_ERR_INTERRUPTED (loss and grads then
 * hold nothing to use). */
fm_status fm_loss_grad(fm_dtype dtype, void *grads, double *loss, void *work,
                       const fm_data *data, const void *params, const fm_net *net,
                       int64_t chunk, int n_threads, fm_tuner *tuner,
                       const volatile int *interrupt);
/* fm_loss_grad in two halves, so that pieces of a data set (on several
 * machines) can be summed in a fixed order and finished once. The raw sums
 * over the rows `rows` [n_rows] of data (every row, when rows is NULL):
 * wloss (OUT) = sum_i sw_i l_i, wsum (OUT) = S = sum_i sw_i, grads (OUT)
 * [n_params] = d wloss / d params (no L2 term), all zero without rows;
 * grads may be NULL. chunk, work and interrupt as in fm_loss_grad. */
fm_status fm_loss_grad_sums(fm_dtype dtype, void *grads, double *wloss, double *wsum,
                            void *work, const fm_data *data, const int64_t *rows,
                            int64_t n_rows, const void *params, const fm_net *net,
                            int64_t chunk, int n_threads, fm_tuner *tuner,
                            const volatile int *interrupt);
/* Finish raw sums as fm_loss_grad does: grads (INOUT) [n_params] = (grads +
 * alpha W) / S on the weights, grads / S on the biases (none when NULL);
 * loss (OUT) = wloss / S + 0.5 alpha sum ||W||^2 / S, S = wsum. */
fm_status fm_loss_grad_finish(fm_dtype dtype, void *grads, double *loss, double wloss,
                              double wsum, const void *params, const fm_net *net);

/* Network outputs for the rows `rows` [n_rows] of data (every row, n_rows =
 * data->n_samples, when rows is NULL): out [n_rows x units[n_layers]].
 * Rows go through the network `chunk` at a time; work:
 * fm_workspace_bytes(net, chunk, n_threads). With check_finite, each chunk
 * of dense X is checked just before it is used, and a NaN or infinity ends
 * the call with FM_ERR_NONFINITE (out then holds nothing to use). interrupt
 * (may be NULL): looked at before each chunk; nonzero ends the call with
 * FM_ERR_INTERRUPTED (out then holds the chunks before it). */
fm_status fm_predict(fm_dtype dtype, void *out, void *work, const fm_data *data,
                     const int64_t *rows, int64_t n_rows, const void *params,
                     const fm_net *net, int64_t chunk, int n_threads, fm_tuner *tuner,
                     int check_finite, const volatile int *interrupt);

/* ---- kernels (each also exposed for tests) -------------------------------- */

/* Y [n x n_out] = f(X [n x n_in] W [n_in x n_out] + b); row i of X is X row
 * rows[i] (i when rows is NULL). pack: fm_pack_bytes(dtype, n_threads)
 *                                                                  (writes Y) */
void fm_dense_forward(fm_dtype dtype, void *Y, const void *X, const int64_t *rows,
                      const void *W, const void *b, int32_t activation, int64_t n,
                      int64_t n_in, int64_t n_out, void *pack, int n_threads);
/* Y [n x n_out] = f(X W + b) with X in CSR; row i of the batch is CSR row
 * rows[i] (i when rows is NULL)                                    (writes Y) */
void fm_csr_dense_forward(fm_dtype dtype, void *Y, const int64_t *indptr,
                          const int64_t *indices, const void *values,
                          const int64_t *rows, const void *W, const void *b,
                          int32_t activation, int64_t n, int64_t n_in, int64_t n_out,
                          int n_threads);
/* dX [n x n_in] = (dY [n x n_out] W^T) * f'(A), A [n x n_in] the outputs of
 * an elementwise activation f whose derivative follows from them (not
 * softmax, GELU or SiLU); no derivative when A is NULL (writes dX) */
void fm_dense_backward_data(fm_dtype dtype, void *dX, const void *dY, const void *W,
                            const void *A, int32_t activation, int64_t n, int64_t n_in,
                            int64_t n_out, void *pack, int n_threads);
/* dW [n_in x n_out] += X^T dY;  db [n_out] += sum_i dY_i; rows as in
 * fm_dense_forward                                          (adds into both) */
void fm_dense_backward_params(fm_dtype dtype, void *dW, void *db, const void *X,
                              const int64_t *rows, const void *dY, int64_t n,
                              int64_t n_in, int64_t n_out, void *pack, int n_threads);
/* the same with X in CSR (rows as in fm_csr_dense_forward)      (adds into both) */
void fm_csr_backward_params(fm_dtype dtype, void *dW, void *db, const int64_t *indptr,
                            const int64_t *indices, const void *values,
                            const int64_t *rows, const void *dY, int64_t n,
                            int64_t n_in, int64_t n_out, int n_threads);
/* The direct loops the three dense products take when they are small, kept
 * as the reference of the packed GEMM: Y = X W + b, dX = dY W^T, and
 * dW += X^T dY with db += sum_i dY_i. */
void fm_dense_forward_naive(fm_dtype dtype, void *Y, const void *X, const int64_t *rows,
                            const void *W, const void *b, int64_t n, int64_t n_in,
                            int64_t n_out);
void fm_dense_backward_data_naive(fm_dtype dtype, void *dX, const void *dY, const void *W,
                                  int64_t n, int64_t n_in, int64_t n_out);
void fm_dense_backward_params_naive(fm_dtype dtype, void *dW, void *db, const void *X,
                                    const int64_t *rows, const void *dY, int64_t n,
                                    int64_t n_in, int64_t n_out);
/* A [n x m] = f(A), in place                                       (writes A) */
void fm_activation_forward(fm_dtype dtype, void *A, int64_t n, int64_t m,
                           int32_t activation);
/* dZ [n x m] = dA * f'(.) given the outputs A [n x m] and, for GELU and
 * SiLU, the inputs Z [n x m] (else Z may be NULL); for softmax
 * dZ_k = a_k (dA_k - sum_j dA_j a_j)                               (updates dZ) */
void fm_activation_backward(fm_dtype dtype, void *dZ, const void *A, const void *Z,
                            int64_t n, int64_t m, int32_t activation);
/* l [n] (double) = per-sample loss of predictions P [n x K] against the
 * targets Y, row i of the batch being Y row rows[i] (i when NULL) (writes l) */
void fm_loss_forward(fm_dtype dtype, double *l, const void *P, const void *Y,
                     const int64_t *rows, int64_t n, int64_t K, int32_t loss);
/* dZ [n x K] = (P - Y) * sw: the output delta of every loss through its
 * canonical link (identity, logistic, softmax, exp); sw may be NULL (writes dZ) */
void fm_loss_backward(fm_dtype dtype, void *dZ, const void *P, const void *Y,
                      const void *sample_weight, const int64_t *rows, int64_t n,
                      int64_t K);
/* Elements per chunk of the optimizer step: the threads share out whole
 * chunks, and the step's sums run per chunk and are added in chunk order,
 * so they do not depend on the thread count. */
#define FM_STEP_CHUNK 4096

/* One optimizer step (opt->solver) on the gradient g = (grads + alpha p) / S
 * on the weights [0, n_weights) and grads / S on the rest (the biases),
 * scaled to L2 norm opt->clip_norm when larger and opt->clip_norm > 0.
 *   SGD:   v = momentum v - lr g;  p += nesterov ? momentum v - lr g : v
 *   Adam:  m = b1 m + (1 - b1) g;  v = b2 v + (1 - b2) g^2;  t += 1;
 *          p -= lr_t m / (sqrt(v) + eps), lr_t = lr sqrt(1 - b2^t) / (1 - b1^t)
 *   AdamW: Adam after w *= 1 - lr weight_decay on the weights
 *   iRprop-: see optimizers.c
 * state as in fm_optimizer. Returns the sum of the squared weights before
 * the step; partials [n / FM_STEP_CHUNK + 1] is scratch.
 *                                             (updates params, state, opt->t) */
double fm_optimizer_step(fm_dtype dtype, void *params, void *state, const void *grads,
                         int64_t n, int64_t n_weights, double alpha, double S,
                         fm_optimizer *opt, double *partials, int n_threads);

/* 1 when every element of x [n] is finite, else 0. */
int fm_all_finite(fm_dtype dtype, const void *x, int64_t n);
/* Two-class probabilities from one logistic output, in place: out [n x 2]
 * holds p [n] in its last n elements on entry and rows (1 - p_i, p_i) on
 * return.                                                       (writes out) */
void fm_two_class(fm_dtype dtype, void *out, int64_t n);

/* ---- configuration ------------------------------------------------------------ */

/* The instruction set the kernels run with, chosen when first needed: the
 * widest this build has and the CPU runs ("avx512", "avx2", "sse2" on
 * x86-64; "neon" on aarch64; "generic" elsewhere), unless the environment
 * variable FASTMLP_ISA names a narrower one. */
const char *fm_isa(void);
/* Every instruction set this build has, the widest first, separated by
 * spaces; and whether this CPU runs the one named. */
const char *fm_isa_built(void);
int fm_isa_supported(const char *name);
/* Switch to the instruction set named (for tests: call it while no other
 * thread is in the engine); FM_ERR_ARGUMENT when this build or this CPU
 * does not have it. */
fm_status fm_set_isa(const char *name);
/* The GEMM micro-kernels in use for dtype, e.g. "avx2 6x16/4x16". */
const char *fm_kernel(fm_dtype dtype);
/* The threads the engine runs on: "pthreads", "win32", or "none" in a
 * build without threads. */
const char *fm_threads_backend(void);
/* Worker threads alive now (idle ones end after about two seconds). */
int fm_workers_alive(void);

/* ---- Ctrl-C (interrupt.c) -------------------------------------------------------- */

/* Route Ctrl-C (SIGINT; a console Ctrl-C event on Windows) to a flag that
 * training, prediction and the loss and gradient pass watch, keeping what
 * handled it before; 0 when it could not, or when the process ignores
 * SIGINT. Main thread only; pair with fm_interrupt_release, which puts the
 * previous handling back. */
int fm_interrupt_catch(void);
void fm_interrupt_release(void);
/* The flag: how many times Ctrl-C arrived since fm_interrupt_catch. */
const volatile int *fm_interrupt_flag(void);

#ifdef __cplusplus
}
#endif

#endif /* FASTMLP_H */
