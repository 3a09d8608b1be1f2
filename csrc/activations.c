/* Activations, applied in place after a layer's affine map, and their
 * derivatives, written in terms of the activation's output (the value the
 * forward pass keeps) and, for GELU and SiLU, whose output does not
 * determine the slope, of the pre-activation too; see fastmlp.h's
 * fm_activation table. */
#include "common.h"

static void softmax_rows(real *FM_RESTRICT A, int64_t n, int64_t m)
{
    if (m < 1) return;
    for (int64_t i = 0; i < n; i++) {
        real *FM_RESTRICT a = A + i * m;
        real top = a[0];
        for (int64_t k = 1; k < m; k++) top = a[k] > top ? a[k] : top;
        real sum = 0;
        for (int64_t k = 0; k < m; k++) {
            a[k] = fm_exp(a[k] - top);
            sum += a[k];
        }
        for (int64_t k = 0; k < m; k++) a[k] /= sum;
    }
}

/* `body` for element i of each of n rows of m elements, ld apart: row r
 * of A (and of D) is `a` (and `d`); in map_rows, after adding bias[i] to
 * a[i] (unless bias is NULL). A row goes in pieces one vector register
 * long, each a loop of constant length that compiles to straight vector
 * code, then its last few elements one by one: a tile's rows (from gemm.c's
 * epilogue) are at most 32 elements long, and a loop of unknown length
 * spends more on setting up than on so few. The switches below go around
 * the rows, so that a tile costs one call and one switch. */
#define VEC ((int64_t)(FM_VECTOR_BYTES / sizeof(real)))
#define EACH_IN_ROW(body)                                             \
    {                                                                 \
        int64_t j = 0;                                                \
        for (; j + VEC <= m; j += VEC)                                \
            for (int64_t i = j; i < j + VEC; i++) {                   \
                body;                                                 \
            }                                                         \
        for (int64_t i = j; i < m; i++) {                             \
            body;                                                     \
        }                                                             \
    }
#define EACH_ROW(body)                                                \
    for (int64_t r = 0; r < n; r++) {                                 \
        real *FM_RESTRICT a = A + r * ld;                             \
        if (bias)                                                     \
            EACH_IN_ROW(a[i] += bias[i]; body)                        \
        else                                                          \
            EACH_IN_ROW(body)                                         \
    }
#define EACH_ROW2(body)                                               \
    for (int64_t r = 0; r < n; r++) {                                 \
        real *FM_RESTRICT d = D + r * ld;                             \
        const real *FM_RESTRICT a = A + r * ld;                       \
        EACH_IN_ROW(body)                                             \
    }

/* A's rows plus bias (one value a column; none when NULL), through the
 * activation (identity: none) */
static void map_rows(real *A, int64_t ld, const real *FM_RESTRICT bias, int64_t n, int64_t m,
                     int32_t activation)
{
    switch (activation) {
    case FM_LOGISTIC:
        EACH_ROW(a[i] = 1 / (1 + fm_exp(-a[i])))
        break;
    case FM_TANH:
        EACH_ROW(a[i] = fm_tanh(a[i]))
        break;
    case FM_RELU:
        /* keeps NaN, as max(z, 0) with NaN propagation does */
        EACH_ROW(a[i] = a[i] < 0 ? 0 : a[i])
        break;
    case FM_EXP:
        EACH_ROW(a[i] = fm_exp(a[i]))
        break;
    case FM_LEAKY_RELU:
        EACH_ROW(a[i] = a[i] < 0 ? (real)FM_LEAKY_SLOPE * a[i] : a[i])
        break;
    case FM_ELU:
        EACH_ROW(a[i] = a[i] > 0 ? a[i] : fm_expm1(a[i]))
        break;
    case FM_GELU:
        EACH_ROW(a[i] = (real)0.5 * a[i] * (1 + fm_erf(a[i] * (real)0.70710678118654752440)))
        break;
    case FM_SOFTPLUS:
        /* z beyond the threshold: log(1 + e^z) is z to working precision */
        EACH_ROW(a[i] = a[i] > 20 ? a[i] : fm_log1p(fm_exp(a[i])))
        break;
    case FM_SILU:
        EACH_ROW(a[i] = a[i] / (1 + fm_exp(-a[i])))
        break;
    default:
        EACH_ROW((void)0)
        break;
    }
}

void FM_FN(fm_activation_forward)(real *A, int64_t n, int64_t m, int32_t activation)
{
    if (activation == FM_SOFTMAX)
        softmax_rows(A, n, m);
    else
        map_rows(A, n * m, NULL, 1, n * m, activation);
}

void FM_FN(fm_activation_forward_tile)(real *A, int64_t ld, const real *bias, int64_t n,
                                      int64_t m, int32_t activation)
{
    map_rows(A, ld, bias, n, m, activation);
}

/* D (n rows of m, ld apart) times the activation's slope, from its
 * outputs A (laid out alike) */
static void derivative_rows(real *D, const real *A, int64_t ld, int64_t n, int64_t m,
                            int32_t activation)
{
    switch (activation) {
    case FM_LOGISTIC:
        /* two roundings, (d a)(1 - a), in that order */
        EACH_ROW2(d[i] = d[i] * a[i] * (1 - a[i]))
        break;
    case FM_TANH:
        EACH_ROW2(d[i] *= 1 - a[i] * a[i])
        break;
    case FM_RELU:
        EACH_ROW2(d[i] = a[i] == 0 ? 0 : d[i])
        break;
    case FM_EXP:
        EACH_ROW2(d[i] *= a[i])
        break;
    case FM_LEAKY_RELU:
        EACH_ROW2(d[i] *= a[i] > 0 ? 1 : (real)FM_LEAKY_SLOPE)
        break;
    case FM_ELU:
        EACH_ROW2(d[i] *= a[i] > 0 ? 1 : a[i] + 1)
        break;
    case FM_SOFTPLUS:
        /* the logistic of z, 1 - e^(-a) */
        EACH_ROW2(d[i] *= -fm_expm1(-a[i]))
        break;
    default:
        break;
    }
}

/* GELU and SiLU: the slope from the pre-activation z. */
static void derivative_from_z(real *FM_RESTRICT dZ, const real *FM_RESTRICT Z, int64_t len,
                                     int32_t activation)
{
    if (activation == FM_GELU) {
        for (int64_t i = 0; i < len; i++) {
            const real z = Z[i];
            const real cdf = (real)0.5 * (1 + fm_erf(z * (real)0.70710678118654752440));
            const real pdf = fm_exp((real)-0.5 * z * z) * (real)0.39894228040143267794;
            dZ[i] *= cdf + z * pdf;
        }
    } else {
        for (int64_t i = 0; i < len; i++) {
            const real s = 1 / (1 + fm_exp(-Z[i]));
            dZ[i] *= s * (1 + Z[i] * (1 - s));
        }
    }
}


void FM_FN(fm_activation_backward_tile)(real *dZ, const real *A, int64_t ld, int64_t n,
                                       int64_t m, int32_t activation)
{
    derivative_rows(dZ, A, ld, n, m, activation);
}

void FM_FN(fm_activation_backward)(real *dZ, const real *A, const real *Z, int64_t n,
                                   int64_t m, int32_t activation)
{
    if (fm_needs_preactivation(activation)) {
        derivative_from_z(dZ, Z, n * m, activation);
        return;
    }
    if (activation != FM_SOFTMAX) {
        derivative_rows(dZ, A, n * m, 1, n * m, activation);
        return;
    }
    for (int64_t i = 0; i < n; i++) {
        real *d = dZ + i * m;
        const real *a = A + i * m;
        real inner = 0;
        for (int64_t k = 0; k < m; k++) inner += d[k] * a[k];
        for (int64_t k = 0; k < m; k++) d[k] = a[k] * (d[k] - inner);
    }
}
