# Declarations of the C API in csrc/fastmlp.h (see that header for the math
# and the shapes of every argument).
from libc.stdint cimport int32_t, int64_t, uint32_t, uint64_t


cdef extern from "fastmlp.h" nogil:
    const int64_t FM_STEP_CHUNK
    ctypedef enum fm_status:
        FM_OK
        FM_ERR_ARGUMENT
        FM_ERR_INTERRUPTED
        FM_ERR_NONFINITE

    ctypedef enum fm_dtype:
        FM_FLOAT32
        FM_FLOAT64

    ctypedef enum fm_activation:
        FM_IDENTITY
        FM_LOGISTIC
        FM_TANH
        FM_RELU
        FM_EXP
        FM_SOFTMAX
        FM_LEAKY_RELU
        FM_ELU
        FM_GELU
        FM_SOFTPLUS
        FM_SILU

    ctypedef enum fm_loss:
        FM_SQUARED_ERROR
        FM_LOG_LOSS
        FM_BINARY_LOG_LOSS
        FM_POISSON

    ctypedef enum fm_solver:
        FM_SGD
        FM_ADAM
        FM_ADAMW
        FM_RPROP

    ctypedef struct fm_net:
        int64_t n_layers
        const int64_t *units
        const int32_t *activation
        int32_t loss
        double alpha
        const double *dropout
        uint64_t dropout_seed

    ctypedef struct fm_data:
        int64_t n_samples
        const void *x
        const int64_t *indptr
        const int64_t *indices
        const void *values
        const void *y
        const void *sample_weight

    ctypedef struct fm_optimizer:
        int32_t solver
        double learning_rate
        double momentum
        int32_t nesterov
        double beta_1
        double beta_2
        double epsilon
        int64_t t
        double weight_decay
        double clip_norm

    const int FM_MAX_THREADS
    const int FM_LINE

    ctypedef struct fm_tuner:
        int32_t max
        int32_t threads

    fm_status fm_check_net(const fm_net *net)
    int64_t fm_n_params(const fm_net *net)
    int64_t fm_weight_offset(const fm_net *net, int64_t layer)
    int64_t fm_bias_offset(const fm_net *net, int64_t layer)
    int64_t fm_workspace_bytes(const fm_net *net, int64_t rows, fm_dtype dtype,
                               int n_threads)
    int64_t fm_pack_bytes(fm_dtype dtype, int n_threads)

    ctypedef struct fm_mt19937:
        uint32_t key[624]
        int32_t pos

    fm_status fm_shuffle(fm_mt19937 *rng, int64_t *x, int64_t n)

    ctypedef enum fm_schedule:
        FM_CONSTANT
        FM_INVSCALING
        FM_ADAPTIVE

    ctypedef enum fm_event:
        FM_EVENT_NONE
        FM_EVENT_STOP
        FM_EVENT_STOP_LR_TOO_SMALL
        FM_EVENT_LR_REDUCED
        FM_EVENT_DIVERGED

    ctypedef struct fm_run:
        int64_t max_epochs
        int32_t shuffle
        int32_t watch_loss
        int32_t schedule
        double tol
        double n_iter_no_change
        double learning_rate_init
        double power_t
        int64_t t
        double best_loss
        int64_t no_improvement
        int64_t step
        int64_t epochs
        int32_t event
        int32_t finish_epoch

    fm_status fm_train(fm_dtype dtype, void *params, void *grads, void *state,
                       void *snapshot, void *work, double *loss_curve, int64_t *order,
                       int64_t n_rows, fm_run *run, fm_mt19937 *rng, const fm_data *data,
                       const fm_net *net, fm_optimizer *opt, int64_t batch_size,
                       int64_t chunk, int n_threads, fm_tuner *tuner,
                       const volatile int *interrupt)
    fm_status fm_loss_grad(fm_dtype dtype, void *grads, double *loss, void *work,
                           const fm_data *data, const void *params, const fm_net *net,
                           int64_t chunk, int n_threads, fm_tuner *tuner,
                           const volatile int *interrupt)
    fm_status fm_loss_grad_sums(fm_dtype dtype, void *grads, double *wloss, double *wsum,
                                void *work, const fm_data *data, const int64_t *rows,
                                int64_t n_rows, const void *params, const fm_net *net,
                                int64_t chunk, int n_threads, fm_tuner *tuner,
                                const volatile int *interrupt)
    fm_status fm_loss_grad_finish(fm_dtype dtype, void *grads, double *loss, double wloss,
                                  double wsum, const void *params, const fm_net *net)
    fm_status fm_predict(fm_dtype dtype, void *out, void *work, const fm_data *data,
                         const int64_t *rows, int64_t n_rows, const void *params,
                         const fm_net *net, int64_t chunk, int n_threads, fm_tuner *tuner,
                         int check_finite, const volatile int *interrupt)

    void fm_dense_forward(fm_dtype dtype, void *Y, const void *X, const int64_t *rows,
                          const void *W, const void *b, int32_t activation, int64_t n,
                          int64_t n_in, int64_t n_out, void *pack, int n_threads)
    void fm_csr_dense_forward(fm_dtype dtype, void *Y, const int64_t *indptr,
                              const int64_t *indices, const void *values,
                              const int64_t *rows, const void *W, const void *b,
                              int32_t activation, int64_t n, int64_t n_in, int64_t n_out,
                              int n_threads)
    void fm_dense_backward_data(fm_dtype dtype, void *dX, const void *dY, const void *W,
                                const void *A, int32_t activation, int64_t n, int64_t n_in,
                                int64_t n_out, void *pack, int n_threads)
    void fm_dense_backward_params(fm_dtype dtype, void *dW, void *db, const void *X,
                                  const int64_t *rows, const void *dY, int64_t n,
                                  int64_t n_in, int64_t n_out, void *pack, int n_threads)
    void fm_csr_backward_params(fm_dtype dtype, void *dW, void *db,
                                const int64_t *indptr, const int64_t *indices,
                                const void *values, const int64_t *rows,
                                const void *dY, int64_t n, int64_t n_in, int64_t n_out,
                                int n_threads)
    void fm_dense_forward_naive(fm_dtype dtype, void *Y, const void *X,
                                const int64_t *rows, const void *W, const void *b,
                                int64_t n, int64_t n_in, int64_t n_out)
    void fm_dense_backward_data_naive(fm_dtype dtype, void *dX, const void *dY,
                                      const void *W, int64_t n, int64_t n_in,
                                      int64_t n_out)
    void fm_dense_backward_params_naive(fm_dtype dtype, void *dW, void *db,
                                        const void *X, const int64_t *rows,
                                        const void *dY, int64_t n, int64_t n_in,
                                        int64_t n_out)
    void fm_activation_forward(fm_dtype dtype, void *A, int64_t n, int64_t m,
                               int32_t activation)
    void fm_activation_backward(fm_dtype dtype, void *dZ, const void *A, const void *Z,
                                int64_t n, int64_t m, int32_t activation)
    void fm_loss_forward(fm_dtype dtype, double *l, const void *P, const void *Y,
                         const int64_t *rows, int64_t n, int64_t K, int32_t loss)
    void fm_loss_backward(fm_dtype dtype, void *dZ, const void *P, const void *Y,
                          const void *sample_weight, const int64_t *rows, int64_t n,
                          int64_t K)
    double fm_optimizer_step(fm_dtype dtype, void *params, void *state, const void *grads,
                             int64_t n, int64_t n_weights, double alpha, double S,
                             fm_optimizer *opt, double *partials, int n_threads)
    void fm_two_class(fm_dtype dtype, void *out, int64_t n)
    const double FM_LEAKY_SLOPE

    const char *fm_isa()
    const char *fm_isa_built()
    int fm_isa_supported(const char *name)
    fm_status fm_set_isa(const char *name)
    const char *fm_kernel(fm_dtype dtype)
    const char *fm_threads_backend()
    int fm_workers_alive()

    int fm_interrupt_catch()
    void fm_interrupt_release()
    const volatile int *fm_interrupt_flag()
