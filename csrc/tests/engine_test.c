/* The C API on its own, under every instruction set this CPU runs:
 *   - the worked backpropagation example (shared/WORKED_EXAMPLE.md), one
 *     step then one epoch, in both precisions, to 1e-6;
 *   - the three dense products through the packed GEMM against the direct
 *     loops kept as their reference, over shapes around the blocking;
 *   - products and whole training runs bit-identical for 1 and several
 *     threads, with and without the tuner, and two trainings at once on
 *     two threads of the application; the tuner kept wherever a loop can
 *     start a thread;
 *   - Ctrl-C reaching the flag, and the previous handling put back (on
 *     Windows in a child process with a console of its own: run with
 *     --ctrl-c, that process does only this).
 * Prints the kernel used for each instruction set; exits 0 when all pass. */
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <wchar.h>

#include "common.h"
#include "compat.h"
#include "fastmlp.h"

static int failures = 0;

static void expect(const char *what, double got, double want)
{
    if (fabs(got - want) > 1e-6) {
        printf("FAIL %s: got %.8f, want %.6f\n", what, got, want);
        failures++;
    }
}

static void check(const char *what, int ok)
{
    if (!ok) {
        printf("FAIL %s\n", what);
        failures++;
    }
}

/* ---- the worked example ---------------------------------------------------- */

static const double X[6] = {0.5, -0.5, 0.3, 0.4, 0.7, 0.9};
static const double Y[6] = {0.9, 0.1, 0.9, 0.9, 0.1, 0.1};
/* W0 (2x2), W1 (2x2), b0 (2), b1 (2): the flat layout of fastmlp.h */
static const double START[12] = {0.1, 0.3, -0.2, 0.55, 0.37, -0.22, 0.9, -0.12,
                                 0.01, -0.02, 0.31, 0.27};
static const double AFTER_ONE_STEP[12] = {0.105522, 0.306898, -0.205522, 0.543102,
                                          0.394148, -0.288500, 0.920745, -0.178845,
                                          0.021044, -0.006203, 0.354726, 0.143128};
static unsigned char small_work[1 << 21];

#define WORKED_EXAMPLE(T, DTYPE)                                                       \
    do {                                                                               \
        int64_t units[3] = {2, 2, 2};                                                  \
        int32_t acts[2] = {FM_LOGISTIC, FM_LOGISTIC};                                  \
        fm_net net = {2, units, acts, FM_SQUARED_ERROR, 0.0, NULL, 0};                 \
        T x[6], y[6], params[12], grads[12], velocity[12];                             \
        int64_t order[3] = {0, 1, 2};                                                  \
        for (int i = 0; i < 6; i++) {                                                  \
            x[i] = (T)X[i];                                                            \
            y[i] = (T)Y[i];                                                            \
        }                                                                              \
        for (int i = 0; i < 12; i++) params[i] = (T)START[i];                          \
        memset(velocity, 0, sizeof velocity);                                          \
        fm_data data = {3, x, NULL, NULL, NULL, y, NULL};                              \
        fm_optimizer opt = {FM_SGD, 1.2, 0.0, 0, 0.9, 0.999, 1e-8, 0, 0, 0};           \
        double loss = 0;                                                               \
        check("workspace fits", fm_workspace_bytes(&net, 1, DTYPE, 1) <=               \
                                    (int64_t)sizeof small_work);                       \
        fm_run run = {1, 0, 0, FM_CONSTANT, 0, 1e9, 1.2, 0.5, 0, 1e300, 0, 0, 0, 0, 0}; \
        fm_status s = fm_train(DTYPE, params, grads, velocity, NULL, small_work, &loss, \
                               order, 1, &run, NULL, &data, &net, &opt, 1, 1, 1, NULL, \
                               NULL);                                                  \
        check("first step trained", s == FM_OK && run.epochs == 1);                    \
        for (int i = 0; i < 12; i++) expect(#T " first step", params[i], AFTER_ONE_STEP[i]); \
        expect(#T " E of the first sample", loss * 2, 0.106669);                       \
        expect(#T " samples seen", (double)run.t, 1);                                  \
        for (int i = 0; i < 12; i++) params[i] = (T)START[i];                          \
        s = fm_train(DTYPE, params, grads, velocity, NULL, small_work, &loss, order, 3, \
                     &run, NULL, &data, &net, &opt, 1, 1, 1, NULL, NULL);              \
        check("epoch trained", s == FM_OK && run.epochs == 1);                         \
        expect(#T " summed E of one epoch", loss * 3 * 2, 0.523640);                   \
    } while (0)

static void worked_example(void)
{
    WORKED_EXAMPLE(double, FM_FLOAT64);
    WORKED_EXAMPLE(float, FM_FLOAT32);
}

/* Prediction looks at the interrupt flag before each chunk: set, it ends
 * the call there; clear, every row is computed. */
static void predict_stops_on_the_flag(void)
{
    int64_t units[3] = {2, 2, 2};
    int32_t acts[2] = {FM_LOGISTIC, FM_LOGISTIC};
    fm_net net = {2, units, acts, FM_SQUARED_ERROR, 0.0, NULL, 0};
    double x[6], out[6], params[12];
    memcpy(x, X, sizeof x);
    memcpy(params, START, sizeof params);
    fm_data data = {3, x, NULL, NULL, NULL, NULL, NULL};
    volatile int flag = 1;
    for (int i = 0; i < 6; i++) out[i] = -1;
    fm_status s = fm_predict(FM_FLOAT64, out, small_work, &data, NULL, 3, params, &net, 1, 1,
                             NULL, 0, &flag);
    check("a set flag ends prediction", s == FM_ERR_INTERRUPTED);
    for (int i = 0; i < 6; i++) check("an ended prediction writes nothing after", out[i] == -1);
    flag = 0;
    s = fm_predict(FM_FLOAT64, out, small_work, &data, NULL, 3, params, &net, 1, 1, NULL, 0,
                   &flag);
    check("a clear flag predicts every row", s == FM_OK);
    for (int i = 0; i < 6; i++) check("outputs are probabilities", out[i] > 0 && out[i] < 1);
}

/* So does the loss and gradient pass, for sums and the finished loss alike;
 * a clear flag gives what no flag gives. */
static void loss_grad_stops_on_the_flag(void)
{
    int64_t units[3] = {2, 2, 2};
    int32_t acts[2] = {FM_LOGISTIC, FM_LOGISTIC};
    fm_net net = {2, units, acts, FM_SQUARED_ERROR, 0.0, NULL, 0};
    double x[6], y[6], params[12], grads[12], clear_grads[12];
    memcpy(x, X, sizeof x);
    memcpy(y, Y, sizeof y);
    memcpy(params, START, sizeof params);
    fm_data data = {3, x, NULL, NULL, NULL, y, NULL};
    volatile int flag = 1;
    double loss = -1, clear_loss = -1, wloss = -1, wsum = -1;
    check("a set flag ends the loss pass",
          fm_loss_grad(FM_FLOAT64, grads, &loss, small_work, &data, params, &net, 1, 1, NULL,
                       &flag) == FM_ERR_INTERRUPTED);
    check("a set flag ends the sums",
          fm_loss_grad_sums(FM_FLOAT64, grads, &wloss, &wsum, small_work, &data, NULL, 0,
                            params, &net, 1, 1, NULL, &flag) == FM_ERR_INTERRUPTED);
    flag = 0;
    fm_status s = fm_loss_grad(FM_FLOAT64, clear_grads, &clear_loss, small_work, &data, params,
                               &net, 1, 1, NULL, &flag);
    check("a clear flag passes every row", s == FM_OK);
    s = fm_loss_grad(FM_FLOAT64, grads, &loss, small_work, &data, params, &net, 1, 1, NULL,
                     NULL);
    check("no flag passes every row", s == FM_OK && loss == clear_loss && loss > 0);
    for (int i = 0; i < 12; i++)
        check("the same gradient with a clear flag", grads[i] == clear_grads[i]);
}

/* ---- threads --------------------------------------------------------------------- */

static uint64_t lcg = 12345;
static double uniform(void)
{
    lcg = lcg * 6364136223846793005ULL + 1442695040888963407ULL;
    return (double)(lcg >> 11) * 0x1.0p-53 * 2 - 1;
}

#define N_ROWS 300
#define N_IN 120
#define N_HID 96
#define N_OUT 3

/* A network big enough that every product runs on several threads. */
typedef struct {
    int64_t units[3];
    int32_t acts[2];
    fm_net net;
    double x[N_ROWS * N_IN], y[N_ROWS * N_OUT];
    double start[N_IN * N_HID + N_HID * N_OUT + N_HID + N_OUT];
    int64_t n_params;
} problem;

static problem prob;

static void make_problem(void)
{
    prob.units[0] = N_IN;
    prob.units[1] = N_HID;
    prob.units[2] = N_OUT;
    prob.acts[0] = FM_TANH;
    prob.acts[1] = FM_IDENTITY;
    fm_net net = {2, prob.units, prob.acts, FM_SQUARED_ERROR, 1e-4, NULL, 0};
    prob.net = net;
    prob.n_params = fm_n_params(&prob.net);
    for (int i = 0; i < N_ROWS * N_IN; i++) prob.x[i] = uniform();
    for (int i = 0; i < N_ROWS * N_OUT; i++) prob.y[i] = uniform();
    for (int64_t i = 0; i < prob.n_params; i++) prob.start[i] = 0.1 * uniform();
}

#define EPOCHS 8

typedef struct {
    int n_threads, use_tuner, tuned;
    fm_dtype dtype;
    double out[sizeof prob.start / sizeof prob.start[0]];
    volatile int64_t finished;
    fm_status status;
} training;

/* Element i of a float or double buffer of the given dtype becomes v. */
static void put(void *dst, int64_t i, fm_dtype dtype, double v)
{
    if (dtype == FM_FLOAT32) ((float *)dst)[i] = (float)v;
    else ((double *)dst)[i] = v;
}

/* EPOCHS epochs of Adam, batches of 100 rows, on n_threads threads. */
static void train(void *arg)
{
    training *t = arg;
    const size_t size = t->dtype == FM_FLOAT32 ? sizeof(float) : sizeof(double);
    const int64_t n = prob.n_params;
    char *x = malloc(sizeof prob.x), *y = malloc(sizeof prob.y), *params = malloc(n * size);
    char *grads = malloc(n * size), *state = calloc(2 * n, size);
    const int64_t ws = fm_workspace_bytes(&prob.net, 100, t->dtype, t->n_threads);
    void *work = malloc((size_t)ws);
    int64_t order[N_ROWS];
    for (int i = 0; i < N_ROWS; i++) order[i] = (N_ROWS - 1 - i * 7 % N_ROWS);
    for (int i = 0; i < N_ROWS * N_IN; i++) put(x, i, t->dtype, prob.x[i]);
    for (int i = 0; i < N_ROWS * N_OUT; i++) put(y, i, t->dtype, prob.y[i]);
    for (int64_t i = 0; i < n; i++) put(params, i, t->dtype, prob.start[i]);
    fm_data data = {N_ROWS, x, NULL, NULL, NULL, y, NULL};
    fm_optimizer opt = {FM_ADAM, 1e-3, 0.9, 1, 0.9, 0.999, 1e-8, 0, 0, 0};
    fm_run run = {EPOCHS, 0, 1, FM_CONSTANT, 1e-4, 10, 1e-3, 0.5, 0, 1e300, 0, 0, 0, 0, 0};
    /* a tuner set to start a trial at once, so that the count changes while
     * it trains */
    fm_tuner tuner;
    memset(&tuner, 0, sizeof tuner);
    tuner.max = tuner.threads = t->n_threads;
    tuner.interval_ns = tuner.left_ns = 1;
    double curve[EPOCHS];
    t->status = fm_train(t->dtype, params, grads, state, NULL, work, curve, order, N_ROWS,
                         &run, NULL, &data, &prob.net, &opt, 100, 64, t->n_threads,
                         t->use_tuner ? &tuner : NULL, NULL);
    t->tuned = tuner.trial != 0 || tuner.interval_ns != 1;
    for (int64_t i = 0; i < n; i++)
        t->out[i] = t->dtype == FM_FLOAT32 ? ((float *)params)[i] : ((double *)params)[i];
    free(x);
    free(y);
    free(params);
    free(grads);
    free(state);
    free(work);
    fm_atomic_store(&t->finished, 1);
}

static int same(const double *a, const double *b, int64_t n)
{
    return memcmp(a, b, (size_t)n * sizeof(double)) == 0;
}

static training reference, other, second;

static void threads_do_not_change_results(fm_dtype dtype)
{
    const int64_t n = prob.n_params;
    memset(&reference, 0, sizeof reference);
    reference.n_threads = 1;
    reference.dtype = dtype;
    train(&reference);
    check("training on one thread", reference.status == FM_OK);
    const int counts[3] = {2, 3, 5};
    for (int c = 0; c < 3; c++)
        for (int tuned = 0; tuned < 2; tuned++) {
            memset(&other, 0, sizeof other);
            other.n_threads = counts[c];
            other.use_tuner = tuned;
            other.dtype = dtype;
            train(&other);
            check("training on several threads",
                  other.status == FM_OK && same(reference.out, other.out, n));
            if (tuned) check("the tuner changed the thread count", other.tuned);
        }
    /* two trainings at once, each on two threads */
    memset(&other, 0, sizeof other);
    memset(&second, 0, sizeof second);
    other.n_threads = second.n_threads = 2;
    other.dtype = second.dtype = dtype;
    second.use_tuner = 1;
    check("starting a thread", fm_thread_start(train, &second) == 0);
    train(&other);
    while (!fm_atomic_load(&second.finished)) fm_cpu_relax();
    check("two trainings at once", other.status == FM_OK && second.status == FM_OK &&
                                       same(reference.out, other.out, n) &&
                                       same(reference.out, second.out, n));
}

/* ---- a workspace from any address ---------------------------------------------
 * The engine aligns the workspace's regions to cache lines from wherever it
 * starts, inside the fm_workspace_bytes it was given. A 256-input, 512-unit
 * layer on one thread fills the whole of the pack buffer, the layout's last
 * region, so a start that skips bytes the size did not count would write
 * past the end. */

#define GUARD_BYTES 128

static void fill(char *dst, int64_t n, fm_dtype dtype, double scale)
{
    for (int64_t i = 0; i < n; i++) put(dst, i, dtype, scale * uniform());
}

static void workspace_may_start_anywhere(fm_dtype dtype)
{
    enum { WS_ROWS = 32, WS_IN = 256, WS_HID = 512 };
    int64_t units[3] = {WS_IN, WS_HID, 1};
    int32_t acts[2] = {FM_RELU, FM_IDENTITY};
    const fm_net net = {2, units, acts, FM_SQUARED_ERROR, 1e-4, NULL, 0};
    const size_t size = dtype == FM_FLOAT32 ? sizeof(float) : sizeof(double);
    const int64_t n = fm_n_params(&net), ws = fm_workspace_bytes(&net, WS_ROWS, dtype, 1);
    char *x = malloc(WS_ROWS * WS_IN * size), *y = malloc(WS_ROWS * size);
    char *start = malloc(n * size), *params = malloc(n * size), *first = malloc(n * size);
    char *grads = malloc(n * size), *state = malloc(n * size);
    char *alloc = malloc((size_t)ws + 2 * FM_LINE + GUARD_BYTES);
    fill(x, WS_ROWS * WS_IN, dtype, 1);
    fill(y, WS_ROWS, dtype, 1);
    fill(start, n, dtype, 0.05);
    int64_t order[WS_ROWS];
    for (int i = 0; i < WS_ROWS; i++) order[i] = i;
    const fm_data data = {WS_ROWS, x, NULL, NULL, NULL, y, NULL};
    const int offsets[4] = {0, 8, 16, 48};
    for (int o = 0; o < 4; o++) {
        char *work = (char *)fm_line_start(alloc) + offsets[o];
        memset(work + ws, 0xA5, GUARD_BYTES);
        memcpy(params, start, n * size);
        memset(state, 0, n * size);
        fm_optimizer opt = {FM_SGD, 0.01, 0.9, 0, 0.9, 0.999, 1e-8, 0, 0, 0};
        fm_run run = {1, 0, 0, FM_CONSTANT, 0, 1e9, 0.01, 0.5, 0, 1e300, 0, 0, 0, 0, 0};
        double loss = 0;
        const fm_status s = fm_train(dtype, params, grads, state, NULL, work, &loss, order,
                                     WS_ROWS, &run, NULL, &data, &net, &opt, WS_ROWS, WS_ROWS,
                                     1, NULL, NULL);
        int intact = 1;
        for (int i = 0; i < GUARD_BYTES; i++) intact &= (unsigned char)work[ws + i] == 0xA5;
        check("a workspace off a cache line trains", s == FM_OK && run.epochs == 1);
        check("nothing past the workspace is written", intact);
        if (o == 0) memcpy(first, params, n * size);
        check("the workspace's start changes no result", memcmp(first, params, n * size) == 0);
    }
    free(x);
    free(y);
    free(start);
    free(params);
    free(first);
    free(grads);
    free(state);
    free(alloc);
}

/* ---- the packed GEMM against the direct loops --------------------------------- */

#define MAX_ELEMS 90000
#define MAX_COLS 2048

/* largest |a - b| / (1 + |b|) over n elements */
static double worst(const double *a, const double *b, int64_t n)
{
    double w = 0;
    for (int64_t i = 0; i < n; i++) {
        const double d = fabs(a[i] - b[i]) / (1 + fabs(b[i]));
        if (d > w) w = d;
    }
    return w;
}

static double xs[MAX_ELEMS], ws[MAX_ELEMS], ys[MAX_ELEMS], as[MAX_ELEMS], bs[MAX_COLS];
static float xf[MAX_ELEMS], wf[MAX_ELEMS], yf[MAX_ELEMS], af[MAX_ELEMS], bf[MAX_COLS];
/* outputs: [0] the direct loops, [1] the GEMM on one thread, [2] on three */
static double out64[3][MAX_ELEMS], outb64[3][MAX_COLS];
static float out32[3][MAX_ELEMS], outb32[3][MAX_COLS];
static double wide[2][MAX_ELEMS];
static unsigned char pack[1 << 24];

/* out [count] (double) from the buffer of dtype */
static void widen(double *out, const void *in, fm_dtype dtype, int64_t count)
{
    for (int64_t i = 0; i < count; i++)
        out[i] = dtype == FM_FLOAT32 ? ((const float *)in)[i] : ((const double *)in)[i];
}

/* The GEMM's results on one and three threads: within tol of the direct
 * loops' (variant 0), and bit-identical to each other. */
static void compare(const char *what, fm_dtype dtype, void *const *out, int64_t count,
                    double tol)
{
    const size_t size = dtype == FM_FLOAT32 ? sizeof(float) : sizeof(double);
    widen(wide[0], out[0], dtype, count);
    widen(wide[1], out[1], dtype, count);
    check(what, worst(wide[1], wide[0], count) < tol &&
                    memcmp(out[1], out[2], (size_t)count * size) == 0);
}

static void products_match_the_direct_loops(fm_dtype dtype)
{
    /* rows, inputs, outputs: around the tiles and blocks, K over one block
     * (300 inputs), C over one column block (1100 outputs), with a B packed
     * (30 x 1100) and read where it lies (10 x 1100) */
    static const int64_t shapes[][3] = {{37, 70, 9},   {130, 70, 90},  {100, 300, 40},
                                         {64, 50, 128}, {200, 33, 260}, {17, 257, 31},
                                         {96, 128, 64}, {40, 30, 1100},  {40, 10, 1100}};
    const double tol = dtype == FM_FLOAT32 ? 1e-4 : 1e-11;
    const int f32 = dtype == FM_FLOAT32;
    const size_t size = f32 ? sizeof(float) : sizeof(double);
    int64_t rows[256];
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        const int64_t n = shapes[s][0], n_in = shapes[s][1], n_out = shapes[s][2];
        for (int64_t i = 0; i < MAX_ELEMS; i++) {
            xf[i] = (float)(xs[i] = uniform());
            wf[i] = (float)(ws[i] = uniform());
            yf[i] = (float)(ys[i] = uniform());
            af[i] = (float)(as[i] = tanh(uniform()));
        }
        for (int64_t i = 0; i < MAX_COLS; i++) bf[i] = (float)(bs[i] = uniform());
        for (int64_t i = 0; i < n; i++) rows[i] = (i * 7 + 3) % n; /* a permutation of X's rows */
        void *x = f32 ? (void *)xf : (void *)xs, *w = f32 ? (void *)wf : (void *)ws;
        void *b = f32 ? (void *)bf : (void *)bs, *dy = f32 ? (void *)yf : (void *)ys;
        void *a = f32 ? (void *)af : (void *)as;
        void *out[3], *out_b[3];
        for (int v = 0; v < 3; v++) {
            out[v] = f32 ? (void *)out32[v] : (void *)out64[v];
            out_b[v] = f32 ? (void *)outb32[v] : (void *)outb64[v];
        }
        /* forward through rows, with tanh: Y = tanh(X[rows] W + b) */
        fm_dense_forward_naive(dtype, out[0], x, rows, w, b, n, n_in, n_out);
        fm_activation_forward(dtype, out[0], n, n_out, FM_TANH);
        for (int v = 1; v < 3; v++)
            fm_dense_forward(dtype, out[v], x, rows, w, b, FM_TANH, n, n_in, n_out, pack,
                             v == 1 ? 1 : 3);
        compare("forward GEMM against the direct loops", dtype, out, n * n_out, tol);
        /* backward data with the derivative: dX = (dY W^T) * (1 - A^2) */
        fm_dense_backward_data_naive(dtype, out[0], dy, w, n, n_in, n_out);
        fm_activation_backward(dtype, out[0], a, NULL, n, n_in, FM_TANH);
        for (int v = 1; v < 3; v++)
            fm_dense_backward_data(dtype, out[v], dy, w, a, FM_TANH, n, n_in, n_out, pack,
                                   v == 1 ? 1 : 3);
        compare("backward-data GEMM against the direct loops", dtype, out, n * n_in, tol);
        /* backward params adding into gradients that hold something:
         * dW += X[rows]^T dY, db += sum dY */
        for (int v = 0; v < 3; v++) {
            memcpy(out[v], a, (size_t)(n_in * n_out) * size);
            memcpy(out_b[v], b, (size_t)n_out * size);
        }
        fm_dense_backward_params_naive(dtype, out[0], out_b[0], x, rows, dy, n, n_in, n_out);
        for (int v = 1; v < 3; v++)
            fm_dense_backward_params(dtype, out[v], out_b[v], x, rows, dy, n, n_in, n_out, pack,
                                     v == 1 ? 1 : 3);
        compare("backward-params GEMM against the direct loops", dtype, out, n_in * n_out, tol);
        compare("bias gradient against the direct loop", dtype, out_b, n_out, tol);
    }
}

/* ---- the tuner ----------------------------------------------------------------- */

/* n pieces of `rows` rows whose time is piece_ns x cost[threads]; returns
 * the share of the time spent at other counts than `best`, and checks the
 * tuner ends on `best`. */
static double tune(int max, const double *cost, int best, int64_t piece_ns, int n)
{
    fm_tuner t;
    memset(&t, 0, sizeof t);
    double total = 0, lost = 0;
    for (int i = 0; i < n; i++) {
        const int threads = fm_tuner_pick(&t, max);
        const int64_t ns = (int64_t)((double)piece_ns * cost[threads]);
        total += (double)ns;
        if (threads != best) lost += (double)ns;
        fm_tuner_record(&t, threads, ns, 64, 0, 0);
    }
    check("the tuner settles on the fastest count", fm_tuner_pick(&t, max) == best);
    return lost / total;
}

static void tuner_settles(void)
{
    /* cost[k]: time of a piece on k threads, relative */
    const double faster[3] = {0, 1.0, 0.55}, slower[3] = {0, 1.0, 2.0};
    const double two_of_four[5] = {0, 1.0, 0.6, 0.8, 0.9};
    /* 100 us pieces over 10 s of work; then 1 s pieces (a full batch each)
     * over 200 s: most of the time at the right count either way */
    check("short pieces, more threads faster", tune(2, faster, 2, 100000, 100000) < 0.05);
    check("short pieces, more threads slower", tune(2, slower, 1, 100000, 100000) < 0.05);
    check("long pieces, more threads faster", tune(2, faster, 2, 1000000000, 200) < 0.1);
    check("long pieces, more threads slower", tune(2, slower, 1, 1000000000, 200) < 0.1);
    check("four threads, two the fastest", tune(4, two_of_four, 2, 100000, 100000) < 0.1);
}

/* n pieces of 100 us at the tuner's pick; on more than one thread the
 * caller's even split of each piece's tasks is `fair`, and it ran `own`.
 * Returns the pick after them. */
static int feed(fm_tuner *t, int max, int n, double fair, int64_t own)
{
    for (int i = 0; i < n; i++) {
        const int threads = fm_tuner_pick(t, max);
        fm_tuner_record(t, threads, 100000, 64, threads > 1 ? fair : 0, threads > 1 ? own : 0);
    }
    return fm_tuner_pick(t, max);
}

/* The trial under way to its end, a piece on k threads taking first[k] in
 * its first round and later[k] after (the tasks even); the count it keeps. */
static int finish_changing_trial(fm_tuner *t, int max, const int64_t *first,
                                 const int64_t *later)
{
    for (int i = 0; i < 1000 && t->trial; i++) {
        const int threads = fm_tuner_pick(t, max);
        fm_tuner_record(t, threads, t->rounds ? later[threads] : first[threads], 64,
                        threads > 1 ? 10 : 0, threads > 1 ? 10 : 0);
    }
    check("the trial ended", !t->trial);
    return fm_tuner_pick(t, max);
}

/* the same, a piece on k threads taking ns[k] throughout */
static int finish_trial(fm_tuner *t, int max, const int64_t *ns)
{
    return finish_changing_trial(t, max, ns, ns);
}

/* A member that keeps losing its core shows as a caller that runs far more
 * (or far fewer) tasks than its even split: the tuner holds its trial
 * against fewer threads after 1 ms instead of at its first look (20 ms),
 * and decides on the times as ever. An even count, or one the last trial
 * kept over fewer, waits for the look. */
static void tuner_looks_early_when_a_member_falls_behind(void)
{
    const int64_t fewer_faster[5] = {0, 100000, 160000, 0, 250000};
    const int64_t more_faster[5] = {0, 100000, 80000, 0, 60000};
    fm_tuner t;
    memset(&t, 0, sizeof t);
    /* the first piece, after the change from none, is not counted */
    check("uneven: no trial before 1 ms", feed(&t, 2, 10, 10, 15) == 2 && !t.trial);
    check("uneven (15 tasks for a split of 10): a trial against one thread at 1 ms",
          feed(&t, 2, 1, 10, 15) == 1 && t.trial == 1);
    check("the trial keeps the faster count", finish_trial(&t, 2, fewer_faster) == 1);
    memset(&t, 0, sizeof t);
    check("uneven (5 tasks for a split of 10): a trial at once",
          feed(&t, 2, 11, 10, 5) == 1 && t.trial == 1);
    memset(&t, 0, sizeof t);
    check("uneven (the caller waiting for its core): a trial at once",
          feed(&t, 2, 11, 10, 0) == 1 && t.trial == 1);
    for (int own = 7; own <= 13; own += 3) {
        memset(&t, 0, sizeof t);
        check("within 0.7-1.3 of the split: no trial before the first look",
              feed(&t, 2, 200, 10, own) == 2 && !t.trial);
        check("the first look", feed(&t, 2, 1, 10, own) == 1 && t.trial == 1);
    }
    memset(&t, 0, sizeof t);
    check("a split under 16 tasks: no trial", feed(&t, 2, 16, 1, 3) == 2 && !t.trial);
    check("a split of 16: a trial", feed(&t, 2, 1, 1, 3) == 1 && t.trial == 1);
    memset(&t, 0, sizeof t);
    check("uneven on four threads: a trial against two",
          feed(&t, 4, 11, 10, 15) == 2 && t.trial == 2);
    check("two faster: down to two", finish_trial(&t, 4, fewer_faster) == 2);
    check("uneven again on two: a trial against one",
          feed(&t, 4, 12, 10, 15) == 1 && t.trial == 1);
    /* counted on from the stretch before, the split would be 0.5 at 1 ms */
    memset(&t, 0, sizeof t);
    feed(&t, 4, 11, 10, 0);
    finish_trial(&t, 4, fewer_faster);
    /* (15 pieces: past 1 ms, and too few for a trial to start and end) */
    check("even on two after the trial: the new stretch counts afresh",
          feed(&t, 4, 15, 10, 10) == 2 && !t.trial);
    memset(&t, 0, sizeof t);
    check("uneven, a trial", feed(&t, 2, 11, 10, 15) == 1 && t.trial == 1);
    check("two threads faster all the same: kept", finish_trial(&t, 2, more_faster) == 2);
    check("kept over fewer: no early trial though uneven",
          feed(&t, 2, 15, 10, 15) == 2 && !t.trial);
}

/* A trial against more threads that are clearly slower (1.25 times as
 * long per row, FM_TUNE_CLEAR_LOSS) after a round ends there, keeping the
 * count and waiting twice as long for the next, as any lost trial does; one
 * slower by less, or faster, or a trial against fewer, goes on for all its
 * rounds (4, FM_TUNE_ROUNDS) and decides as ever. */
static void tuner_ends_a_clearly_lost_trial_up_early(void)
{
    const int64_t fewer_faster[3] = {0, 100000, 160000};
    const int64_t clear[2][3] = {{0, 125000, 100000}, {0, 100000, 125000}};
    const int64_t close[2][3] = {{0, 120000, 100000}, {0, 100000, 120000}};
    const int64_t won[2][3] = {{0, 90000, 100000}, {0, 100000, 90000}};
    const int64_t same[3] = {0, 100000, 100000};
    const int64_t later[3][3] = {{0, 100000, 300000}, {0, 100000, 120000}, {0, 100000, 90000}};
    fm_tuner t;
    for (int up = 0; up < 3; up++) {
        const int64_t *const cases[3] = {clear[up > 0], close[up > 0], won[up > 0]};
        for (int c = 0; c < 3; c++) {
            /* up 0: down from two threads at the first look; 1: up from one
             * after a trial went down; 2: the same, the trial's pieces
             * slowing down from its second round */
            memset(&t, 0, sizeof t);
            if (up) {
                feed(&t, 2, 11, 10, 15); /* uneven: a trial down at 1 ms */
                finish_trial(&t, 2, fewer_faster);
            }
            for (int i = 0; i < 10000 && !t.trial; i++) feed(&t, 2, 1, 10, 10);
            check("a trial", t.threads == 2 - (up > 0) && t.trial == 1 + (up > 0));
            const int64_t interval = t.interval_ns;
            const int kept = up == 2 ? finish_changing_trial(&t, 2, same, later[c])
                                     : finish_trial(&t, 2, cases[c]);
            if (up == 1 && c == 0)
                check("clearly slower: kept, after one round", kept == 1 && t.rounds == 1);
            else if (up == 2 && c == 0)
                check("clearly slower from the second round: kept, after two",
                      kept == 1 && t.rounds == 2);
            else if (c < 2)
                check("kept, after every round", kept == 2 - (up > 0) && t.rounds == 4);
            else
                check("faster: taken, after every round", kept == 1 + (up > 0) && t.rounds == 4);
            if (c < 2)
                check("a lost trial: the next waits twice as long", t.interval_ns == 2 * interval);
        }
    }
}

/* However long the count in use keeps winning, the next look comes within
 * 1 s of work (FM_TUNE_CAP_NS) when pieces are short, and within 64 times a
 * trial's length (FM_TUNE_SHARE; here 1 s: two pieces of 0.5 s at the
 * count in use) when they take about a second each. */
static void tuner_looks_again_within_its_cap(void)
{
    const int64_t piece[2] = {100000, 1000000000};
    const int64_t cap[2] = {1000000000, 64 * (int64_t)1000000000};
    for (int p = 0; p < 2; p++) {
        fm_tuner t;
        memset(&t, 0, sizeof t);
        int64_t longest = 0;
        for (int i = 0; i < (p ? 2000 : 1000000); i++) {
            const int threads = fm_tuner_pick(&t, 2);
            fm_tuner_record(&t, threads, threads == 2 ? piece[p] / 2 : piece[p], 64, 0, 0);
            if (t.interval_ns > longest) longest = t.interval_ns;
        }
        check("the interval grows to its cap and no further", longest == cap[p]);
    }
}

/* ctx: [0] the tasks run, [1] those run as member 0 (the caller). A task
 * lasts 100 us, since instant ones let workers that are awake run a whole
 * loop, the caller's share too, before the caller claims one. The checks
 * below failed once under wine with instant tasks; in 11 more runs the
 * caller ran 42-260 of the 260 and its count always matched. */
static void count_task(void *ctx, int64_t task, int tid)
{
    (void)task;
    const int64_t started = fm_now_ns();
    while (fm_now_ns() - started < 100000) fm_cpu_relax();
    volatile int64_t *ran = ctx;
    fm_atomic_add(&ran[0], 1);
    if (tid == 0) fm_atomic_add(&ran[1], 1);
}

/* What the marks around a piece count: of each loop a team ran, the
 * caller's even split (a loop of 10 tasks on 4 members: 2.5; of 3 tasks,
 * which takes 3 members: 1) and the tasks it ran; loops run alone count
 * nothing. (20 rounds, so that the caller surely runs some of the tasks.) */
static void tuner_counts_the_callers_split(void)
{
    const int threaded = strcmp(fm_threads_backend(), "none") != 0;
    fm_tuner t;
    memset(&t, 0, sizeof t);
    volatile int64_t team[2] = {0, 0}, alone[2] = {0, 0};
    fm_scope scope;
    fm_scope_begin(&scope, 4);
    const fm_tuner_mark a = fm_tuner_begin(&t);
    for (int round = 0; round < 20; round++) {
        fm_parallel_for(4, 10, count_task, (void *)team);
        fm_parallel_for(4, 3, count_task, (void *)team);
        fm_parallel_for(1, 7, count_task, (void *)alone);
    }
    const fm_tuner_mark b = fm_tuner_begin(&t);
    fm_scope_end(&scope);
    check("every task ran", team[0] == 260 && alone[0] == 140 && alone[1] == 140);
    check("the caller's split counted", b.fair - a.fair == (threaded ? 70.0 : 0.0));
    check("the tasks it ran counted",
          team[1] > 0 && b.own - a.own == (threaded ? team[1] : 0));
}

/* ---- Ctrl-C ----------------------------------------------------------------------- */

static volatile int previous_seen;
static void previous_handler(int signum)
{
    (void)signum;
    previous_seen = 1;
}

#ifdef _WIN32
/* Windows sends Ctrl-C to every process attached to a console, so sending
 * it from here would also interrupt whatever started the test (a shell, a
 * test runner). The checks run in a child process with a console of its own
 * (hidden), which reports the ones that failed as bits of its exit code. */
static const char *const ctrl_c_checks[] = {
    "catch Ctrl-C",
    "a second catch is refused",
    "sending Ctrl-C",
    "Ctrl-C reaches the flag",
    "Ctrl-C stops at the flag",
    "the previous handler is back",
    "an ignored Ctrl-C stays ignored",
};
#define N_CTRL_C_CHECKS ((int)(sizeof ctrl_c_checks / sizeof ctrl_c_checks[0]))

/* 1 once *flag is set, 0 when it stays clear for 5 seconds */
static int wait_for(const volatile int *flag)
{
    for (int i = 0; i < 500 && !*flag; i++) Sleep(10);
    return *flag != 0;
}

/* The child's part: the bits of the checks that failed. A console control
 * handler runs on a thread of its own, hence the waits. */
static int ctrl_c_child(void)
{
    int failed = 0;
    signal(SIGINT, previous_handler);
    if (!fm_interrupt_catch()) failed |= 1 << 0;
    if (fm_interrupt_catch()) failed |= 1 << 1;
    if (!GenerateConsoleCtrlEvent(CTRL_C_EVENT, 0)) failed |= 1 << 2;
    if (!wait_for(fm_interrupt_flag())) failed |= 1 << 3;
    /* the handlers of one event run one after the other on one thread: had
     * the flag's handler passed the event on, the C runtime's would run now */
    Sleep(100);
    if (previous_seen) failed |= 1 << 4;
    fm_interrupt_release();
    if (!GenerateConsoleCtrlEvent(CTRL_C_EVENT, 0)) failed |= 1 << 2;
    if (!wait_for(&previous_seen)) failed |= 1 << 5;
    signal(SIGINT, SIG_IGN);
    if (fm_interrupt_catch()) failed |= 1 << 6;
    signal(SIGINT, SIG_DFL);
    return failed;
}

static void ctrl_c(void)
{
    wchar_t path[MAX_PATH + 1], command[MAX_PATH + 16];
    STARTUPINFOW startup;
    PROCESS_INFORMATION child;
    DWORD code = 0;
    const DWORD length = GetModuleFileNameW(NULL, path, MAX_PATH + 1);
    memset(&startup, 0, sizeof startup);
    startup.cb = sizeof startup;
    startup.dwFlags = STARTF_USESHOWWINDOW;
    startup.wShowWindow = SW_HIDE;
    if (length == 0 || length > MAX_PATH ||
        swprintf(command, MAX_PATH + 16, L"\"%ls\" --ctrl-c", path) < 0 ||
        !CreateProcessW(path, command, NULL, NULL, FALSE, CREATE_NEW_CONSOLE, NULL, NULL,
                        &startup, &child)) {
        check("starting the Ctrl-C process", 0);
        return;
    }
    if (WaitForSingleObject(child.hProcess, 60000) != WAIT_OBJECT_0) {
        TerminateProcess(child.hProcess, 1);
        check("the Ctrl-C process finishes", 0);
    } else if (!GetExitCodeProcess(child.hProcess, &code) || code >> N_CTRL_C_CHECKS) {
        printf("FAIL the Ctrl-C process ended with code 0x%lx\n", (unsigned long)code);
        failures++;
    } else {
        for (int i = 0; i < N_CTRL_C_CHECKS; i++) check(ctrl_c_checks[i], !(code >> i & 1));
    }
    CloseHandle(child.hThread);
    CloseHandle(child.hProcess);
}
#else
static void ctrl_c(void)
{
    signal(SIGINT, previous_handler);
    check("catch Ctrl-C", fm_interrupt_catch());
    check("a second catch is refused", !fm_interrupt_catch());
    raise(SIGINT);
    check("Ctrl-C reaches the flag", *fm_interrupt_flag() != 0 && !previous_seen);
    fm_interrupt_release();
    raise(SIGINT);
    check("the previous handler is back", previous_seen);
    signal(SIGINT, SIG_IGN);
    check("an ignored Ctrl-C stays ignored", !fm_interrupt_catch());
    signal(SIGINT, SIG_DFL);
}
#endif

/* Whatever state a tuner is in (two calls that misuse one at once can leave
 * it holding another call's count), a pick stays within the caller's max:
 * the caller's workspace holds scratch for that many threads only. */
static void tuner_pick_within_max(void)
{
    fm_tuner t;
    memset(&t, 0, sizeof t);
    check("a fresh tuner picks the max", fm_tuner_pick(&t, 2) == 2);
    t.threads = 4; /* as if a call with max 4 had reset it after ours */
    check("a count above max is not picked", fm_tuner_pick(&t, 2) == 2);
    t.trial = 8;
    t.on_trial = 1;
    check("a trial above max is not picked", fm_tuner_pick(&t, 2) == 2);
    check("max 1 picks 1", fm_tuner_pick(&t, 1) == 1);
}

/* The tuner is dropped only for networks none of whose loops can start a
 * thread: a 4-16-10 network's 16 x 10 products on 1024 rows (163,840
 * multiply-adds, above FM_GEMM_MIN_WORK) take threads; on 32 rows no loop
 * of it does. */
static void tuner_kept_where_products_take_threads(void)
{
    const int64_t units[3] = {4, 16, 10};
    const int32_t acts[2] = {FM_RELU, FM_SOFTMAX};
    const fm_net net = {2, units, acts, FM_LOG_LOSS, 0.0, NULL, 0};
    check("threads possible: a packed product above FM_GEMM_MIN_WORK",
          16 * 10 * 1024 >= FM_GEMM_MIN_WORK && fm_may_use_threads(&net, 1024));
    check("no threads possible on 32 rows", !fm_may_use_threads(&net, 32));
}

int main(int argc, char **argv)
{
#ifdef _WIN32
    if (argc == 2 && strcmp(argv[1], "--ctrl-c") == 0) return ctrl_c_child();
#else
    (void)argc;
    (void)argv;
#endif
    make_problem();
    char built[64];
    snprintf(built, sizeof built, "%s", fm_isa_built());
    for (char *isa = strtok(built, " "); isa; isa = strtok(NULL, " ")) {
        if (!fm_isa_supported(isa)) {
            printf("isa %s: not run by this CPU\n", isa);
            continue;
        }
        check("switching instruction set", fm_set_isa(isa) == FM_OK);
        const int before = failures;
        worked_example();
        predict_stops_on_the_flag();
        loss_grad_stops_on_the_flag();
        products_match_the_direct_loops(FM_FLOAT64);
        products_match_the_direct_loops(FM_FLOAT32);
        threads_do_not_change_results(FM_FLOAT64);
        threads_do_not_change_results(FM_FLOAT32);
        workspace_may_start_anywhere(FM_FLOAT64);
        workspace_may_start_anywhere(FM_FLOAT32);
        printf("isa %s: kernels %s (float32), %s (float64): %s\n", fm_isa(),
               fm_kernel(FM_FLOAT32), fm_kernel(FM_FLOAT64),
               failures == before ? "ok" : "FAILED");
    }
    tuner_settles();
    tuner_looks_early_when_a_member_falls_behind();
    tuner_counts_the_callers_split();
    tuner_ends_a_clearly_lost_trial_up_early();
    tuner_looks_again_within_its_cap();
    tuner_pick_within_max();
    tuner_kept_where_products_take_threads();
    ctrl_c();
    printf("%s (threads %s)\n", failures ? "FAILED" : "ok", fm_threads_backend());
    return failures ? 1 : 0;
}
