/* Optimizer steps: one elementwise loop over the flat parameter buffer,
 * in the working precision, the coefficients rounded to it first (as numpy
 * does with float32 arrays and Python floats). */
#include <stddef.h>
#include <tgmath.h>

#include "common.h"

/* Eight interleaved partial sums in double, combined in a fixed order. */
FM_HOT double FM_FN(fm_sum_squares)(const real *x, int64_t n)
{
    double s[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        for (int u = 0; u < 8; u++) s[u] += (double)x[i + u] * (double)x[i + u];
    double t = ((s[0] + s[1]) + (s[2] + s[3])) + ((s[4] + s[5]) + (s[6] + s[7]));
    for (; i < n; i++) t += (double)x[i] * (double)x[i];
    return t;
}

/* The step sees the finished gradient of the batch: (g + alpha w) / S on
 * the weights [0, n_weights), g / S on the biases, computed as it goes (so
 * no separate pass), in scikit-learn's order of operations. While reading
 * the weights it also sums their squares (for the L2 term of the batch's
 * loss) into one partial sum per chunk, added up in chunk order afterwards,
 * so the total does not depend on the thread count. */
typedef struct {
    real *p, *s1, *s2;
    const real *g;
    int64_t n, n_weights;
    real alpha, S;
    double lr, momentum, beta_1, beta_2, epsilon;
    int32_t nesterov;
    double *partials;
} step_args;

/* Elements [i0, i1), all weights or all biases. */
FM_HOT static double sgd_span(const step_args *a, int64_t i0, int64_t i1, int weights)
{
    real *restrict p = a->p, *restrict v = a->s1;
    const real *restrict g = a->g;
    const real lr = (real)a->lr, mu = (real)a->momentum, alpha = weights ? a->alpha : 0;
    const double sumsq = weights ? FM_FN(fm_sum_squares)(p + i0, i1 - i0) : 0;
    for (int64_t i = i0; i < i1; i++) {
        const real grad = (g[i] + alpha * p[i]) / a->S;
        v[i] = mu * v[i] - lr * grad;
        p[i] += a->nesterov ? mu * v[i] - lr * grad : v[i];
    }
    return sumsq;
}

FM_HOT static double adam_span(const step_args *a, int64_t i0, int64_t i1, int weights)
{
    real *restrict p = a->p, *restrict m = a->s1, *restrict v = a->s2;
    const real *restrict g = a->g;
    const real b1 = (real)a->beta_1, c1 = (real)(1 - a->beta_1), alpha = weights ? a->alpha : 0;
    const real b2 = (real)a->beta_2, c2 = (real)(1 - a->beta_2), eps = (real)a->epsilon;
    const real lr = (real)a->lr;
    const double sumsq = weights ? FM_FN(fm_sum_squares)(p + i0, i1 - i0) : 0;
    for (int64_t i = i0; i < i1; i++) {
        const real grad = (g[i] + alpha * p[i]) / a->S;
        m[i] = b1 * m[i] + c1 * grad;
        v[i] = b2 * v[i] + c2 * (grad * grad);
        p[i] += -lr * m[i] / (sqrt(v[i]) + eps);
    }
    return sumsq;
}

/* The chunk [i0, i1), split where the weights end and the biases begin. */
static double sgd_range(const step_args *a, int64_t i0, int64_t i1)
{
    const int64_t mid = i1 < a->n_weights ? i1 : (i0 > a->n_weights ? i0 : a->n_weights);
    return sgd_span(a, i0, mid, 1) + sgd_span(a, mid, i1, 0);
}

static double adam_range(const step_args *a, int64_t i0, int64_t i1)
{
    const int64_t mid = i1 < a->n_weights ? i1 : (i0 > a->n_weights ? i0 : a->n_weights);
    return adam_span(a, i0, mid, 1) + adam_span(a, mid, i1, 0);
}

static void sgd_part(void *ctx, int tid, int nth)
{
    const step_args *a = ctx;
    const int64_t nc = (a->n + FM_STEP_CHUNK - 1) / FM_STEP_CHUNK;
    for (int64_t c = nc * tid / nth; c < nc * (tid + 1) / nth; c++)
        a->partials[c] = sgd_range(a, c * FM_STEP_CHUNK, fm_min64((c + 1) * FM_STEP_CHUNK, a->n));
}

static void adam_part(void *ctx, int tid, int nth)
{
    const step_args *a = ctx;
    const int64_t nc = (a->n + FM_STEP_CHUNK - 1) / FM_STEP_CHUNK;
    for (int64_t c = nc * tid / nth; c < nc * (tid + 1) / nth; c++)
        a->partials[c] = adam_range(a, c * FM_STEP_CHUNK, fm_min64((c + 1) * FM_STEP_CHUNK, a->n));
}

static double run_step(step_args *a, void (*part)(void *, int, int), int n_threads)
{
    const int64_t nc = (a->n + FM_STEP_CHUNK - 1) / FM_STEP_CHUNK;
    const int nth = n_threads > 1 && nc > 1 ? (int)fm_min64(n_threads, nc) : 1;
    fm_parallel(nth, part, a);
    double total = 0;
    for (int64_t c = 0; c < nc; c++) total += a->partials[c];
    return total;
}

double FM_FN(fm_sgd_step)(real *params, real *velocity, const real *grads, int64_t n,
                          int64_t n_weights, double alpha, double S, double lr,
                          double momentum, int32_t nesterov, double *partials, int n_threads)
{
    step_args a = {params, velocity, NULL, grads, n, n_weights, (real)alpha, (real)S, lr,
                   momentum, 0, 0, 0, nesterov, partials};
    return run_step(&a, sgd_part, n_threads);
}

double FM_FN(fm_adam_step)(real *params, real *m, real *v, const real *grads, int64_t n,
                           int64_t n_weights, double alpha, double S, double lr_t,
                           double beta_1, double beta_2, double epsilon, double *partials,
                           int n_threads)
{
    step_args a = {params, m, v, grads, n, n_weights, (real)alpha, (real)S, lr_t, 0, beta_1,
                   beta_2, epsilon, 0, partials};
    return run_step(&a, adam_part, n_threads);
}

