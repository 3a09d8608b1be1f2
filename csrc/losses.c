/* Per-sample losses and the output delta, as in fastmlp.h's fm_loss table.
 * Losses are accumulated in double; they decide stopping, not the update. */
#include <math.h>

#include "common.h"

/* y log(x), defined as 0 when y == 0 (so 0 log 0 = 0) */
static inline double xlogy(double y, double x) { return y == 0 ? 0.0 : y * log(x); }

/* p clipped to [eps, 1 - eps] in the working precision */
static inline double clip_prob(real p)
{
    const real lo = FM_EPS, hi = 1 - FM_EPS;
    return (double)(p < lo ? lo : (p > hi ? hi : p));
}

void FM_FN(fm_loss_forward)(double *l, const real *P, const real *Y,
                            const int64_t *rows, int64_t n, int64_t K, int32_t loss)
{
    for (int64_t i = 0; i < n; i++) {
        const real *p = P + i * K;
        const real *y = Y + (rows ? rows[i] : i) * K;
        double s = 0;
        switch (loss) {
        case FM_SQUARED_ERROR:
            for (int64_t k = 0; k < K; k++) {
                const double e = (double)y[k] - (double)p[k];
                s += e * e;
            }
            s = 0.5 * s / (double)K;
            break;
        case FM_LOG_LOSS:
            for (int64_t k = 0; k < K; k++) s -= xlogy(y[k], clip_prob(p[k]));
            break;
        case FM_BINARY_LOG_LOSS:
            for (int64_t k = 0; k < K; k++) {
                const double q = clip_prob(p[k]);
                s -= xlogy(y[k], q) + xlogy(1.0 - y[k], 1.0 - q);
            }
            break;
        case FM_POISSON:
            for (int64_t k = 0; k < K; k++)
                s += xlogy(y[k], (double)y[k] / (double)p[k]) - y[k] + p[k];
            break;
        default:
            break;
        }
        l[i] = s;
    }
}

void FM_FN(fm_loss_backward)(real *dZ, const real *P, const real *Y, const real *sw,
                             const int64_t *rows, int64_t n, int64_t K)
{
    for (int64_t i = 0; i < n; i++) {
        const int64_t r = rows ? rows[i] : i;
        const real *p = P + i * K;
        const real *y = Y + r * K;
        real *d = dZ + i * K;
        for (int64_t k = 0; k < K; k++) d[k] = p[k] - y[k];
        if (sw)
            for (int64_t k = 0; k < K; k++) d[k] *= sw[r];
    }
}
