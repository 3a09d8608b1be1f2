/* Optimizer steps: one elementwise loop over the flat parameter buffer, in
 * the working precision, the coefficients rounded to it first (as numpy
 * does with float32 arrays and Python floats).
 *
 * The step sees the finished gradient of the batch: (g + alpha w) / S on
 * the weights [0, n_weights), g / S on the biases, computed as it goes (so
 * no separate pass), in scikit-learn's order of operations, and scaled down
 * to clip_norm when its L2 norm exceeds that; fm_optimizer_step_sums first
 * adds further sums into g (those of a batch's blocks of rows), chunk by
 * chunk. While reading the weights it also sums their squares (for the L2
 * term of the batch's loss). Sums run per fixed chunk and are added up in
 * chunk order, so no result depends on the thread count. */
#include <stddef.h>

#include "common.h"

/* elements of a cache line */
#define FM_LINE_ELEMS (FM_LINE / (int64_t)sizeof(real))
/* Parameters this few stay in the cache of every thread that has just
 * passed rows through them (see arrays_alias). */
#define FM_FETCH_FIRST_MAX_PARAMS 65536

/* Eight interleaved partial sums in double, combined in a fixed order. */
double FM_FN(fm_sum_squares)(const real *x, int64_t n)
{
    double s[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        for (int u = 0; u < 8; u++) s[u] += (double)x[i + u] * (double)x[i + u];
    double t = ((s[0] + s[1]) + (s[2] + s[3])) + ((s[4] + s[5]) + (s[6] + s[7]));
    for (; i < n; i++) t += (double)x[i] * (double)x[i];
    return t;
}

typedef struct {
    real *p, *s1, *s2;
    const real *g;
    real *sum_into;       /* g itself, when the sums below go into it first */
    const real *sums;     /* n_sums more gradient sums [n_sums x n], or none */
    int64_t n_sums;
    int64_t n, n_weights;
    real alpha, S, scale; /* scale: the clipping factor, 1 without clipping */
    real inv_S;           /* 1 / S, exact when by_mul */
    int by_mul;           /* S is a power of two: divide by multiplying */
    const fm_optimizer *opt;
    double lr;            /* SGD's rate, Adam's bias-corrected rate */
    double *partials;
    int norm_pass;        /* the chunk sums are of the squared gradient */
    int fetch_first;      /* fetch each chunk's parameter lines to write first (arrays_alias) */
} step_args;

/* (g + alpha p) / S; with by_mul, as the product by 1 / S, which is the
 * same number (1 / S is exact, and both operations round the same real
 * quotient) for a fraction of a division's time. by_mul is a constant
 * wherever this is inlined, so each loop comes in two versions. */
FM_INLINE real batch_grad(real g, real alpha, real p, real S, real inv_S, int by_mul)
{
    return by_mul ? (g + alpha * p) * inv_S : (g + alpha * p) / S;
}

/* Elements [i0, i1), all weights (weights = 1) or all biases. Every
 * setting is read into a local first: a store through p, m or v could
 * otherwise change it as far as some compilers can tell, and they would not
 * vectorise the loops. */
FM_INLINE double grad_sumsq(const step_args *a, int64_t i0, int64_t i1, int weights,
                            int by_mul)
{
    const real *FM_RESTRICT p = a->p, *FM_RESTRICT g = a->g;
    const real alpha = weights ? a->alpha : 0, S = a->S, inv_S = a->inv_S;
    double s = 0;
    for (int64_t i = i0; i < i1; i++) {
        const real grad = batch_grad(g[i], alpha, p[i], S, inv_S, by_mul);
        s += (double)grad * (double)grad;
    }
    return s;
}

FM_INLINE void sgd_span(const step_args *a, int64_t i0, int64_t i1, int weights,
                        int by_mul)
{
    real *FM_RESTRICT p = a->p, *FM_RESTRICT v = a->s1;
    const real *FM_RESTRICT g = a->g;
    const real lr = (real)a->lr, mu = (real)a->opt->momentum;
    const real alpha = weights ? a->alpha : 0, S = a->S, inv_S = a->inv_S, scale = a->scale;
    const int nesterov = a->opt->nesterov;
    for (int64_t i = i0; i < i1; i++) {
        const real grad = batch_grad(g[i], alpha, p[i], S, inv_S, by_mul) * scale;
        v[i] = mu * v[i] - lr * grad;
        p[i] += nesterov ? mu * v[i] - lr * grad : v[i];
    }
}

/* Adam, and AdamW whose decoupled decay shrinks the weights first. */
FM_INLINE void adam_span(const step_args *a, int64_t i0, int64_t i1, int weights,
                         int by_mul)
{
    real *FM_RESTRICT p = a->p, *FM_RESTRICT m = a->s1, *FM_RESTRICT v = a->s2;
    const real *FM_RESTRICT g = a->g;
    const fm_optimizer *o = a->opt;
    const real b1 = (real)o->beta_1, c1 = (real)(1 - o->beta_1);
    const real b2 = (real)o->beta_2, c2 = (real)(1 - o->beta_2), eps = (real)o->epsilon;
    const real alpha = weights ? a->alpha : 0, lr = (real)a->lr, S = a->S, inv_S = a->inv_S;
    const real scale = a->scale;
    const real keep = (real)(weights && o->solver == FM_ADAMW
                                 ? 1 - o->learning_rate * o->weight_decay
                                 : 1);
    for (int64_t i = i0; i < i1; i++) {
        const real grad = batch_grad(g[i], alpha, p[i], S, inv_S, by_mul) * scale;
        m[i] = b1 * m[i] + c1 * grad;
        v[i] = b2 * v[i] + c2 * (grad * grad);
        p[i] = keep * p[i] - lr * m[i] / (fm_sqrt(v[i]) + eps);
    }
}

/* iRprop-: each parameter's step grows by 1.2 while its gradient keeps its
 * sign and shrinks by 0.5 (the gradient then counted as 0) when it flips,
 * within [1e-6, 50]; the parameter moves against the sign by the step. */
FM_INLINE void rprop_span(const step_args *a, int64_t i0, int64_t i1, int weights,
                          int by_mul)
{
    real *FM_RESTRICT p = a->p, *FM_RESTRICT prev = a->s1, *FM_RESTRICT step = a->s2;
    const real *FM_RESTRICT g = a->g;
    const real alpha = weights ? a->alpha : 0, S = a->S, inv_S = a->inv_S, scale = a->scale;
    for (int64_t i = i0; i < i1; i++) {
        real grad = batch_grad(g[i], alpha, p[i], S, inv_S, by_mul) * scale;
        const real agree = prev[i] * grad;
        if (agree > 0) {
            step[i] = fm_fmin(step[i] * (real)1.2, (real)50);
        } else if (agree < 0) {
            step[i] = fm_fmax(step[i] * (real)0.5, (real)1e-6);
            grad = 0;
        }
        const real sign = (real)((grad > 0) - (grad < 0));
        p[i] -= sign * step[i];
        prev[i] = grad;
    }
}

/* Weights [i0, mid) and biases [mid, i1) through the step (or, in the norm
 * pass, their squared gradient summed), with by_mul a constant. */
FM_INLINE double spans(const step_args *a, int64_t i0, int64_t mid, int64_t i1, int by_mul)
{
    if (a->norm_pass)
        return grad_sumsq(a, i0, mid, 1, by_mul) + grad_sumsq(a, mid, i1, 0, by_mul);
    switch (a->opt->solver) {
    case FM_SGD:
        sgd_span(a, i0, mid, 1, by_mul);
        sgd_span(a, mid, i1, 0, by_mul);
        break;
    case FM_RPROP:
        rprop_span(a, i0, mid, 1, by_mul);
        rprop_span(a, mid, i1, 0, by_mul);
        break;
    default:
        adam_span(a, i0, mid, 1, by_mul);
        adam_span(a, mid, i1, 0, by_mul);
        break;
    }
    return 0;
}

/* The chunk [i0, i1), split where the weights end and the biases begin;
 * returns its sum of squared weights, taken before the step (or of the
 * squared gradient in the norm pass, which changes nothing). */
static double step_chunk(const step_args *a, int64_t i0, int64_t i1)
{
    if (a->n_sums) FM_FN(fm_add_sums)(a->sum_into, a->sums, a->n_sums, a->n, i0, i1);
    const int64_t mid = i1 < a->n_weights ? i1 : (i0 > a->n_weights ? i0 : a->n_weights);
    if (a->fetch_first && !a->norm_pass)
        for (int64_t i = i0; i < i1; i += FM_LINE_ELEMS) fm_prefetch_for_write(a->p + i);
    const double sumsq = a->norm_pass ? 0 : FM_FN(fm_sum_squares)(a->p + i0, mid - i0);
    const double norm = a->by_mul ? spans(a, i0, mid, i1, 1) : spans(a, i0, mid, i1, 0);
    return a->norm_pass ? norm : sumsq;
}

/* Each task a chunk. */
static void step_task(void *ctx, int64_t c, int tid)
{
    const step_args *a = ctx;
    (void)tid;
    a->partials[c] = step_chunk(a, c * FM_STEP_CHUNK, fm_min64((c + 1) * FM_STEP_CHUNK, a->n));
}

/* 1 when two of the arrays the step reads and writes start within a cache
 * line of each other modulo 4 KiB. Some CPUs then hold each load back
 * until an earlier store to the other array whose address matches it in
 * the low 12 bits is done (4K aliasing). Adam's m and v alias so when
 * n * sizeof(real) is near a multiple of 4096, as with W3 in float64
 * (14,849 parameters). With more than one thread each of those stores
 * waits in turn for the other threads to drop their copies of its line
 * (their passes have just read the parameters). On two cores of an AMD
 * EPYC (Zen 1), W3's float64 step took 174-176 us a batch, and 54-60 when
 * a locked operation claimed each line first; the write prefetch that
 * replaced those claims asks for all of a chunk's lines without waiting
 * for each, and was not measured there. On a Zen 4 EPYC, W3 fits on 2
 * threads took 0.521 s (float64) and 0.308 s (float32) with the claims,
 * 0.447 s and 0.276 s with the prefetch, and 0.439 s and 0.267 s with
 * neither (medians of alternating fits). W2's float64 step, which does not
 * alias, gained nothing from the prefetch, so only aliasing steps ask. */
static int near_4k(const void *x, const void *y)
{
    const uintptr_t d = ((uintptr_t)x - (uintptr_t)y) & 4095;
    return d < FM_LINE || d > 4096 - FM_LINE;
}

static int arrays_alias(const step_args *a)
{
    const void *arr[4] = {a->p, a->g, a->s1, a->s2};
    /* SGD has no second state array */
    const int n = a->opt->solver == FM_SGD ? 3 : 4;
    for (int i = 0; i < n; i++)
        for (int j = i + 1; j < n; j++)
            if (near_4k(arr[i], arr[j])) return 1;
    return 0;
}

/* Run the chunks on the threads, then add their sums in chunk order. */
static double over_chunks(step_args *a, int n_threads)
{
    const int64_t nc = (a->n + FM_STEP_CHUNK - 1) / FM_STEP_CHUNK;
    /* two chunks take about as long as a second thread takes to join */
    const int threads = nc > 2 ? n_threads : 1;
    a->fetch_first = threads > 1 && a->n <= FM_FETCH_FIRST_MAX_PARAMS && arrays_alias(a) &&
                     fm_can_prefetch_for_write();
    fm_parallel_for(threads, nc, step_task, a);
    double total = 0;
    for (int64_t c = 0; c < nc; c++) total += a->partials[c];
    return total;
}

void FM_FN(fm_add_sums)(real *grads, const real *sums, int64_t n_sums, int64_t n, int64_t i0,
                        int64_t i1)
{
    real *FM_RESTRICT g = grads;
    for (int64_t b = 0; b < n_sums; b++) {
        const real *FM_RESTRICT q = sums + b * n;
        for (int64_t i = i0; i < i1; i++) g[i] += q[i];
    }
}

/* The step, each chunk first adding the n_sums sums into grads (when any). */
static double step_on(real *params, real *state, const real *grads, real *sum_into,
                      const real *sums, int64_t n_sums, int64_t n, int64_t n_weights,
                      double alpha, double S, fm_optimizer *opt, double *partials,
                      int n_threads)
{
    int exponent;
    /* S a power of two whose reciprocal the working precision holds (their
     * product is then exactly 1): the reciprocal is exact */
    const int by_mul = frexp(S, &exponent) == 0.5 && (real)(1 / S) * (real)S == 1;
    step_args a = {params, state, state + n, grads, sum_into, sums, n_sums, n, n_weights,
                   (real)alpha, (real)S, 1, (real)(1 / S), by_mul, opt, opt->learning_rate,
                   partials, 0, 0};
    if (opt->clip_norm > 0) {
        a.norm_pass = 1;
        const double norm = sqrt(over_chunks(&a, n_threads));
        a.norm_pass = 0;
        a.n_sums = 0; /* added by the norm pass */
        if (norm > opt->clip_norm) a.scale = (real)(opt->clip_norm / norm);
    }
    if (opt->solver == FM_ADAM || opt->solver == FM_ADAMW) {
        opt->t += 1;
        const double t = (double)opt->t;
        a.lr = opt->learning_rate * sqrt(1 - pow(opt->beta_2, t)) / (1 - pow(opt->beta_1, t));
    }
    return over_chunks(&a, n_threads);
}

double FM_FN(fm_optimizer_step)(real *params, real *state, const real *grads, int64_t n,
                                int64_t n_weights, double alpha, double S, fm_optimizer *opt,
                                double *partials, int n_threads)
{
    return step_on(params, state, grads, NULL, NULL, 0, n, n_weights, alpha, S, opt, partials,
                   n_threads);
}

double FM_FN(fm_optimizer_step_sums)(real *params, real *state, real *grads, const real *sums,
                                     int64_t n_sums, int64_t n, int64_t n_weights, double alpha,
                                     double S, fm_optimizer *opt, double *partials,
                                     int n_threads)
{
    return step_on(params, state, grads, grads, sums, n_sums, n, n_weights, alpha, S, opt,
                   partials, n_threads);
}
