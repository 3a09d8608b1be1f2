/* The three matrix products of a dense layer, dense and CSR input.
 *
 *   forward          Y  [n x n_out] = X [n x n_in] W [n_in x n_out] + b
 *   backward data    dX [n x n_in]  = dY [n x n_out] W^T
 *   backward params  dW [n_in x n_out] += X^T dY,  db [n_out] += sum_i dY_i
 *
 * Threads split the rows of the output (rows of Y and dX, rows of dW, column
 * blocks of dW for CSR) in whole blocks of FM_ROW_BLOCK, so every output
 * element is summed by one thread, in ascending order of the reduced index,
 * down the same code path whatever the thread count: results are
 * bit-identical for any n_threads.
 */
#include <string.h>

#include "common.h"

#define FM_ROW_BLOCK 4
#define FM_COL_BLOCK 64

/* Number of blocks of `block` covering n. */
static inline int64_t n_blocks(int64_t n, int64_t block) { return (n + block - 1) / block; }

/* ---- forward ------------------------------------------------------------ */

/* Rows [i0, i1) of Y = X W + b. Four rows share each row of W read from
 * cache; the sum over k runs in ascending order for every row. */
FM_HOT static void forward_rows(real *restrict Y, const real *restrict X,
                                const real *restrict W, const real *restrict b,
                                int64_t i0, int64_t i1, int64_t n_in, int64_t n_out)
{
    int64_t i = i0;
    for (; i + 4 <= i1; i += 4) {
        real *restrict y0 = Y + i * n_out, *restrict y1 = y0 + n_out;
        real *restrict y2 = y1 + n_out, *restrict y3 = y2 + n_out;
        const real *x0 = X + i * n_in, *x1 = x0 + n_in, *x2 = x1 + n_in, *x3 = x2 + n_in;
        memset(y0, 0, (size_t)(4 * n_out) * sizeof(real));
        for (int64_t k = 0; k < n_in; k++) {
            const real *restrict w = W + k * n_out;
            const real a0 = x0[k], a1 = x1[k], a2 = x2[k], a3 = x3[k];
            for (int64_t j = 0; j < n_out; j++) {
                const real wj = w[j];
                y0[j] += a0 * wj;
                y1[j] += a1 * wj;
                y2[j] += a2 * wj;
                y3[j] += a3 * wj;
            }
        }
        for (int64_t j = 0; j < n_out; j++) {
            y0[j] += b[j];
            y1[j] += b[j];
            y2[j] += b[j];
            y3[j] += b[j];
        }
    }
    for (; i < i1; i++) {
        real *restrict y = Y + i * n_out;
        const real *x = X + i * n_in;
        memset(y, 0, (size_t)n_out * sizeof(real));
        for (int64_t k = 0; k < n_in; k++) {
            const real *restrict w = W + k * n_out;
            const real a = x[k];
            for (int64_t j = 0; j < n_out; j++) y[j] += a * w[j];
        }
        for (int64_t j = 0; j < n_out; j++) y[j] += b[j];
    }
}

void FM_FN(fm_dense_forward)(real *Y, const real *X, const real *W, const real *b,
                             int64_t n, int64_t n_in, int64_t n_out, int n_threads)
{
    const int64_t nb = n_blocks(n, FM_ROW_BLOCK);
    (void)n_threads;
#pragma omp parallel for schedule(static) num_threads(n_threads) \
    if (n * n_in * n_out > FM_PARALLEL_MIN_WORK && nb > 1)
    for (int64_t blk = 0; blk < nb; blk++) {
        const int64_t i0 = blk * FM_ROW_BLOCK;
        forward_rows(Y, X, W, b, i0, fm_min64(i0 + FM_ROW_BLOCK, n), n_in, n_out);
    }
}

/* Rows [i0, i1) of Y = X W + b for CSR X. */
FM_HOT static void csr_forward_rows(real *restrict Y, const int64_t *indptr,
                                    const int64_t *indices, const real *values,
                                    const int64_t *rows, const real *restrict W,
                                    const real *restrict b, int64_t i0, int64_t i1,
                                    int64_t n_out)
{
    for (int64_t i = i0; i < i1; i++) {
        const int64_t r = rows ? rows[i] : i;
        real *restrict y = Y + i * n_out;
        memset(y, 0, (size_t)n_out * sizeof(real));
        for (int64_t p = indptr[r]; p < indptr[r + 1]; p++) {
            const real *restrict w = W + indices[p] * n_out;
            const real a = values[p];
            for (int64_t j = 0; j < n_out; j++) y[j] += a * w[j];
        }
        for (int64_t j = 0; j < n_out; j++) y[j] += b[j];
    }
}

void FM_FN(fm_csr_dense_forward)(real *Y, const int64_t *indptr, const int64_t *indices,
                                 const real *values, const int64_t *rows, const real *W,
                                 const real *b, int64_t n, int64_t n_in, int64_t n_out,
                                 int n_threads)
{
    const int64_t nb = n_blocks(n, FM_ROW_BLOCK);
    (void)n_in;
    (void)n_threads;
#pragma omp parallel for schedule(static) num_threads(n_threads) \
    if (n * n_out * 8 > FM_PARALLEL_MIN_WORK && nb > 1)
    for (int64_t blk = 0; blk < nb; blk++) {
        const int64_t i0 = blk * FM_ROW_BLOCK;
        csr_forward_rows(Y, indptr, indices, values, rows, W, b, i0,
                         fm_min64(i0 + FM_ROW_BLOCK, n), n_out);
    }
}

/* ---- backward, data ------------------------------------------------------ */

/* sum_j a_j b_j with eight interleaved partial sums combined in a fixed tree. */
FM_HOT static real dot(const real *restrict a, const real *restrict b, int64_t n)
{
    real s[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    int64_t j = 0;
    for (; j + 8 <= n; j += 8)
        for (int u = 0; u < 8; u++) s[u] += a[j + u] * b[j + u];
    real t = ((s[0] + s[1]) + (s[2] + s[3])) + ((s[4] + s[5]) + (s[6] + s[7]));
    for (; j < n; j++) t += a[j] * b[j];
    return t;
}

FM_HOT static void backward_data_rows(real *restrict dX, const real *restrict dY,
                                      const real *restrict W, int64_t i0, int64_t i1,
                                      int64_t n_in, int64_t n_out)
{
    for (int64_t i = i0; i < i1; i++)
        for (int64_t k = 0; k < n_in; k++)
            dX[i * n_in + k] = dot(dY + i * n_out, W + k * n_out, n_out);
}

void FM_FN(fm_dense_backward_data)(real *dX, const real *dY, const real *W, int64_t n,
                                   int64_t n_in, int64_t n_out, int n_threads)
{
    const int64_t nb = n_blocks(n, FM_ROW_BLOCK);
    (void)n_threads;
#pragma omp parallel for schedule(static) num_threads(n_threads) \
    if (n * n_in * n_out > FM_PARALLEL_MIN_WORK && nb > 1)
    for (int64_t blk = 0; blk < nb; blk++) {
        const int64_t i0 = blk * FM_ROW_BLOCK;
        backward_data_rows(dX, dY, W, i0, fm_min64(i0 + FM_ROW_BLOCK, n), n_in, n_out);
    }
}

/* ---- backward, parameters ------------------------------------------------ */

/* Rows [k0, k1) of dW += X^T dY: four rows of dW share each row of dY; the
 * sum over samples runs in ascending order. */
FM_HOT static void backward_params_rows(real *restrict dW, const real *restrict X,
                                        const real *restrict dY, int64_t k0, int64_t k1,
                                        int64_t n, int64_t n_in, int64_t n_out)
{
    int64_t k = k0;
    for (; k + 4 <= k1; k += 4) {
        real *restrict g0 = dW + k * n_out, *restrict g1 = g0 + n_out;
        real *restrict g2 = g1 + n_out, *restrict g3 = g2 + n_out;
        for (int64_t i = 0; i < n; i++) {
            const real *x = X + i * n_in + k;
            const real *restrict d = dY + i * n_out;
            const real a0 = x[0], a1 = x[1], a2 = x[2], a3 = x[3];
            for (int64_t j = 0; j < n_out; j++) {
                const real dj = d[j];
                g0[j] += a0 * dj;
                g1[j] += a1 * dj;
                g2[j] += a2 * dj;
                g3[j] += a3 * dj;
            }
        }
    }
    for (; k < k1; k++) {
        real *restrict g = dW + k * n_out;
        for (int64_t i = 0; i < n; i++) {
            const real a = X[i * n_in + k];
            const real *restrict d = dY + i * n_out;
            for (int64_t j = 0; j < n_out; j++) g[j] += a * d[j];
        }
    }
}

/* db += sum_i dY_i, serially in ascending i. */
static void bias_grad(real *restrict db, const real *restrict dY, int64_t n, int64_t n_out)
{
    for (int64_t i = 0; i < n; i++)
        for (int64_t j = 0; j < n_out; j++) db[j] += dY[i * n_out + j];
}

void FM_FN(fm_dense_backward_params)(real *dW, real *db, const real *X, const real *dY,
                                     int64_t n, int64_t n_in, int64_t n_out,
                                     int n_threads)
{
    const int64_t nb = n_blocks(n_in, FM_ROW_BLOCK);
    (void)n_threads;
#pragma omp parallel for schedule(static) num_threads(n_threads) \
    if (n * n_in * n_out > FM_PARALLEL_MIN_WORK && nb > 1)
    for (int64_t blk = 0; blk < nb; blk++) {
        const int64_t k0 = blk * FM_ROW_BLOCK;
        backward_params_rows(dW, X, dY, k0, fm_min64(k0 + FM_ROW_BLOCK, n_in), n, n_in,
                             n_out);
    }
    bias_grad(db, dY, n, n_out);
}

/* Columns [j0, j1) of dW += X^T dY for CSR X: each thread owns whole column
 * blocks of dW and walks every sample in order, so no two threads write the
 * same element. */
FM_HOT static void csr_backward_params_cols(real *restrict dW, const int64_t *indptr,
                                            const int64_t *indices, const real *values,
                                            const int64_t *rows, const real *restrict dY,
                                            int64_t j0, int64_t j1, int64_t n,
                                            int64_t n_out)
{
    for (int64_t i = 0; i < n; i++) {
        const int64_t r = rows ? rows[i] : i;
        const real *restrict d = dY + i * n_out;
        for (int64_t p = indptr[r]; p < indptr[r + 1]; p++) {
            real *restrict g = dW + indices[p] * n_out;
            const real a = values[p];
            for (int64_t j = j0; j < j1; j++) g[j] += a * d[j];
        }
    }
}

void FM_FN(fm_csr_backward_params)(real *dW, real *db, const int64_t *indptr,
                                   const int64_t *indices, const real *values,
                                   const int64_t *rows, const real *dY, int64_t n,
                                   int64_t n_in, int64_t n_out, int n_threads)
{
    const int64_t nb = n_blocks(n_out, FM_COL_BLOCK);
    (void)n_in;
    (void)n_threads;
#pragma omp parallel for schedule(static) num_threads(n_threads) \
    if (n * n_out * 8 > FM_PARALLEL_MIN_WORK && nb > 1)
    for (int64_t blk = 0; blk < nb; blk++) {
        const int64_t j0 = blk * FM_COL_BLOCK;
        csr_backward_params_cols(dW, indptr, indices, values, rows, dY, j0,
                                 fm_min64(j0 + FM_COL_BLOCK, n_out), n, n_out);
    }
    bias_grad(db, dY, n, n_out);
}
