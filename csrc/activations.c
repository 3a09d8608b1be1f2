/* Activations, applied in place after a layer's affine map, and their
 * derivatives, written in terms of the activation's output (the value the
 * forward pass keeps), as in fastmlp.h's fm_activation table. */
#include <tgmath.h>

#include "common.h"

FM_HOT static void softmax_rows(real *restrict A, int64_t n, int64_t m)
{
    if (m < 1) return;
    for (int64_t i = 0; i < n; i++) {
        real *restrict a = A + i * m;
        real top = a[0];
        for (int64_t k = 1; k < m; k++) top = a[k] > top ? a[k] : top;
        real sum = 0;
        for (int64_t k = 0; k < m; k++) {
            a[k] = exp(a[k] - top);
            sum += a[k];
        }
        for (int64_t k = 0; k < m; k++) a[k] /= sum;
    }
}

FM_HOT static void map_inplace(real *restrict A, int64_t len, int32_t activation)
{
    switch (activation) {
    case FM_LOGISTIC:
        for (int64_t i = 0; i < len; i++) A[i] = 1 / (1 + exp(-A[i]));
        break;
    case FM_TANH:
        for (int64_t i = 0; i < len; i++) A[i] = tanh(A[i]);
        break;
    case FM_RELU:
        /* keeps NaN, as max(z, 0) with NaN propagation does */
        for (int64_t i = 0; i < len; i++) A[i] = A[i] < 0 ? 0 : A[i];
        break;
    case FM_EXP:
        for (int64_t i = 0; i < len; i++) A[i] = exp(A[i]);
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

FM_HOT static void derivative_inplace(real *restrict dZ, const real *restrict A,
                                      int64_t len, int32_t activation)
{
    switch (activation) {
    case FM_LOGISTIC:
        /* two roundings, (d a)(1 - a), in that order */
        for (int64_t i = 0; i < len; i++) dZ[i] = dZ[i] * A[i] * (1 - A[i]);
        break;
    case FM_TANH:
        for (int64_t i = 0; i < len; i++) dZ[i] *= 1 - A[i] * A[i];
        break;
    case FM_RELU:
        for (int64_t i = 0; i < len; i++) dZ[i] = A[i] == 0 ? 0 : dZ[i];
        break;
    case FM_EXP:
        for (int64_t i = 0; i < len; i++) dZ[i] *= A[i];
        break;
    default:
        break;
    }
}

void FM_FN(fm_activation_backward)(real *dZ, const real *A, int64_t n, int64_t m,
                                   int32_t activation)
{
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
