/* The entry points of fastmlp.h that depend on the dtype and on the
 * instruction set: each forwards to the variant of the generic sources (see
 * real.h) for both, and the instruction set is chosen here, once, from what
 * this build has and what the CPU runs. */
#include <stdlib.h>
#include <string.h>

#include "compat.h"
#include "fastmlp.h"

/* The variants this build has: CMake compiles the generic sources for the
 * instruction sets of the target architecture and says which with one of
 * FM_VARIANTS_X86 (sse2, avx2, avx512), FM_VARIANTS_NEON (neon) or
 * FM_VARIANTS_GENERIC (generic). */
#if defined(FM_VARIANTS_X86) && !defined(FM_X86_64)
#error "configured for x86-64 but compiling for another architecture"
#endif
#if defined(FM_VARIANTS_NEON) && !defined(FM_AARCH64)
#error "configured for aarch64 but compiling for another architecture"
#endif

enum { ISA_GENERIC, ISA_SSE2, ISA_AVX2, ISA_AVX512, ISA_NEON, N_ISAS };
static const char *const isa_names[N_ISAS] = {"generic", "sse2", "avx2", "avx512", "neon"};

#if defined(FM_VARIANTS_X86)
#define FM_ISA sse2
#include "variant.h"
#undef FM_ISA
#define FM_ISA avx2
#include "variant.h"
#undef FM_ISA
#define FM_ISA avx512
#include "variant.h"
#undef FM_ISA
static const char built[] = "avx512 avx2 sse2";
#define CALL(isa, name, ...)                                                           \
    (isa == ISA_AVX512  ? PRECISION(avx512, name, __VA_ARGS__)                         \
     : isa == ISA_AVX2 ? PRECISION(avx2, name, __VA_ARGS__)                           \
                       : PRECISION(sse2, name, __VA_ARGS__))
#elif defined(FM_VARIANTS_NEON)
#define FM_ISA neon
#include "variant.h"
#undef FM_ISA
static const char built[] = "neon";
#define CALL(isa, name, ...) ((void)(isa), PRECISION(neon, name, __VA_ARGS__))
#else
#define FM_ISA generic
#include "variant.h"
#undef FM_ISA
static const char built[] = "generic";
#define CALL(isa, name, ...) ((void)(isa), PRECISION(generic, name, __VA_ARGS__))
#endif

#define PRECISION(isa, name, ...)                                                      \
    (dtype == FM_FLOAT32 ? name##_f32_##isa(__VA_ARGS__) : name##_f64_##isa(__VA_ARGS__))

/* 1 when the CPU runs the instruction set isa and this build has it. */
static int runs(int isa)
{
#if defined(FM_VARIANTS_X86)
    const int features = fm_x86_features_once();
    return isa == ISA_SSE2 || (isa == ISA_AVX2 && (features & FM_X86_AVX2_FMA)) ||
           (isa == ISA_AVX512 && (features & FM_X86_AVX512));
#elif defined(FM_VARIANTS_NEON)
    return isa == ISA_NEON;
#else
    return isa == ISA_GENERIC;
#endif
}

static int isa_named(const char *name)
{
    for (int i = 0; i < N_ISAS; i++)
        if (name && strcmp(name, isa_names[i]) == 0) return i;
    return -1;
}

/* -1 until chosen */
static volatile int64_t active = -1;

static int choose(void)
{
    int best = ISA_GENERIC; /* the widest is listed last */
    for (int i = 0; i < N_ISAS; i++)
        if (runs(i)) best = i;
    const int wanted = isa_named(getenv("FASTMLP_ISA"));
    return wanted >= 0 && runs(wanted) ? wanted : best;
}

static inline int current_isa(void)
{
    int64_t isa = fm_atomic_load(&active);
    if (isa < 0) {
        isa = choose();
        fm_atomic_store(&active, isa);
    }
    return (int)isa;
}

const char *fm_isa(void) { return isa_names[current_isa()]; }

const char *fm_isa_built(void) { return built; }

int fm_isa_supported(const char *name)
{
    const int isa = isa_named(name);
    return isa >= 0 && runs(isa);
}

fm_status fm_set_isa(const char *name)
{
    const int isa = isa_named(name);
    if (isa < 0 || !runs(isa)) return FM_ERR_ARGUMENT;
    fm_atomic_store(&active, isa);
    return FM_OK;
}

const char *fm_kernel(fm_dtype dtype)
{
    const int isa = current_isa();
    return CALL(isa, fm_kernel_name, );
}

const char *fm_threads_backend(void)
{
#if defined(FM_NO_THREADS)
    return "none";
#elif defined(_WIN32)
    return "win32";
#else
    return "pthreads";
#endif
}

fm_status fm_train(fm_dtype dtype, void *params, void *grads, void *state, void *snapshot,
                   void *work, double *loss_curve, int64_t *order, int64_t n_rows,
                   fm_run *run, fm_mt19937 *rng, const fm_data *data, const fm_net *net,
                   fm_optimizer *opt, int64_t batch_size, int64_t chunk, int n_threads,
                   fm_tuner *tuner, const volatile int *interrupt)
{
    const int isa = current_isa();
    return CALL(isa, fm_train, params, grads, state, snapshot, work, loss_curve, order, n_rows,
                    run, rng, data, net, opt, batch_size, chunk, n_threads, tuner, interrupt);
}

fm_status fm_loss_grad(fm_dtype dtype, void *grads, double *loss, void *work,
                       const fm_data *data, const void *params, const fm_net *net,
                       int64_t chunk, int n_threads, fm_tuner *tuner,
                       const volatile int *interrupt)
{
    const int isa = current_isa();
    return CALL(isa, fm_loss_grad, grads, loss, work, data, params, net, chunk, n_threads,
                tuner, interrupt);
}

fm_status fm_loss_grad_sums(fm_dtype dtype, void *grads, double *wloss, double *wsum,
                            void *work, const fm_data *data, const int64_t *rows,
                            int64_t n_rows, const void *params, const fm_net *net,
                            int64_t chunk, int n_threads, fm_tuner *tuner,
                            const volatile int *interrupt)
{
    const int isa = current_isa();
    return CALL(isa, fm_loss_grad_sums, grads, wloss, wsum, work, data, rows, n_rows, params,
                net, chunk, n_threads, tuner, interrupt);
}

fm_status fm_loss_grad_finish(fm_dtype dtype, void *grads, double *loss, double wloss,
                              double wsum, const void *params, const fm_net *net)
{
    const int isa = current_isa();
    return CALL(isa, fm_loss_grad_finish, grads, loss, wloss, wsum, params, net);
}

fm_status fm_predict(fm_dtype dtype, void *out, void *work, const fm_data *data,
                     const int64_t *rows, int64_t n_rows, const void *params,
                     const fm_net *net, int64_t chunk, int n_threads, fm_tuner *tuner,
                     int check_finite, const volatile int *interrupt)
{
    const int isa = current_isa();
    return CALL(isa, fm_predict, out, work, data, rows, n_rows, params, net, chunk,
                n_threads, tuner, check_finite, interrupt);
}

void fm_dense_forward(fm_dtype dtype, void *Y, const void *X, const int64_t *rows,
                      const void *W, const void *b, int32_t activation, int64_t n,
                      int64_t n_in, int64_t n_out, void *pack, int n_threads)
{
    const int isa = current_isa();
    CALL(isa, fm_dense_forward, Y, X, rows, W, b, activation, n, n_in, n_out, pack, n_threads);
}

void fm_csr_dense_forward(fm_dtype dtype, void *Y, const int64_t *indptr,
                          const int64_t *indices, const void *values, const int64_t *rows,
                          const void *W, const void *b, int32_t activation, int64_t n,
                          int64_t n_in, int64_t n_out, int n_threads)
{
    const int isa = current_isa();
    CALL(isa, fm_csr_dense_forward, Y, indptr, indices, values, rows, W, b, activation, n,
             n_in, n_out, n_threads);
}

void fm_dense_backward_data(fm_dtype dtype, void *dX, const void *dY, const void *W,
                            const void *A, int32_t activation, int64_t n, int64_t n_in,
                            int64_t n_out, void *pack, int n_threads)
{
    const int isa = current_isa();
    CALL(isa, fm_dense_backward_data, dX, dY, W, A, activation, n, n_in, n_out, pack,
             n_threads);
}

void fm_dense_backward_params(fm_dtype dtype, void *dW, void *db, const void *X,
                              const int64_t *rows, const void *dY, int64_t n, int64_t n_in,
                              int64_t n_out, void *pack, int n_threads)
{
    const int isa = current_isa();
    CALL(isa, fm_dense_backward_params, dW, db, X, rows, dY, n, n_in, n_out, pack, n_threads);
}

void fm_csr_backward_params(fm_dtype dtype, void *dW, void *db, const int64_t *indptr,
                            const int64_t *indices, const void *values,
                            const int64_t *rows, const void *dY, int64_t n, int64_t n_in,
                            int64_t n_out, int n_threads)
{
    const int isa = current_isa();
    CALL(isa, fm_csr_backward_params, dW, db, indptr, indices, values, rows, dY, n, n_in,
             n_out, n_threads);
}

void fm_dense_forward_naive(fm_dtype dtype, void *Y, const void *X, const int64_t *rows,
                            const void *W, const void *b, int64_t n, int64_t n_in,
                            int64_t n_out)
{
    const int isa = current_isa();
    CALL(isa, fm_dense_forward_naive, Y, X, rows, W, b, n, n_in, n_out);
}

void fm_dense_backward_data_naive(fm_dtype dtype, void *dX, const void *dY, const void *W,
                                  int64_t n, int64_t n_in, int64_t n_out)
{
    const int isa = current_isa();
    CALL(isa, fm_dense_backward_data_naive, dX, dY, W, n, n_in, n_out);
}

void fm_dense_backward_params_naive(fm_dtype dtype, void *dW, void *db, const void *X,
                                    const int64_t *rows, const void *dY, int64_t n,
                                    int64_t n_in, int64_t n_out)
{
    const int isa = current_isa();
    CALL(isa, fm_dense_backward_params_naive, dW, db, X, rows, dY, n, n_in, n_out);
}

void fm_activation_forward(fm_dtype dtype, void *A, int64_t n, int64_t m,
                           int32_t activation)
{
    const int isa = current_isa();
    CALL(isa, fm_activation_forward, A, n, m, activation);
}

void fm_activation_backward(fm_dtype dtype, void *dZ, const void *A, const void *Z,
                            int64_t n, int64_t m, int32_t activation)
{
    const int isa = current_isa();
    CALL(isa, fm_activation_backward, dZ, A, Z, n, m, activation);
}

void fm_loss_forward(fm_dtype dtype, double *l, const void *P, const void *Y,
                     const int64_t *rows, int64_t n, int64_t K, int32_t loss)
{
    const int isa = current_isa();
    CALL(isa, fm_loss_forward, l, P, Y, rows, n, K, loss);
}

void fm_loss_backward(fm_dtype dtype, void *dZ, const void *P, const void *Y,
                      const void *sample_weight, const int64_t *rows, int64_t n, int64_t K)
{
    const int isa = current_isa();
    CALL(isa, fm_loss_backward, dZ, P, Y, sample_weight, rows, n, K);
}

double fm_optimizer_step(fm_dtype dtype, void *params, void *state, const void *grads,
                         int64_t n, int64_t n_weights, double alpha, double S,
                         fm_optimizer *opt, double *partials, int n_threads)
{
    const int isa = current_isa();
    return CALL(isa, fm_optimizer_step, params, state, grads, n, n_weights, alpha, S, opt,
                    partials, n_threads);
}

int fm_all_finite(fm_dtype dtype, const void *x, int64_t n)
{
    const int isa = current_isa();
    return CALL(isa, fm_all_finite, x, n);
}

void fm_two_class(fm_dtype dtype, void *out, int64_t n)
{
    const int isa = current_isa();
    CALL(isa, fm_two_class, out, n);
}
