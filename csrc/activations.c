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

static void map_inplace(real *FM_RESTRICT A, int64_t len, int32_t activation)
{
    switch (activation) {
    case FM_LOGISTIC:
        FM_SHORT_LOOP
        for (int64_t i = 0; i < len; i++) A[i] = 1 / (1 + fm_exp(-A[i]));
        break;
    case FM_TANH:
        FM_SHORT_LOOP
        for (int64_t i = 0; i < len; i++) A[i] = fm_tanh(A[i]);
        break;
    case FM_RELU:
        /* keeps NaN, as max(z, 0) with NaN propagation does */
        FM_SHORT_LOOP
        for (int64_t i = 0; i < len; i++) A[i] = A[i] < 0 ? 0 : A[i];
        break;
    case FM_EXP:
        FM_SHORT_LOOP
        for (int64_t i = 0; i < len; i++) A[i] = fm_exp(A[i]);
        break;
    case FM_LEAKY_RELU:
        FM_SHORT_LOOP
        for (int64_t i = 0; i < len; i++) A[i] = A[i] < 0 ? (real)FM_LEAKY_SLOPE * A[i] : A[i];
        break;
    case FM_ELU:
        FM_SHORT_LOOP
        for (int64_t i = 0; i < len; i++) A[i] = A[i] > 0 ? A[i] : fm_expm1(A[i]);
        break;
    case FM_GELU:
        FM_SHORT_LOOP
        for (int64_t i = 0; i < len; i++)
            A[i] = (real)0.5 * A[i] * (1 + fm_erf(A[i] * (real)0.70710678118654752440));
        break;
    case FM_SOFTPLUS:
        /* z beyond the threshold: log(1 + e^z) is z to working precision */
        FM_SHORT_LOOP
        for (int64_t i = 0; i < len; i++) A[i] = A[i] > 20 ? A[i] : fm_log1p(fm_exp(A[i]));
        break;
    case FM_SILU:
        FM_SHORT_LOOP
        for (int64_t i = 0; i < len; i++) A[i] = A[i] / (1 + fm_exp(-A[i]));
        break;
    default:
        break;
    }
}

void FM_FN(fm_activation_forward)(real *A, int64_t n, int64_t m, int32_t activation)
{
    if (activation == FM_SOFTMAX)
        softmax_rows(A, n, m);
    else
        map_inplace(A, n * m, activation);
}

void FM_FN(fm_activation_forward_tile)(real *A, int64_t ld, int64_t n, int64_t m,
                                      int32_t activation)
{
    for (int64_t r = 0; r < n; r++) map_inplace(A + r * ld, m, activation);
}

static void derivative_inplace(real *FM_RESTRICT dZ, const real *FM_RESTRICT A,
                                      int64_t len, int32_t activation)
{
    switch (activation) {
    case FM_LOGISTIC:
        /* two roundings, (d a)(1 - a), in that order */
        FM_SHORT_LOOP
        for (int64_t i = 0; i < len; i++) dZ[i] = dZ[i] * A[i] * (1 - A[i]);
        break;
    case FM_TANH:
        FM_SHORT_LOOP
        for (int64_t i = 0; i < len; i++) dZ[i] *= 1 - A[i] * A[i];
        break;
    case FM_RELU:
        FM_SHORT_LOOP
        for (int64_t i = 0; i < len; i++) dZ[i] = A[i] == 0 ? 0 : dZ[i];
        break;
    case FM_EXP:
        FM_SHORT_LOOP
        for (int64_t i = 0; i < len; i++) dZ[i] *= A[i];
        break;
    case FM_LEAKY_RELU:
        FM_SHORT_LOOP
        for (int64_t i = 0; i < len; i++) dZ[i] *= A[i] > 0 ? 1 : (real)FM_LEAKY_SLOPE;
        break;
    case FM_ELU:
        FM_SHORT_LOOP
        for (int64_t i = 0; i < len; i++) dZ[i] *= A[i] > 0 ? 1 : A[i] + 1;
        break;
    case FM_SOFTPLUS:
        /* the logistic of z, 1 - e^(-a) */
        FM_SHORT_LOOP
        for (int64_t i = 0; i < len; i++) dZ[i] *= -fm_expm1(-A[i]);
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
    for (int64_t r = 0; r < n; r++) derivative_inplace(dZ + r * ld, A + r * ld, m, activation);
}

void FM_FN(fm_activation_backward)(real *dZ, const real *A, const real *Z, int64_t n,
                                   int64_t m, int32_t activation)
{
    if (fm_needs_preactivation(activation)) {
        derivative_from_z(dZ, Z, n * m, activation);
        return;
    }
    if (activation != FM_SOFTMAX) {
        derivative_inplace(dZ, A, n * m, activation);
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
