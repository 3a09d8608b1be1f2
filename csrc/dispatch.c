/* The dtype-dispatching entry points of fastmlp.h: each forwards to the
 * _f32 or _f64 build of the generic sources. */
#include "fastmlp.h"

#define FM_REAL_F32
#include "real.h"
#include "kernels.h"
#undef FM_REAL_F32
#include "real.h"
#include "kernels.h"

#define DISPATCH(name, ...)                                                         \
    ((dtype) == FM_FLOAT32 ? name##_f32(__VA_ARGS__) : name##_f64(__VA_ARGS__))

fm_status fm_train(fm_dtype dtype, void *params, void *grads, void *state, void *snapshot,
                   void *work, double *loss_curve, int64_t *order, int64_t n_rows,
                   fm_run *run, fm_mt19937 *rng, const fm_data *data, const fm_net *net,
                   fm_optimizer *opt, int64_t batch_size, int64_t chunk, int n_threads,
                   const volatile int *interrupt)
{
    return DISPATCH(fm_train, params, grads, state, snapshot, work, loss_curve, order, n_rows,
                    run, rng, data, net, opt, batch_size, chunk, n_threads, interrupt);
}

fm_status fm_loss_grad(fm_dtype dtype, void *grads, double *loss, void *work,
                       const fm_data *data, const void *params, const fm_net *net,
                       int64_t chunk, int n_threads)
{
    return DISPATCH(fm_loss_grad, grads, loss, work, data, params, net, chunk, n_threads);
}

fm_status fm_predict(fm_dtype dtype, void *out, void *work, const fm_data *data,
                     const int64_t *rows, int64_t n_rows, const void *params,
                     const fm_net *net, int64_t chunk, int n_threads, int check_finite)
{
    return DISPATCH(fm_predict, out, work, data, rows, n_rows, params, net, chunk,
                    n_threads, check_finite);
}

void fm_dense_forward(fm_dtype dtype, void *Y, const void *X, const int64_t *rows,
                      const void *W, const void *b, int32_t activation, int64_t n,
                      int64_t n_in, int64_t n_out, void *pack, int n_threads)
{
    DISPATCH(fm_dense_forward, Y, X, rows, W, b, activation, n, n_in, n_out, pack, n_threads);
}

void fm_csr_dense_forward(fm_dtype dtype, void *Y, const int64_t *indptr,
                          const int64_t *indices, const void *values, const int64_t *rows,
                          const void *W, const void *b, int32_t activation, int64_t n,
                          int64_t n_in, int64_t n_out, int n_threads)
{
    DISPATCH(fm_csr_dense_forward, Y, indptr, indices, values, rows, W, b, activation, n,
             n_in, n_out, n_threads);
}

void fm_dense_backward_data(fm_dtype dtype, void *dX, const void *dY, const void *W,
                            const void *A, int32_t activation, int64_t n, int64_t n_in,
                            int64_t n_out, void *pack, int n_threads)
{
    DISPATCH(fm_dense_backward_data, dX, dY, W, A, activation, n, n_in, n_out, pack,
             n_threads);
}

void fm_dense_backward_params(fm_dtype dtype, void *dW, void *db, const void *X,
                              const int64_t *rows, const void *dY, int64_t n, int64_t n_in,
                              int64_t n_out, void *pack, int n_threads)
{
    DISPATCH(fm_dense_backward_params, dW, db, X, rows, dY, n, n_in, n_out, pack, n_threads);
}

void fm_csr_backward_params(fm_dtype dtype, void *dW, void *db, const int64_t *indptr,
                            const int64_t *indices, const void *values,
                            const int64_t *rows, const void *dY, int64_t n, int64_t n_in,
                            int64_t n_out, int n_threads)
{
    DISPATCH(fm_csr_backward_params, dW, db, indptr, indices, values, rows, dY, n, n_in,
             n_out, n_threads);
}

void fm_dense_forward_naive(fm_dtype dtype, void *Y, const void *X, const int64_t *rows,
                            const void *W, const void *b, int64_t n, int64_t n_in,
                            int64_t n_out)
{
    DISPATCH(fm_dense_forward_naive, Y, X, rows, W, b, n, n_in, n_out);
}

void fm_dense_backward_data_naive(fm_dtype dtype, void *dX, const void *dY, const void *W,
                                  int64_t n, int64_t n_in, int64_t n_out)
{
    DISPATCH(fm_dense_backward_data_naive, dX, dY, W, n, n_in, n_out);
}

void fm_dense_backward_params_naive(fm_dtype dtype, void *dW, void *db, const void *X,
                                    const int64_t *rows, const void *dY, int64_t n,
                                    int64_t n_in, int64_t n_out)
{
    DISPATCH(fm_dense_backward_params_naive, dW, db, X, rows, dY, n, n_in, n_out);
}

void fm_activation_forward(fm_dtype dtype, void *A, int64_t n, int64_t m,
                           int32_t activation)
{
    DISPATCH(fm_activation_forward, A, n, m, activation);
}

void fm_activation_backward(fm_dtype dtype, void *dZ, const void *A, const void *Z,
                            int64_t n, int64_t m, int32_t activation)
{
    DISPATCH(fm_activation_backward, dZ, A, Z, n, m, activation);
}

void fm_loss_forward(fm_dtype dtype, double *l, const void *P, const void *Y,
                     const int64_t *rows, int64_t n, int64_t K, int32_t loss)
{
    DISPATCH(fm_loss_forward, l, P, Y, rows, n, K, loss);
}

void fm_loss_backward(fm_dtype dtype, void *dZ, const void *P, const void *Y,
                      const void *sample_weight, const int64_t *rows, int64_t n, int64_t K)
{
    DISPATCH(fm_loss_backward, dZ, P, Y, sample_weight, rows, n, K);
}

double fm_optimizer_step(fm_dtype dtype, void *params, void *state, const void *grads,
                         int64_t n, int64_t n_weights, double alpha, double S,
                         fm_optimizer *opt, double *partials, int n_threads)
{
    return DISPATCH(fm_optimizer_step, params, state, grads, n, n_weights, alpha, S, opt,
                    partials, n_threads);
}

int fm_all_finite(fm_dtype dtype, const void *x, int64_t n)
{
    return DISPATCH(fm_all_finite, x, n);
}

void fm_two_class(fm_dtype dtype, void *out, int64_t n)
{
    DISPATCH(fm_two_class, out, n);
}
