/* Per-sample losses and the output delta, as in fastmlp.h's fm_loss table.
 * Losses are accumulated in double; they decide stopping, not the update. */
#include <math.h>
#include <string.h>

#include "common.h"

/* y log(x), defined as 0 when y == 0 (so 0 log 0 = 0) */
static inline double xlogy(double y, double x) { return y == 0 ? 0.0 : y * log(x); }

/* log(x) for a normal, positive, finite x, within about an ulp, or NaN
 * for a NaN x (a diverged prediction, which clipping lets through), in plain
 * arithmetic and without branches, so that a loop of them vectorizes (a
 * call to the C library's log per sample took most of a small network's
 * loss). With x = 2^e (1 + f), 1 + f in [sqrt(1/2), sqrt(2)), and
 * s = f / (2 + f) (|s| < 0.1716, z = s^2 < 0.0295):
 *   log(1 + f) = 2 atanh(s) = 2s + s R,  R = 2 (z/3 + z^2/5 + z^3/7 + ...),
 * and since s (2 + f) = f, 2s = f - f^2/2 + s f^2/2, so that
 *   log(1 + f) = f - (h - s (h + R)),  h = f^2/2,
 * whose largest term, f, is exact. The series stops after z^10: the next
 * term is under 1e-18 of the result. e ln 2 is taken as e LN2_HI, exact
 * (LN2_HI has 42 significant bits), plus e LN2_LO. */
#define LN2_HI 0.6931471805598903
#define LN2_LO 5.497923018708371e-14
#define SQRT_HALF_BITS UINT64_C(0x3fe6a09e667f3bcd)
#define EXP_ONE (UINT64_C(1023) << 52) /* the bits of 1.0 */
static inline double log_normal(double x)
{
    uint64_t u, mu, eu;
    double m, eb;
    memcpy(&u, &x, sizeof u);
    /* the top 12 bits of t are e's biased exponent, 1023 + e */
    const uint64_t t = u - SQRT_HALF_BITS + EXP_ONE;
    mu = u - (t & ~((UINT64_C(1) << 52) - 1)) + EXP_ONE;
    memcpy(&m, &mu, sizeof m);
    /* 2^52 + (1023 + e), exactly, in a double */
    eu = (t >> 52) | UINT64_C(0x4330000000000000);
    memcpy(&eb, &eu, sizeof eb);
    const double e = eb - (4503599627370496.0 + 1023.0);
    const double f = m - 1.0, s = f / (2.0 + f), z = s * s, h = 0.5 * f * f;
    double R = 2.0 / 21;
    R = R * z + 2.0 / 19;
    R = R * z + 2.0 / 17;
    R = R * z + 2.0 / 15;
    R = R * z + 2.0 / 13;
    R = R * z + 2.0 / 11;
    R = R * z + 2.0 / 9;
    R = R * z + 2.0 / 7;
    R = R * z + 2.0 / 5;
    R = R * z + 2.0 / 3;
    R *= z;
    const double r = e * LN2_HI + (f - (h - (s * (h + R) + e * LN2_LO)));
    /* the bits of NaN would read as a finite number above */
    return x == x ? r : x;
}

/* p clipped to [eps, 1 - eps] in the working precision */
static inline double clip_prob(real p)
{
    const real lo = FM_EPS, hi = 1 - FM_EPS;
    return (double)(p < lo ? lo : (p > hi ? hi : p));
}

/* The binary cross-entropy of one label, for y in [0, 1]: a clipped q
 * gives both logs finite (but for a NaN p), so each term is 0 where its
 * weight is. */
static inline double binary_log_loss(real p, double y)
{
    const double q = clip_prob(p);
    return -(y * log_normal(q) + (1.0 - y) * log_normal(1.0 - q));
}

void FM_FN(fm_loss_forward)(double *l, const real *P, const real *Y,
                            const int64_t *rows, int64_t n, int64_t K, int32_t loss)
{
    if (loss == FM_BINARY_LOG_LOSS && K == 1) {
        /* one output: the labels gathered into l, then a loop over the
         * samples, which vectorizes (a gather inside it would not) */
        for (int64_t i = 0; i < n; i++) l[i] = (double)Y[rows ? rows[i] : i];
        for (int64_t i = 0; i < n; i++) l[i] = binary_log_loss(P[i], l[i]);
        return;
    }
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
            /* one-hot labels mostly: one log a sample, not one a class */
            for (int64_t k = 0; k < K; k++)
                if (y[k] != 0) s -= (double)y[k] * log_normal(clip_prob(p[k]));
            break;
        case FM_BINARY_LOG_LOSS:
            for (int64_t k = 0; k < K; k++) s += binary_log_loss(p[k], y[k]);
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
