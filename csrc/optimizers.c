/* Optimizer steps: one elementwise loop over the flat parameter buffer.
 * The coefficients are rounded to the working precision before use, and
 * Adam's step is formed in double, so float32 training rounds as numpy
 * does when it mixes float32 arrays with Python and float64 scalars. */
#include <tgmath.h>

#include "common.h"

#define FM_STEP_CHUNK 16384

FM_HOT static void sgd_range(real *restrict p, real *restrict v, const real *restrict g,
                             int64_t i0, int64_t i1, real lr, real mu, int32_t nesterov)
{
    if (nesterov) {
        for (int64_t i = i0; i < i1; i++) {
            v[i] = mu * v[i] - lr * g[i];
            p[i] += mu * v[i] - lr * g[i];
        }
    } else {
        for (int64_t i = i0; i < i1; i++) {
            v[i] = mu * v[i] - lr * g[i];
            p[i] += v[i];
        }
    }
}

void FM_FN(fm_sgd_step)(real *params, real *velocity, const real *grads, int64_t n,
                        double lr, double momentum, int32_t nesterov, int n_threads)
{
    const int64_t nc = (n + FM_STEP_CHUNK - 1) / FM_STEP_CHUNK;
    (void)n_threads;
#pragma omp parallel for schedule(static) num_threads(n_threads) if (nc > 1)
    for (int64_t c = 0; c < nc; c++)
        sgd_range(params, velocity, grads, c * FM_STEP_CHUNK,
                  fm_min64((c + 1) * FM_STEP_CHUNK, n), (real)lr, (real)momentum,
                  nesterov);
}

FM_HOT static void adam_range(real *restrict p, real *restrict m, real *restrict v,
                              const real *restrict g, int64_t i0, int64_t i1,
                              double lr_t, real b1, real c1, real b2, real c2, real eps)
{
    for (int64_t i = i0; i < i1; i++) {
        m[i] = b1 * m[i] + c1 * g[i];
        v[i] = b2 * v[i] + c2 * (g[i] * g[i]);
        const real denom = sqrt(v[i]) + eps;
        p[i] = (real)((double)p[i] + (-lr_t * (double)m[i]) / (double)denom);
    }
}

void FM_FN(fm_adam_step)(real *params, real *m, real *v, const real *grads, int64_t n,
                         double lr_t, double beta_1, double beta_2, double epsilon,
                         int n_threads)
{
    const int64_t nc = (n + FM_STEP_CHUNK - 1) / FM_STEP_CHUNK;
    (void)n_threads;
#pragma omp parallel for schedule(static) num_threads(n_threads) if (nc > 1)
    for (int64_t c = 0; c < nc; c++)
        adam_range(params, m, v, grads, c * FM_STEP_CHUNK,
                   fm_min64((c + 1) * FM_STEP_CHUNK, n), lr_t, (real)beta_1,
                   (real)(1 - beta_1), (real)beta_2, (real)(1 - beta_2), (real)epsilon);
}

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
