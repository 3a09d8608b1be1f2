/* Typed prototypes of the generic sources, for the precision and instruction
 * set real.h selected. No include guard: included once per variant. The math of each kernel is
 * documented beside its dtype-dispatching twin in fastmlp.h. */
#include <stdint.h>

#include "fastmlp.h"

/* Rows of one batch as the first layer sees them: x (dense input) or
 * indptr/indices/values (CSR input). Row i of the batch is row rows[i] of
 * x, y and sw (NULL for unit weights), or row i when rows is NULL. */
typedef struct FM_FN(fm_batch) {
    const real *x;
    const int64_t *indptr;
    const int64_t *indices;
    const real *values;
    const int64_t *rows;
    const real *y;
    const real *sw;
} FM_FN(fm_batch);

void FM_FN(fm_dense_forward)(real *Y, const real *X, const int64_t *rows, const real *W,
                             const real *b, int32_t activation, int64_t n, int64_t n_in,
                             int64_t n_out, void *pack, int n_threads);
void FM_FN(fm_csr_dense_forward)(real *Y, const int64_t *indptr, const int64_t *indices,
                                 const real *values, const int64_t *rows, const real *W,
                                 const real *b, int32_t activation, int64_t n, int64_t n_in,
                                 int64_t n_out, int n_threads);
void FM_FN(fm_dense_backward_data)(real *dX, const real *dY, const real *W, const real *A,
                                   int32_t activation, int64_t n, int64_t n_in,
                                   int64_t n_out, void *pack, int n_threads);
void FM_FN(fm_dense_backward_params)(real *dW, real *db, const real *X, const int64_t *rows,
                                     const real *dY, int64_t n, int64_t n_in, int64_t n_out,
                                     void *pack, int n_threads);
/* The same, writing dW and db (add = 0) instead of adding into them. */
void FM_FN(fm_dense_backward_params_to)(real *dW, real *db, const real *X,
                                        const int64_t *rows, const real *dY, int64_t n,
                                        int64_t n_in, int64_t n_out, void *pack,
                                        int n_threads, int add);
void FM_FN(fm_csr_backward_params)(real *dW, real *db, const int64_t *indptr,
                                   const int64_t *indices, const real *values,
                                   const int64_t *rows, const real *dY, int64_t n,
                                   int64_t n_in, int64_t n_out, int n_threads);
/* the direct loops: small products, and the reference of the packed GEMM */
void FM_FN(fm_dense_forward_naive)(real *Y, const real *X, const int64_t *rows,
                                   const real *W, const real *b, int64_t n, int64_t n_in,
                                   int64_t n_out);
void FM_FN(fm_dense_backward_data_naive)(real *dX, const real *dY, const real *W,
                                         int64_t n, int64_t n_in, int64_t n_out);
void FM_FN(fm_dense_backward_params_naive)(real *dW, real *db, const real *X,
                                           const int64_t *rows, const real *dY, int64_t n,
                                           int64_t n_in, int64_t n_out);

void FM_FN(fm_activation_forward)(real *A, int64_t n, int64_t m, int32_t activation);
void FM_FN(fm_activation_backward)(real *dZ, const real *A, const real *Z, int64_t n,
                                   int64_t m, int32_t activation);
/* The same on the n x m tile whose rows start ld elements apart: bias
 * (one value a column, or NULL) added, then an elementwise f (not softmax;
 * identity for none) in place, and dZ *= f'(A) for an f whose derivative
 * its outputs give (not softmax, GELU or SiLU). */
void FM_FN(fm_activation_forward_tile)(real *A, int64_t ld, const real *bias, int64_t n,
                                       int64_t m, int32_t activation);
void FM_FN(fm_activation_backward_tile)(real *dZ, const real *A, int64_t ld, int64_t n,
                                        int64_t m, int32_t activation);

void FM_FN(fm_loss_forward)(double *l, const real *P, const real *Y,
                            const int64_t *rows, int64_t n, int64_t K, int32_t loss);
void FM_FN(fm_loss_backward)(real *dZ, const real *P, const real *Y, const real *sw,
                             const int64_t *rows, int64_t n, int64_t K);

double FM_FN(fm_optimizer_step)(real *params, real *state, const real *grads, int64_t n,
                                int64_t n_weights, double alpha, double S, fm_optimizer *opt,
                                double *partials, int n_threads);
/* fm_optimizer_step on grads plus n_sums more gradient sums, sums [n_sums x
 * n], which each chunk of the step first adds into grads in order (grads
 * ends as their total, as after fm_add_sums over all of it). */
double FM_FN(fm_optimizer_step_sums)(real *params, real *state, real *grads, const real *sums,
                                     int64_t n_sums, int64_t n, int64_t n_weights, double alpha,
                                     double S, fm_optimizer *opt, double *partials,
                                     int n_threads);
/* grads[i] += sums[b n + i] for b = 0 .. n_sums - 1 in turn, i in [i0, i1) */
void FM_FN(fm_add_sums)(real *grads, const real *sums, int64_t n_sums, int64_t n, int64_t i0,
                        int64_t i1);
/* sum_i x_i^2 in double, in a fixed order */
double FM_FN(fm_sum_squares)(const real *x, int64_t n);

fm_status FM_FN(fm_train)(real *params, real *grads, real *state, real *snapshot,
                          void *work, double *loss_curve, int64_t *order, int64_t n_rows,
                          fm_run *run, fm_mt19937 *rng, const fm_data *data,
                          const fm_net *net, fm_optimizer *opt, int64_t batch_size,
                          int64_t chunk, int n_threads, fm_tuner *tuner,
                          const volatile int *interrupt);
fm_status FM_FN(fm_loss_grad)(real *grads, double *loss, void *work, const fm_data *data,
                              const real *params, const fm_net *net, int64_t chunk,
                              int n_threads, fm_tuner *tuner, const volatile int *interrupt);
fm_status FM_FN(fm_loss_grad_sums)(real *grads, double *wloss, double *wsum, void *work,
                                   const fm_data *data, const int64_t *rows, int64_t n_rows,
                                   const real *params, const fm_net *net, int64_t chunk,
                                   int n_threads, fm_tuner *tuner,
                                   const volatile int *interrupt);
fm_status FM_FN(fm_loss_grad_finish)(real *grads, double *loss, double wloss, double wsum,
                                     const real *params, const fm_net *net);
fm_status FM_FN(fm_predict)(real *out, void *work, const fm_data *data,
                            const int64_t *rows, int64_t n_rows, const real *params,
                            const fm_net *net, int64_t chunk, int n_threads,
                            fm_tuner *tuner, int check_finite,
                            const volatile int *interrupt);
int FM_FN(fm_all_finite)(const real *x, int64_t n);
void FM_FN(fm_two_class)(real *out, int64_t n);
/* "isa MRxNR", or "isa MRxNR/MRxNR" with a shorter second kernel, of this
 * variant's GEMM micro-kernels */
const char *FM_FN(fm_kernel_name)(void);
