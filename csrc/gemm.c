/* The three matrix products of a dense layer.
 *
 *   forward          Y  [n x n_out] = f(X [n x n_in] W [n_in x n_out] + b)
 *   backward data    dX [n x n_in]  = (dY [n x n_out] W^T) * f'(A)
 *   backward params  dW [n_in x n_out] += X^T dY,  db [n_out] += sum_i dY_i
 *
 * X's rows may be taken through an index (row i of the batch is X row
 * rows[i]), so a shuffled batch is never copied out of X.
 *
 * Large products run through a packed, cache-blocked GEMM: C is cut into
 * MR x NR tiles that a register-blocked micro-kernel computes (AVX-512,
 * AVX2 + FMA, SSE2, NEON or portable C: the one of the instruction set
 * this file is compiled for, see real.h; with AVX2, and with AVX-512 for
 * floats, also a second, shorter one for products or last panels of few
 * rows); bias, activation and derivative are applied to each tile after its
 * last K block, while it is still in cache. The AVX2 kernels read an
 * untransposed A where its rows lie, through a pointer per row, and only B
 * is packed (on two cores of an AMD EPYC, W2's forward products of 128 rows
 * took 4-7% less time a batch than with A's panels packed); elsewhere, and
 * for a transposed A, A's panels are packed too. Small products take the
 * direct `_naive` loops, which are also the reference the tests hold the
 * fast path to.
 *
 * Determinism: a tile accumulates one K block in ascending k from zero and
 * then adds into C; K blocks come in ascending order; the naive loops sum in
 * ascending order too. Threads only decide which tiles (or rows) a thread
 * computes, and which panels of A it packs when the threads of a product
 * split by columns pack A once, together (packing only copies), so every
 * element is the same sum for any n_threads.
 */
#include <string.h>

#include "common.h"

#if defined(FM_ISA_AVX512) || defined(FM_ISA_AVX2) || defined(FM_ISA_SSE2)
#include <immintrin.h>
#elif defined(FM_ISA_NEON)
#include "kernels_neon.h"
#endif

#define KC FM_KC
#define MC FM_MC
#define NC FM_NC
#define MR_MAX 12
#define NR_MAX 32

/* Products below this many multiply-adds take the naive loops, and so do
 * products with fewer than FM_PACKED_MIN_ROWS rows (packing a panel of
 * rows would cost more than it saves; FM_PACKED_MIN_ROWS is in common.h);
 * threads join above FM_PARALLEL_MIN_WORK, and packed products above
 * FM_GEMM_MIN_WORK (both in common.h). */
#define FM_PACKED_MIN_WORK 4096
/* A B operand (the weights, going forward) of at most this many elements
 * stays in cache: the packed GEMM reads it where it lies. */
#define FM_SMALL_WEIGHTS 16384
/* Columns of a gradient a thread takes at a time when they are shared out. */
#define FM_COL_BLOCK 64

static inline int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

/* Threads for `work` multiply-adds in `units` pieces: none below `least`. */
static inline int threads_from(int n_threads, int64_t work, int64_t least, int64_t units)
{
    if (n_threads > 1 && work >= least && units > 1) return (int)fm_min64(n_threads, units);
    return 1;
}

static inline int thread_count(int n_threads, int64_t work, int64_t units)
{
    return threads_from(n_threads, work, FM_PARALLEL_MIN_WORK, units);
}

/* ---- naive loops (small products, and the reference) ----------------------- */

static inline const real *row_of(const real *X, const int64_t *rows, int64_t i, int64_t ld)
{
    return X + (rows ? rows[i] : i) * ld;
}

/* Outputs narrower than a vector (a single logistic or linear unit, say)
 * are computed along the inputs instead of along the outputs. */
#define FM_NARROW 8

/* dot's loop below for stride 1 and as many terms as fill its eight
 * partial sums s (zero on entry) in vector registers: lane u takes
 * a[k + u] b[k + u] for k = 0, 8, 16, ..., one fused multiply-add each, as
 * the loop does, where the instruction set has them. (Compilers keep the
 * loop's eight sums in scalar registers: they take them for reductions
 * they may not reorder.) Returns the terms it took. */
static inline int64_t dot_lanes(const real *FM_RESTRICT a, const real *FM_RESTRICT b,
                                int64_t n, real *s)
{
    int64_t k = 0;
#if (defined(FM_ISA_AVX512) || defined(FM_ISA_AVX2)) && defined(FM_REAL_F32)
    __m256 v = _mm256_setzero_ps();
    for (; k + 8 <= n; k += 8)
        v = _mm256_fmadd_ps(_mm256_loadu_ps(a + k), _mm256_loadu_ps(b + k), v);
    _mm256_storeu_ps(s, v);
#elif defined(FM_ISA_AVX512)
    __m512d v = _mm512_setzero_pd();
    for (; k + 8 <= n; k += 8)
        v = _mm512_fmadd_pd(_mm512_loadu_pd(a + k), _mm512_loadu_pd(b + k), v);
    _mm512_storeu_pd(s, v);
#elif defined(FM_ISA_AVX2)
    __m256d lo = _mm256_setzero_pd(), hi = _mm256_setzero_pd();
    for (; k + 8 <= n; k += 8) {
        lo = _mm256_fmadd_pd(_mm256_loadu_pd(a + k), _mm256_loadu_pd(b + k), lo);
        hi = _mm256_fmadd_pd(_mm256_loadu_pd(a + k + 4), _mm256_loadu_pd(b + k + 4), hi);
    }
    _mm256_storeu_pd(s, lo);
    _mm256_storeu_pd(s + 4, hi);
#elif defined(FM_ISA_NEON) && defined(FM_REAL_F32)
    float32x4_t lo = vdupq_n_f32(0), hi = vdupq_n_f32(0);
    for (; k + 8 <= n; k += 8) {
        lo = vfmaq_f32(lo, vld1q_f32(a + k), vld1q_f32(b + k));
        hi = vfmaq_f32(hi, vld1q_f32(a + k + 4), vld1q_f32(b + k + 4));
    }
    vst1q_f32(s, lo);
    vst1q_f32(s + 4, hi);
#elif defined(FM_ISA_NEON)
    float64x2_t v0 = vdupq_n_f64(0), v1 = v0, v2 = v0, v3 = v0;
    for (; k + 8 <= n; k += 8) {
        v0 = vfmaq_f64(v0, vld1q_f64(a + k), vld1q_f64(b + k));
        v1 = vfmaq_f64(v1, vld1q_f64(a + k + 2), vld1q_f64(b + k + 2));
        v2 = vfmaq_f64(v2, vld1q_f64(a + k + 4), vld1q_f64(b + k + 4));
        v3 = vfmaq_f64(v3, vld1q_f64(a + k + 6), vld1q_f64(b + k + 6));
    }
    vst1q_f64(s, v0);
    vst1q_f64(s + 2, v1);
    vst1q_f64(s + 4, v2);
    vst1q_f64(s + 6, v3);
#else
    /* no fused multiply-add: the compiler vectorizes the loop itself */
    (void)a, (void)b, (void)n, (void)s;
#endif
    return k;
}

/* sum_k a[k] b[k stride] as eight interleaved partial sums combined in a
 * fixed tree, so the products can run in vector lanes. */
FM_INLINE real dot(const real *FM_RESTRICT a,
                                                     const real *FM_RESTRICT b, int64_t n,
                                                     int64_t stride)
{
    real s[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    int64_t k = stride == 1 ? dot_lanes(a, b, n, s) : 0;
    for (; k + 8 <= n; k += 8)
        for (int u = 0; u < 8; u++) s[u] = fm_madd(a[k + u], b[(k + u) * stride], s[u]);
    real t = ((s[0] + s[1]) + (s[2] + s[3])) + ((s[4] + s[5]) + (s[6] + s[7]));
    for (; k < n; k++) t = fm_madd(a[k], b[k * stride], t);
    return t;
}

/* Y = X W + b for n_out < FM_NARROW: each output a dot product over k. */
static void forward_narrow(real *FM_RESTRICT Y, const real *FM_RESTRICT X,
                                  const int64_t *rows, const real *FM_RESTRICT W,
                                  const real *FM_RESTRICT b, int64_t n, int64_t n_in,
                                  int64_t n_out)
{
    for (int64_t i = 0; i < n; i++) {
        const real *x = row_of(X, rows, i, n_in);
        if (n_out == 1) { /* a literal stride, so the products vectorise */
            Y[i] = dot(x, W, n_in, 1) + b[0];
            continue;
        }
        for (int64_t j = 0; j < n_out; j++)
            Y[i * n_out + j] = dot(x, W + j, n_in, n_out) + b[j];
    }
}

/* Y = X W + b for rows [i0, i1) and columns [j0, j1): four rows at a time
 * accumulate a block of FM_COLS outputs in registers while the matching
 * stretch of each row of W streams past once; a single row takes wider
 * blocks of FM_COLS_1, so W streams past in longer runs. The block is as
 * wide as half the vector registers (real.h) hold for four rows, so that
 * the accumulators stay in registers. */
#define FM_COLS (FM_VECTOR_REGISTERS / 2 * FM_VECTOR_BYTES / (4 * (int)sizeof(real)))
#define FM_COLS_1 (2 * FM_COLS)

static void forward_block(real *FM_RESTRICT Y, const real *FM_RESTRICT X,
                                 const int64_t *rows, const real *FM_RESTRICT W,
                                 const real *FM_RESTRICT b, int64_t i0, int64_t i1, int64_t j0,
                                 int64_t j1, int64_t n_in, int64_t n_out)
{
    int64_t i = i0;
    for (; i + 4 <= i1; i += 4) {
        const real *x0 = row_of(X, rows, i, n_in), *x1 = row_of(X, rows, i + 1, n_in);
        const real *x2 = row_of(X, rows, i + 2, n_in), *x3 = row_of(X, rows, i + 3, n_in);
        for (int64_t jb = j0; jb < j1; jb += FM_COLS) {
            const int64_t w = fm_min64(FM_COLS, j1 - jb);
            real acc[4][FM_COLS];
            memset(acc, 0, sizeof acc);
            for (int64_t k = 0; k < n_in; k++) {
                const real *FM_RESTRICT wk = W + k * n_out + jb;
                const real a0 = x0[k], a1 = x1[k], a2 = x2[k], a3 = x3[k];
                if (w == FM_COLS) {
                    /* a fixed width the compiler keeps in vector registers */
                    for (int64_t c = 0; c < FM_COLS; c++) {
                        acc[0][c] = fm_madd(a0, wk[c], acc[0][c]);
                        acc[1][c] = fm_madd(a1, wk[c], acc[1][c]);
                        acc[2][c] = fm_madd(a2, wk[c], acc[2][c]);
                        acc[3][c] = fm_madd(a3, wk[c], acc[3][c]);
                    }
                } else {
                    for (int64_t c = 0; c < w; c++) {
                        acc[0][c] = fm_madd(a0, wk[c], acc[0][c]);
                        acc[1][c] = fm_madd(a1, wk[c], acc[1][c]);
                        acc[2][c] = fm_madd(a2, wk[c], acc[2][c]);
                        acc[3][c] = fm_madd(a3, wk[c], acc[3][c]);
                    }
                }
            }
            for (int64_t r = 0; r < 4; r++)
                for (int64_t c = 0; c < w; c++) Y[(i + r) * n_out + jb + c] = acc[r][c] + b[jb + c];
        }
    }
    for (; i < i1; i++) {
        const real *x = row_of(X, rows, i, n_in);
        for (int64_t jb = j0; jb < j1; jb += FM_COLS_1) {
            const int64_t w = fm_min64(FM_COLS_1, j1 - jb);
            real acc[FM_COLS_1];
            memset(acc, 0, sizeof acc);
            for (int64_t k = 0; k < n_in; k++) {
                const real *FM_RESTRICT wk = W + k * n_out + jb;
                const real a = x[k];
                for (int64_t c = 0; c < w; c++) acc[c] = fm_madd(a, wk[c], acc[c]);
            }
            for (int64_t c = 0; c < w; c++) Y[i * n_out + jb + c] = acc[c] + b[jb + c];
        }
    }
}

/* Rows [i0, i1) of dX = dY W^T: dot products along the outputs when they
 * are wide; when they are narrow, dY[i][j] W[:, j] accumulated over
 * ascending j, along the inputs. */
static void backward_data_rows(real *FM_RESTRICT dX, const real *FM_RESTRICT dY,
                                      const real *FM_RESTRICT W, int64_t i0, int64_t i1,
                                      int64_t n_in, int64_t n_out)
{
    for (int64_t i = i0; i < i1; i++) {
        real *FM_RESTRICT dx = dX + i * n_in;
        const real *d = dY + i * n_out;
        if (n_out == 1) { /* the loop below with a literal stride */
            for (int64_t k = 0; k < n_in; k++) dx[k] = fm_madd(d[0], W[k], (real)0);
        } else if (n_out < FM_NARROW) {
            memset(dx, 0, (size_t)n_in * sizeof(real));
            for (int64_t j = 0; j < n_out; j++)
                for (int64_t k = 0; k < n_in; k++) dx[k] = fm_madd(d[j], W[k * n_out + j], dx[k]);
        } else {
            for (int64_t k = 0; k < n_in; k++) dx[k] = dot(d, W + k * n_out, n_out, 1);
        }
    }
}

/* dW += X^T dY, the sum over samples in ascending order; along the outputs
 * when they are wide, along the inputs when they are narrow. */
static void backward_params_rows(real *FM_RESTRICT dW, const real *FM_RESTRICT X,
                                        const int64_t *rows, const real *FM_RESTRICT dY,
                                        int64_t n, int64_t n_in, int64_t n_out)
{
    if (n_out == 1) { /* the loop below with a literal stride */
        for (int64_t i = 0; i < n; i++) {
            const real *FM_RESTRICT x = row_of(X, rows, i, n_in);
            const real d = dY[i];
            for (int64_t k = 0; k < n_in; k++) dW[k] = fm_madd(x[k], d, dW[k]);
        }
        return;
    }
    if (n_out < FM_NARROW) {
        for (int64_t i = 0; i < n; i++) {
            const real *x = row_of(X, rows, i, n_in);
            for (int64_t j = 0; j < n_out; j++) {
                const real d = dY[i * n_out + j];
                for (int64_t k = 0; k < n_in; k++) dW[k * n_out + j] = fm_madd(x[k], d, dW[k * n_out + j]);
            }
        }
        return;
    }
    for (int64_t k = 0; k < n_in; k++) {
        real *FM_RESTRICT g = dW + k * n_out;
        for (int64_t i = 0; i < n; i++) {
            const real a = row_of(X, rows, i, n_in)[k];
            const real *FM_RESTRICT d = dY + i * n_out;
            for (int64_t j = 0; j < n_out; j++) g[j] = fm_madd(a, d[j], g[j]);
        }
    }
}

/* Columns [j0, j1) of db += sum_i dY_i, in ascending i. */
static void bias_grad_cols(real *FM_RESTRICT db, const real *FM_RESTRICT dY, int64_t n,
                           int64_t n_out, int64_t j0, int64_t j1)
{
    for (int64_t i = 0; i < n; i++)
        for (int64_t j = j0; j < j1; j++) db[j] += dY[i * n_out + j];
}

typedef struct {
    real *db;
    const real *dY;
    int64_t n, n_out, n_tasks;
} bias_args;

static void bias_task(void *ctx, int64_t task, int tid)
{
    const bias_args *a = ctx;
    (void)tid;
    const int64_t blocks = ceil_div(a->n_out, FM_COL_BLOCK);
    bias_grad_cols(a->db, a->dY, a->n, a->n_out,
                   fm_min64(blocks * task / a->n_tasks * FM_COL_BLOCK, a->n_out),
                   fm_min64(blocks * (task + 1) / a->n_tasks * FM_COL_BLOCK, a->n_out));
}

/* db += sum_i dY_i, each column in ascending i; blocks of columns shared
 * by the threads when there are enough rows and columns. */
static void bias_grad(real *db, const real *dY, int64_t n, int64_t n_out, int n_threads)
{
    bias_args a = {db, dY, n, n_out, 1};
    a.n_tasks = thread_count(n_threads, n * n_out * FM_STREAM_COST, ceil_div(n_out, FM_COL_BLOCK));
    fm_parallel_for((int)a.n_tasks, a.n_tasks, bias_task, &a);
}

void FM_FN(fm_dense_forward_naive)(real *Y, const real *X, const int64_t *rows,
                                   const real *W, const real *b, int64_t n, int64_t n_in,
                                   int64_t n_out)
{
    if (n_out < FM_NARROW)
        forward_narrow(Y, X, rows, W, b, n, n_in, n_out);
    else
        forward_block(Y, X, rows, W, b, 0, n, 0, n_out, n_in, n_out);
}

void FM_FN(fm_dense_backward_data_naive)(real *dX, const real *dY, const real *W,
                                         int64_t n, int64_t n_in, int64_t n_out)
{
    backward_data_rows(dX, dY, W, 0, n, n_in, n_out);
}

void FM_FN(fm_dense_backward_params_naive)(real *dW, real *db, const real *X,
                                           const int64_t *rows, const real *dY, int64_t n,
                                           int64_t n_in, int64_t n_out)
{
    backward_params_rows(dW, X, rows, dY, n, n_in, n_out);
    bias_grad(db, dY, n, n_out, 1);
}

/* ---- micro-kernels ---------------------------------------------------------
 * acc[MR x NR] = sum_{p < kc} a[p MR + r] b[p ldb + c] from zero, in ascending
 * p; then the tile t (leading dimension ldt) becomes acc, or t + acc. b is a
 * packed panel (ldb = NR) or B itself (ldb its row stride). The `rows` form
 * reads a[r][p] instead: row r of A where it lies. Both sum the same terms
 * in the same order. */

typedef void (*micro_kernel)(int64_t kc, const real *a, const real *b, int64_t ldb, real *t,
                             int64_t ldt, int add);
typedef void (*micro_kernel_rows)(int64_t kc, const real *const *a, const real *b, int64_t ldb,
                                  real *t, int64_t ldt, int add);

typedef struct {
    int mr, nr;
    micro_kernel run;
    micro_kernel_rows run_rows; /* NULL: A is packed for `run` */
} kernel_shape;

#if !defined(FM_ISA_AVX512) && !defined(FM_ISA_AVX2) && !defined(FM_ISA_SSE2) && \
    !defined(FM_ISA_NEON)
#define GENERIC_MR 4
#define GENERIC_NR 16

static void kernel_generic(int64_t kc, const real *FM_RESTRICT a, const real *FM_RESTRICT b,
                           int64_t ldb, real *FM_RESTRICT t, int64_t ldt, int add)
{
    real acc[GENERIC_MR][GENERIC_NR];
    memset(acc, 0, sizeof acc);
    for (int64_t p = 0; p < kc; p++) {
        const real *bp = b + p * ldb;
        for (int r = 0; r < GENERIC_MR; r++) {
            const real ar = a[p * GENERIC_MR + r];
            for (int c = 0; c < GENERIC_NR; c++) acc[r][c] = fm_madd(ar, bp[c], acc[r][c]);
        }
    }
    for (int r = 0; r < GENERIC_MR; r++)
        for (int c = 0; c < GENERIC_NR; c++)
            t[r * ldt + c] = add ? t[r * ldt + c] + acc[r][c] : acc[r][c];
}

#endif

#if defined(FM_ISA_AVX512) || defined(FM_ISA_AVX2)
/* MR rows x 2 vectors of W elements of type T in 2 MR accumulators of
 * vector type V, through the intrinsics PFX_loadu_SFX, PFX_fmadd_SFX, ...
 * (PFX _mm512 or _mm256, SFX ps or pd); `a` of type AT, A's element (r, p)
 * A_AT(MR, r, p). */
#define FM_A_PACKED(MR, r, p) a[(p) * (MR) + (r)]
#define FM_A_ROWS(MR, r, p) a[r][p]
#define FM_SIMD_KERNEL(NAME, MR, T, V, W, PFX, SFX)                              \
    FM_SIMD_KERNEL_OF(NAME, MR, T, V, W, PFX, SFX, const T *, FM_A_PACKED)
#define FM_SIMD_KERNEL_ROWS(NAME, MR, T, V, W, PFX, SFX)                         \
    FM_SIMD_KERNEL_OF(NAME, MR, T, V, W, PFX, SFX, const T *const *, FM_A_ROWS)
#define FM_SIMD_KERNEL_OF(NAME, MR, T, V, W, PFX, SFX, AT, A_AT)                 \
    static void NAME(int64_t kc, AT a, const T *b, int64_t ldb, T *t, int64_t ldt, int add) \
    {                                                                            \
        V c[MR][2];                                                              \
        for (int r = 0; r < (MR); r++) c[r][0] = c[r][1] = PFX##_setzero_##SFX(); \
        for (int64_t p = 0; p < kc; p++) {                                       \
            const V b0 = PFX##_loadu_##SFX(b + p * ldb);                         \
            const V b1 = PFX##_loadu_##SFX(b + p * ldb + (W));                   \
            for (int r = 0; r < (MR); r++) {                                     \
                const V ar = PFX##_set1_##SFX(A_AT(MR, r, p));                   \
                c[r][0] = PFX##_fmadd_##SFX(ar, b0, c[r][0]);                    \
                c[r][1] = PFX##_fmadd_##SFX(ar, b1, c[r][1]);                    \
            }                                                                    \
        }                                                                        \
        for (int r = 0; r < (MR); r++)                                           \
            for (int h = 0; h < 2; h++) {                                        \
                T *dst = t + r * ldt + (W) * h;                                  \
                PFX##_storeu_##SFX(dst, add ? PFX##_add_##SFX(PFX##_loadu_##SFX(dst), c[r][h]) \
                                            : c[r][h]);                          \
            }                                                                    \
    }
#endif

#if defined(FM_ISA_AVX512)
#ifdef FM_REAL_F32
/* AVX-512, float: 12 rows x 32 columns in 24 zmm accumulators; 8 rows for a
 * product's last panel of at most 8 rows, and for products of few rows that
 * 8-row panels pad less (see shape_for) */
FM_SIMD_KERNEL(kernel_avx512, 12, float, __m512, 16, _mm512, ps)
FM_SIMD_KERNEL(kernel_avx512_8, 8, float, __m512, 16, _mm512, ps)
#define KERNEL_MR 12
#define KERNEL_SHORT kernel_avx512_8
#define KERNEL_SHORT_MR 8
#define KERNEL_NR 32
#else
/* AVX-512, double: 8 rows x 16 columns in 16 zmm accumulators. */
FM_SIMD_KERNEL(kernel_avx512, 8, double, __m512d, 8, _mm512, pd)
#define KERNEL_MR 8
#define KERNEL_NR 16
#endif
#define KERNEL kernel_avx512
#elif defined(FM_ISA_AVX2)
/* AVX2 + FMA: 6 rows x 2 vectors in 12 of the 16 ymm registers; 4 rows for
 * a product's last panel of at most 4 rows (128 rows: 21 panels of 6 and
 * one of 4, not 22 of 6), and for products of few rows that 4-row panels
 * pad less (see shape_for) */
#ifdef FM_REAL_F32
FM_SIMD_KERNEL(kernel_avx2, 6, float, __m256, 8, _mm256, ps)
FM_SIMD_KERNEL(kernel_avx2_4, 4, float, __m256, 8, _mm256, ps)
FM_SIMD_KERNEL_ROWS(kernel_avx2_rows, 6, float, __m256, 8, _mm256, ps)
FM_SIMD_KERNEL_ROWS(kernel_avx2_4_rows, 4, float, __m256, 8, _mm256, ps)
#define KERNEL_NR 16
#else
FM_SIMD_KERNEL(kernel_avx2, 6, double, __m256d, 4, _mm256, pd)
FM_SIMD_KERNEL(kernel_avx2_4, 4, double, __m256d, 4, _mm256, pd)
FM_SIMD_KERNEL_ROWS(kernel_avx2_rows, 6, double, __m256d, 4, _mm256, pd)
FM_SIMD_KERNEL_ROWS(kernel_avx2_4_rows, 4, double, __m256d, 4, _mm256, pd)
#define KERNEL_NR 8
#endif
#define KERNEL_MR 6
#define KERNEL_SHORT kernel_avx2_4
#define KERNEL_SHORT_ROWS kernel_avx2_4_rows
#define KERNEL_SHORT_MR 4
#define KERNEL kernel_avx2
#define KERNEL_ROWS kernel_avx2_rows
#elif defined(FM_ISA_SSE2)
/* SSE2 (every x86-64), without fused multiply-adds: 6 rows x 2 vectors in
 * 12 of the 16 xmm registers. */
#ifdef FM_REAL_F32
static void kernel_sse2(int64_t kc, const float *a, const float *b, int64_t ldb, float *t,
                        int64_t ldt, int add)
{
    __m128 c[6][2];
    for (int r = 0; r < 6; r++) c[r][0] = c[r][1] = _mm_setzero_ps();
    for (int64_t p = 0; p < kc; p++) {
        const __m128 b0 = _mm_loadu_ps(b + p * ldb), b1 = _mm_loadu_ps(b + p * ldb + 4);
        for (int r = 0; r < 6; r++) {
            const __m128 ar = _mm_set1_ps(a[p * 6 + r]);
            c[r][0] = _mm_add_ps(_mm_mul_ps(ar, b0), c[r][0]);
            c[r][1] = _mm_add_ps(_mm_mul_ps(ar, b1), c[r][1]);
        }
    }
    for (int r = 0; r < 6; r++)
        for (int h = 0; h < 2; h++) {
            float *dst = t + r * ldt + 4 * h;
            _mm_storeu_ps(dst, add ? _mm_add_ps(_mm_loadu_ps(dst), c[r][h]) : c[r][h]);
        }
}
#define KERNEL_MR 6
#define KERNEL_NR 8
#else
static void kernel_sse2(int64_t kc, const double *a, const double *b, int64_t ldb, double *t,
                        int64_t ldt, int add)
{
    __m128d c[6][2];
    for (int r = 0; r < 6; r++) c[r][0] = c[r][1] = _mm_setzero_pd();
    for (int64_t p = 0; p < kc; p++) {
        const __m128d b0 = _mm_loadu_pd(b + p * ldb), b1 = _mm_loadu_pd(b + p * ldb + 2);
        for (int r = 0; r < 6; r++) {
            const __m128d ar = _mm_set1_pd(a[p * 6 + r]);
            c[r][0] = _mm_add_pd(_mm_mul_pd(ar, b0), c[r][0]);
            c[r][1] = _mm_add_pd(_mm_mul_pd(ar, b1), c[r][1]);
        }
    }
    for (int r = 0; r < 6; r++)
        for (int h = 0; h < 2; h++) {
            double *dst = t + r * ldt + 2 * h;
            _mm_storeu_pd(dst, add ? _mm_add_pd(_mm_loadu_pd(dst), c[r][h]) : c[r][h]);
        }
}
#define KERNEL_MR 6
#define KERNEL_NR 4
#endif
#define KERNEL kernel_sse2
#elif defined(FM_ISA_NEON)
#ifdef FM_REAL_F32
#define KERNEL fm_kernel_neon_f32
#define KERNEL_MR FM_NEON_F32_MR
#define KERNEL_NR FM_NEON_F32_NR
#else
#define KERNEL fm_kernel_neon_f64
#define KERNEL_MR FM_NEON_F64_MR
#define KERNEL_NR FM_NEON_F64_NR
#endif
#else
#define KERNEL kernel_generic
#define KERNEL_MR GENERIC_MR
#define KERNEL_NR GENERIC_NR
#endif

#define FM_STR2(x) #x
#define FM_STR(x) FM_STR2(x)

/* both shapes read A in place, or neither (panel_shape mixes them) */
#if defined(KERNEL_SHORT) && (defined(KERNEL_ROWS) != defined(KERNEL_SHORT_ROWS))
#error "KERNEL_ROWS and KERNEL_SHORT_ROWS come together"
#endif
#ifndef KERNEL_ROWS
#define KERNEL_ROWS NULL
#endif
#ifndef KERNEL_SHORT_ROWS
#define KERNEL_SHORT_ROWS NULL
#endif

/* The micro-kernel of this instruction set. */
static const kernel_shape chosen = {KERNEL_MR, KERNEL_NR, KERNEL, KERNEL_ROWS};

/* A thread's rows and an MC block end on whole panels of every shape, so
 * only a product's last panel is partial (and A packed in MC blocks or all
 * at once, see pack_task, has the same panels). */
_Static_assert(FM_MC % KERNEL_MR == 0, "MC in whole panels of the kernel");
#ifdef KERNEL_SHORT
static const kernel_shape short_shape = {KERNEL_SHORT_MR, KERNEL_NR, KERNEL_SHORT,
                                         KERNEL_SHORT_ROWS};
_Static_assert(FM_MC % KERNEL_SHORT_MR == 0, "MC in whole panels of the shorter kernel");

/* Rows a product of m rows computes in shape mr: whole panels, and a last
 * partial one as wide as the kernel that takes it (see panel_shape). */
static int64_t padded_rows(int64_t m, int mr)
{
    const int64_t rest = m % mr;
    if (rest > 0 && rest <= KERNEL_SHORT_MR) return m - rest + KERNEL_SHORT_MR;
    return rest ? m - rest + mr : m;
}
#endif

/* The shape for a C of m rows: where the instruction set has a second,
 * shorter kernel, that one for up to FM_SHORT_MAX_ROWS rows when it pads
 * fewer of them (64 rows: eight panels of 8, not five of 12 and a padded
 * one). Each shape gives the same result: every element of C is the same
 * sum in the same order. */
#define FM_SHORT_MAX_ROWS 96
static const kernel_shape *shape_for(int64_t m)
{
#ifdef KERNEL_SHORT
    if (m <= FM_SHORT_MAX_ROWS && padded_rows(m, KERNEL_SHORT_MR) < padded_rows(m, KERNEL_MR))
        return &short_shape;
#else
    (void)m;
#endif
    return &chosen;
}

/* The shape for a panel of `rows` rows of a product run in shape ks: the
 * shorter kernel for a last panel it holds (128 rows: ten of 12, one of 8). */
static const kernel_shape *panel_shape(const kernel_shape *ks, int64_t rows)
{
#ifdef KERNEL_SHORT
    if (rows <= KERNEL_SHORT_MR && ks->mr > KERNEL_SHORT_MR) return &short_shape;
#else
    (void)rows;
#endif
    return ks;
}

const char *FM_FN(fm_kernel_name)(void)
{
#ifdef KERNEL_SHORT
    return FM_STR(FM_ISA) " " FM_STR(KERNEL_MR) "x" FM_STR(KERNEL_NR) "/" FM_STR(
        KERNEL_SHORT_MR) "x" FM_STR(KERNEL_NR);
#else
    return FM_STR(FM_ISA) " " FM_STR(KERNEL_MR) "x" FM_STR(KERNEL_NR);
#endif
}

/* ---- packed GEMM ----------------------------------------------------------- */

enum { EPI_NONE = 0, EPI_BIAS_ACTIVATION = 1, EPI_DERIVATIVE = 2 };

/* C [m x n] (=, or += when accumulate) op(A) op(B), then the epilogue.
 * op(A)[i][p] = a[row(i) lda + p], or a[row(p) lda + i] when a_trans, with
 * row(x) = a_rows ? a_rows[x] : x; op(B)[p][j] = b[p ldb + j], or
 * b[j ldb + p] when b_trans. */
typedef struct {
    int64_t m, n, k;
    const real *a;
    int64_t lda;
    int a_trans;
    const int64_t *a_rows;
    const real *b;
    int64_t ldb;
    int b_trans;
    real *c;
    int64_t ldc;
    int accumulate;
    int epilogue;
    const real *bias;   /* EPI_BIAS_ACTIVATION: [n] */
    const real *aux;    /* EPI_DERIVATIVE: activation outputs [m x n], leading dim ldc */
    int32_t activation;
} gemm_args;

#if defined(FM_ISA_AVX512) || defined(FM_ISA_AVX2)
/* Elements of a block that transpose_block turns: one 256-bit vector's. */
#define FM_TRANSPOSE_BLOCK (32 / (int)sizeof(real))

/* dst[q * ldd + r] = src[r][p + q] for r, q < FM_TRANSPOSE_BLOCK, the block
 * turned in registers: a row load and a column store per vector. */
static inline void transpose_block(real *dst, int64_t ldd, const real *const *src, int64_t p)
{
#ifdef FM_REAL_F32
    __m256 r[8], t[8], u[8];
    for (int i = 0; i < 8; i++) r[i] = _mm256_loadu_ps(src[i] + p);
    /* pairs of rows interleaved, then pairs of pairs: u[4h + q] holds column
     * q of rows 4h .. 4h+3 in its low half and column q + 4 in its high */
    for (int i = 0; i < 8; i += 2) {
        t[i] = _mm256_unpacklo_ps(r[i], r[i + 1]);
        t[i + 1] = _mm256_unpackhi_ps(r[i], r[i + 1]);
    }
    for (int h = 0; h < 8; h += 4) {
        u[h] = _mm256_shuffle_ps(t[h], t[h + 2], 0x44);
        u[h + 1] = _mm256_shuffle_ps(t[h], t[h + 2], 0xEE);
        u[h + 2] = _mm256_shuffle_ps(t[h + 1], t[h + 3], 0x44);
        u[h + 3] = _mm256_shuffle_ps(t[h + 1], t[h + 3], 0xEE);
    }
    for (int q = 0; q < 4; q++) {
        _mm256_storeu_ps(dst + q * ldd, _mm256_permute2f128_ps(u[q], u[q + 4], 0x20));
        _mm256_storeu_ps(dst + (q + 4) * ldd, _mm256_permute2f128_ps(u[q], u[q + 4], 0x31));
    }
#else
    __m256d r[4], t[4];
    for (int i = 0; i < 4; i++) r[i] = _mm256_loadu_pd(src[i] + p);
    /* t[0]: columns 0 and 2 of rows 0, 1; t[1]: columns 1 and 3; t[2], t[3]
     * the same of rows 2, 3 */
    for (int i = 0; i < 4; i += 2) {
        t[i] = _mm256_unpacklo_pd(r[i], r[i + 1]);
        t[i + 1] = _mm256_unpackhi_pd(r[i], r[i + 1]);
    }
    for (int q = 0; q < 2; q++) {
        _mm256_storeu_pd(dst + q * ldd, _mm256_permute2f128_pd(t[q], t[q + 2], 0x20));
        _mm256_storeu_pd(dst + (q + 2) * ldd, _mm256_permute2f128_pd(t[q], t[q + 2], 0x31));
    }
#endif
}

#ifdef FM_REAL_F32
/* The same for a block of 4 rows and 4 columns (float: a 128-bit vector's). */
static inline void transpose_block_4(real *dst, int64_t ldd, const real *const *src, int64_t p)
{
    __m128 r0 = _mm_loadu_ps(src[0] + p), r1 = _mm_loadu_ps(src[1] + p);
    __m128 r2 = _mm_loadu_ps(src[2] + p), r3 = _mm_loadu_ps(src[3] + p);
    _MM_TRANSPOSE4_PS(r0, r1, r2, r3);
    _mm_storeu_ps(dst, r0);
    _mm_storeu_ps(dst + ldd, r1);
    _mm_storeu_ps(dst + 2 * ldd, r2);
    _mm_storeu_ps(dst + 3 * ldd, r3);
}
#endif
#endif

/* dst[p * n + r] = src[r][p] for p in [p0, p1) and r in [r0, r1), row by
 * row */
static void gather_part(real *FM_RESTRICT dst, const real *const *src, int n, int64_t r0,
                        int64_t r1, int64_t p0, int64_t p1)
{
    for (int64_t r = r0; r < r1; r++)
        for (int64_t p = p0; p < p1; p++) dst[p * n + r] = src[r][p];
}

/* dst[p * n + r] = src[r][p] for p < kc and r < rows, zero up to n: a
 * transpose, in blocks turned in registers where the instruction set has
 * them (a panel of 12 float rows: one of 8 rows and one of 4). */
static void gather_transposed(real *FM_RESTRICT dst, const real *const *src, int64_t kc, int n,
                              int64_t rows)
{
    int64_t r0 = 0;
#ifdef FM_TRANSPOSE_BLOCK
    for (; r0 + FM_TRANSPOSE_BLOCK <= rows; r0 += FM_TRANSPOSE_BLOCK) {
        int64_t p = 0;
        for (; p + FM_TRANSPOSE_BLOCK <= kc; p += FM_TRANSPOSE_BLOCK)
            transpose_block(dst + p * n + r0, n, src + r0, p);
        gather_part(dst, src, n, r0, r0 + FM_TRANSPOSE_BLOCK, p, kc);
    }
#ifdef FM_REAL_F32
    for (; r0 + 4 <= rows; r0 += 4) {
        int64_t p = 0;
        for (; p + 4 <= kc; p += 4) transpose_block_4(dst + p * n + r0, n, src + r0, p);
        gather_part(dst, src, n, r0, r0 + 4, p, kc);
    }
#endif
#endif
    gather_part(dst, src, n, r0, rows, 0, kc);
    for (int64_t p = 0; p < kc; p++)
        for (int64_t r = rows; r < n; r++) dst[p * n + r] = 0;
}

/* dst[p * mr + r] = src[r][p] for r < rows, p < kc, with rows == mr known
 * at compile time: p-major, so every store lands next to the last one. */
#define FM_GATHER_ROWS(MR)                                                       \
    for (int64_t p = 0; p < kc; p++)                                            \
        for (int r = 0; r < (MR); r++) dst[p * (MR) + r] = src[r][p];

/* Switch cases running BODY(W) and returning, for each row-panel width W
 * a micro-kernel uses (at most MR_MAX), so that BODY's loops have a
 * literal bound; FM_PANEL_WIDTHS adds the column-panel widths. */
#define FM_ROW_PANEL_WIDTHS(BODY)                                                \
    case 12: BODY(12) return;                                                   \
    case 8: BODY(8) return;                                                     \
    case 6: BODY(6) return;                                                     \
    case 4: BODY(4) return;
#define FM_PANEL_WIDTHS(BODY)                                                    \
    case 32: BODY(32) return;                                                   \
    case 16: BODY(16) return;                                                   \
    FM_ROW_PANEL_WIDTHS(BODY)

static void gather_rows(real *FM_RESTRICT dst, const real *const *src, int64_t kc,
                               int mr, int64_t rows)
{
#ifdef FM_TRANSPOSE_BLOCK
    gather_transposed(dst, src, kc, mr, rows);
#else
    if (rows == mr) switch (mr) { FM_ROW_PANEL_WIDTHS(FM_GATHER_ROWS) }
    for (int64_t p = 0; p < kc; p++)
        for (int64_t r = 0; r < mr; r++) dst[p * mr + r] = r < rows ? src[r][p] : 0;
#endif
}

/* dst[p * n + c] = src[row(p) * ld + c] for p < kc and c < cols, zero up
 * to n, with row(p) = idx ? idx[p] : p: rows of n contiguous elements, n
 * known at compile time when cols is n. */
#define FM_COPY_ROWS(N)                                                          \
    for (int64_t p = 0; p < kc; p++) {                                          \
        const real *FM_RESTRICT s = src + (idx ? idx[p] : p) * ld;                 \
        for (int c = 0; c < (N); c++) dst[p * (N) + c] = s[c];                  \
    }

static void copy_rows(real *FM_RESTRICT dst, const real *FM_RESTRICT src,
                             const int64_t *idx, int64_t ld, int64_t kc, int n, int64_t cols)
{
    if (cols == n) switch (n) { FM_PANEL_WIDTHS(FM_COPY_ROWS) }
    for (int64_t p = 0; p < kc; p++) {
        const real *FM_RESTRICT s = src + (idx ? idx[p] : p) * ld;
        for (int64_t c = 0; c < n; c++) dst[p * n + c] = c < cols ? s[c] : 0;
    }
}

/* Panels of ks's MR rows of op(A)[i0 .. i0+mc) x [p0 .. p0+kc), zero-padded;
 * the last, when partial, as wide as the kernel panel_shape gives it. */
static void pack_a(real *FM_RESTRICT dst, const gemm_args *g, int64_t i0, int64_t mc,
                   int64_t p0, int64_t kc, const kernel_shape *ks)
{
    for (int64_t ip = 0; ip < mc; ip += ks->mr) {
        real *panel = dst + ip * kc;
        const int64_t rows = fm_min64(ks->mr, mc - ip);
        const int mr = panel_shape(ks, rows)->mr;
        if (!g->a_trans) {
            /* all set: GCC 12 for aarch64 cannot tell that gather_rows reads
             * only the first `rows` (-Wmaybe-uninitialized) */
            const real *src[MR_MAX] = {NULL};
            for (int64_t r = 0; r < rows; r++) {
                const int64_t i = i0 + ip + r;
                src[r] = g->a + (g->a_rows ? g->a_rows[i] : i) * g->lda + p0;
            }
            gather_rows(panel, src, kc, mr, rows);
        } else {
            const real *src = g->a + (g->a_rows ? 0 : p0 * g->lda) + i0 + ip;
            copy_rows(panel, src, g->a_rows ? g->a_rows + p0 : NULL, g->lda, kc, mr, rows);
        }
    }
}

/* Panels of NR columns of op(B)[p0 .. p0+kc) x [j0 .. j0+nc), zero-padded. */
static void pack_b(real *FM_RESTRICT dst, const gemm_args *g, int64_t p0, int64_t kc, int64_t j0,
                   int64_t nc, int nr)
{
    for (int64_t jp = 0; jp < nc; jp += nr) {
        real *panel = dst + jp * kc;
        const int64_t cols = fm_min64(nr, nc - jp);
        if (!g->b_trans) {
            copy_rows(panel, g->b + p0 * g->ldb + j0 + jp, NULL, g->ldb, kc, nr, cols);
        } else {
            const real *src[NR_MAX] = {NULL}; /* all set, as in pack_a */
            for (int64_t c = 0; c < cols; c++) src[c] = g->b + (j0 + jp + c) * g->ldb + p0;
            gather_transposed(panel, src, kc, nr, cols);
        }
    }
}

/* Bias and activation, or the derivative, on rows [i0, i0+mr) and columns
 * [j0, j0+nr) of C. */
static void epilogue(const gemm_args *g, int64_t i0, int64_t mr, int64_t j0, int64_t nr)
{
    real *c = g->c + i0 * g->ldc + j0;
    if (g->epilogue == EPI_DERIVATIVE) {
        FM_FN(fm_activation_backward_tile)(c, g->aux + i0 * g->ldc + j0, g->ldc, mr, nr,
                                           g->activation);
        return;
    }
    /* softmax goes over whole rows, once they are all done */
    FM_FN(fm_activation_forward_tile)(c, g->ldc, g->bias + j0, mr, nr,
                                      g->activation == FM_SOFTMAX ? FM_IDENTITY : g->activation);
}

/* K in blocks of at most KC, all about the same length (784 = 4 x 196,
 * not 3 x 256 + 16, whose short block would cost as much as a long one). */
static int64_t k_step(int64_t k) { return ceil_div(k, ceil_div(k, KC)); }

/* Where A's panels lie once all of op(A) is packed (pack_task): the K
 * block from p0 at a_stride x p0, its panel of row i at i x kc further. */
static real *shared_panels(real *shared_a, int64_t a_stride, int64_t i, int64_t p0, int64_t kc)
{
    return shared_a + a_stride * p0 + i * kc;
}

/* 1 when the micro-kernels read op(A)'s rows where they lie (see
 * kernel_shape): A is not transposed and the instruction set has them. */
static int a_in_place(const gemm_args *g, const kernel_shape *ks)
{
    return !g->a_trans && ks->run_rows != NULL;
}

/* Rows [m0, m1) x columns [n0, n1) of C, with this thread's pack buffers,
 * or with A's panels packed already in shared_a (see shared_panels), or
 * with A read in place (a_in_place).
 * With b_in_place, the micro-kernel reads B's full panels where B lies (a
 * small B stays in cache, and packing it would cost more than it saves);
 * only a last, partial panel is packed, zero-padded. */
static void gemm_block(const gemm_args *g, const kernel_shape *ks, real *pack, int b_in_place,
                       real *shared_a, int64_t a_stride, int64_t m0, int64_t m1, int64_t n0,
                       int64_t n1)
{
    real *pa = pack, *pb = pack + MC * KC;
    real tile[MR_MAX * NR_MAX];
    const int mr = ks->mr, nr = ks->nr, rows_a = a_in_place(g, ks);
    const int64_t kstep = k_step(g->k);
    /* with rows_a, row i of the MC block from A's row of ic + i at column
     * pc; past the block's end, its last row again (a partial panel's extra
     * rows only fill the tile, whose valid rows alone reach C) */
    const real *row_at[MC + MR_MAX];
    for (int64_t jc = n0; jc < n1; jc += NC) {
        const int64_t nc = fm_min64(NC, n1 - jc), full = nc / nr * nr;
        for (int64_t pc = 0; pc < g->k; pc += kstep) {
            const int64_t kc = fm_min64(kstep, g->k - pc);
            const int add = g->accumulate || pc > 0, last = pc + kc == g->k;
            if (!b_in_place)
                pack_b(pb, g, pc, kc, jc, nc, nr);
            else if (full < nc)
                pack_b(pb + full * kc, g, pc, kc, jc + full, nc - full, nr);
            for (int64_t ic = m0; ic < m1; ic += MC) {
                const int64_t mc = fm_min64(MC, m1 - ic);
                if (rows_a) {
                    for (int64_t r = 0; r < mc + MR_MAX; r++) {
                        const int64_t i = ic + fm_min64(r, mc - 1);
                        row_at[r] = g->a + (g->a_rows ? g->a_rows[i] : i) * g->lda + pc;
                    }
                } else if (shared_a) {
                    pa = shared_panels(shared_a, a_stride, ic, pc, kc);
                } else {
                    pack_a(pa, g, ic, mc, pc, kc, ks);
                }
                for (int64_t jr = 0; jr < nc; jr += nr) {
                    const int64_t nn = fm_min64(nr, nc - jr);
                    const int direct = b_in_place && jr < full;
                    const real *b = direct ? g->b + pc * g->ldb + jc + jr : pb + jr * kc;
                    const int64_t ldb = direct ? g->ldb : nr;
                    for (int64_t ir = 0; ir < mc; ir += mr) {
                        const int64_t mm = fm_min64(mr, mc - ir);
                        const kernel_shape *ps = panel_shape(ks, mm);
                        real *c = g->c + (ic + ir) * g->ldc + jc + jr;
                        /* a whole tile straight into C, a partial one through `tile` */
                        const int whole = mm == ps->mr && nn == nr;
                        real *t = whole ? c : tile;
                        const int64_t ldt = whole ? g->ldc : nr;
                        if (rows_a)
                            ps->run_rows(kc, row_at + ir, b, ldb, t, ldt, whole && add);
                        else
                            ps->run(kc, pa + ir * kc, b, ldb, t, ldt, whole && add);
                        if (!whole)
                            for (int64_t r = 0; r < mm; r++)
                                for (int64_t j = 0; j < nn; j++)
                                    c[r * g->ldc + j] = add ? c[r * g->ldc + j] + tile[r * nr + j]
                                                            : tile[r * nr + j];
                        if (last && g->epilogue != EPI_NONE) epilogue(g, ic + ir, mm, jc + jr, nn);
                    }
                }
            }
        }
    }
}

typedef struct {
    const gemm_args *g;
    const kernel_shape *ks;
    real *pack;
    real *shared_a; /* all of op(A), packed (pack_task), or NULL */
    int64_t a_stride, panels, n_tasks;
    int by_cols, b_in_place;
} gemm_split;

/* Task `task` of n_tasks: an equal share of whole panels of C's columns
 * (or rows), with member tid's pack buffers. */
static void gemm_task(void *ctx, int64_t task, int tid)
{
    const gemm_split *s = ctx;
    const gemm_args *g = s->g;
    const int64_t first = s->panels * task / s->n_tasks, end = s->panels * (task + 1) / s->n_tasks;
    real *mine = s->pack + (int64_t)tid * fm_pack_elems();
    const kernel_shape *ks = s->ks;
    if (s->by_cols)
        gemm_block(g, ks, mine, s->b_in_place, s->shared_a, s->a_stride, 0, g->m,
                   first * ks->nr, fm_min64(end * ks->nr, g->n));
    else
        gemm_block(g, ks, mine, s->b_in_place, NULL, 0, first * ks->mr,
                   fm_min64(end * ks->mr, g->m), 0, g->n);
}

/* Task `task` of n_tasks: an equal share of whole row panels of op(A), in
 * every K block, packed where shared_panels puts them. */
static void pack_task(void *ctx, int64_t task, int tid)
{
    const gemm_split *s = ctx;
    const gemm_args *g = s->g;
    const int64_t kstep = k_step(g->k), row_panels = ceil_div(g->m, s->ks->mr);
    const int64_t i0 = row_panels * task / s->n_tasks * s->ks->mr;
    const int64_t i1 = fm_min64(row_panels * (task + 1) / s->n_tasks * s->ks->mr, g->m);
    (void)tid;
    for (int64_t pc = 0; i1 > i0 && pc < g->k; pc += kstep) {
        const int64_t kc = fm_min64(kstep, g->k - pc);
        pack_a(shared_panels(s->shared_a, s->a_stride, i0, pc, kc), g, i0, i1 - i0, pc, kc, s->ks);
    }
}

/* A packed and split by columns gives every thread all of A to pack. Above
 * this many elements of A the threads pack it once, together, into the
 * shared area (one more parallel loop, then each reads every panel from
 * there). The cost model below still charges each thread all of A. */
#define FM_SHARED_A_MIN 32768

/* Tasks a thread's share of a product comes in, at most, where no task
 * packs what another packs too (see gemm). */
#define FM_GEMM_TASKS_PER_THREAD 4

/* A packed element costs about this many multiply-adds (a load and a store
 * where the micro-kernel does 16 or 32 multiply-adds a cycle). */
#define FM_PACK_COST 8

/* Cost of the largest share when C's side of length `len`, cut in `panels`
 * panels of `width`, is split among nth threads: its multiply-adds, and
 * what it packs of the other operand (other x k: all of it, unless it is a
 * B read where it lies) and of its own (its part). */
static int64_t share_cost(int64_t len, int64_t other, int64_t k, int64_t panels, int width,
                          int nth, int pack_other, int pack_own)
{
    const int64_t share = fm_min64(ceil_div(panels, nth) * width, len);
    return share * other * k + FM_PACK_COST * (pack_other * other * k + pack_own * share * k);
}

/* Split C in whole tiles, one share per thread, along the side whose
 * largest share costs least; a share comes in up to FM_GEMM_TASKS_PER_THREAD
 * tasks, handed out as threads come free, where that packs nothing twice.
 * A B of at most FM_SMALL_WEIGHTS elements, row-major, is read where it
 * lies, and so is A where a_in_place. */
static void gemm(const gemm_args *g, real *pack, int n_threads)
{
    if (g->m < 1 || g->n < 1) return;
    const int b_in_place = !g->b_trans && g->k * g->n <= FM_SMALL_WEIGHTS;
    const kernel_shape *ks = shape_for(g->m);
    const int pack_a_too = !a_in_place(g, ks);
    const int64_t col_panels = ceil_div(g->n, ks->nr), row_panels = ceil_div(g->m, ks->mr);
    const int nth = threads_from(n_threads, g->m * g->n * g->k, FM_GEMM_MIN_WORK,
                                 col_panels > row_panels ? col_panels : row_panels);
    const int by_cols =
        nth > 1 &&
        share_cost(g->n, g->m, g->k, col_panels, ks->nr, nth, pack_a_too, !b_in_place) <
            share_cost(g->m, g->n, g->k, row_panels, ks->mr, nth, !b_in_place, pack_a_too);
    const int64_t panels = by_cols ? col_panels : row_panels;
    const int used = (int)fm_min64(nth, panels);
    gemm_split s = {g, ks, pack, NULL, row_panels * ks->mr, panels, used, by_cols, b_in_place};
    if (by_cols && used > 1 && pack_a_too && g->m * g->k >= FM_SHARED_A_MIN &&
        s.a_stride * g->k <= FM_SHARED_A_ELEMS) {
        /* the shared area follows the n_threads threads' own (fm_pack_total_elems);
         * one per pack buffer, so a gemm must not run inside another's task
         * with n_threads > 1 on the same buffer */
        s.shared_a = pack + (int64_t)n_threads * fm_pack_elems();
        fm_parallel_for(used, used, pack_task, &s);
    }
    /* smaller tasks, so that a thread that falls behind hands its last ones
     * to the others, where no task packs what another packs too: split by
     * columns, A read in place or packed once for all; by rows, B read in
     * place, with no partial panel (each task would pack that) */
    const int none_twice = by_cols ? !pack_a_too || s.shared_a != NULL
                                   : b_in_place && g->n % ks->nr == 0;
    if (used > 1 && none_twice)
        s.n_tasks = fm_min64(panels, (int64_t)used * FM_GEMM_TASKS_PER_THREAD);
    fm_parallel_for(used, s.n_tasks, gemm_task, &s);
}

/* ---- the dense-layer kernels ------------------------------------------------- */

typedef struct {
    real *Y;
    const real *X, *W, *b;
    const int64_t *rows;
    int64_t n, n_in, n_out, blocks, n_tasks;
} small_forward;

/* Task `task` of n_tasks: a share of the blocks of columns when there is
 * one for every task, else of the groups of four rows (the last task also
 * takes the rows left over), so each row goes through the same loop as it
 * would on one thread. */
static void small_forward_task(void *ctx, int64_t task, int tid)
{
    const small_forward *f = ctx;
    const int64_t nt = f->n_tasks;
    (void)tid;
    if (f->blocks >= nt) {
        const int64_t j0 = f->blocks * task / nt * FM_COLS_1;
        const int64_t j1 = fm_min64(f->blocks * (task + 1) / nt * FM_COLS_1, f->n_out);
        forward_block(f->Y, f->X, f->rows, f->W, f->b, 0, f->n, j0, j1, f->n_in, f->n_out);
    } else {
        const int64_t groups = f->n / 4;
        const int64_t i0 = groups * task / nt * 4;
        const int64_t i1 = task == nt - 1 ? f->n : groups * (task + 1) / nt * 4;
        forward_block(f->Y, f->X, f->rows, f->W, f->b, i0, i1, 0, f->n_out, f->n_in, f->n_out);
    }
}

void FM_FN(fm_dense_forward)(real *Y, const real *X, const int64_t *rows, const real *W,
                             const real *b, int32_t activation, int64_t n, int64_t n_in,
                             int64_t n_out, void *pack, int n_threads)
{
    if (n_out < FM_NARROW && (n < FM_PACKED_MIN_ROWS || n_in * n_out <= FM_SMALL_WEIGHTS)) {
        forward_narrow(Y, X, rows, W, b, n, n_in, n_out);
    } else if (n * n_in * n_out < FM_PACKED_MIN_WORK || n < FM_PACKED_MIN_ROWS) {
        /* few rows: the weights stream past once per four rows, unpacked,
         * split over threads by blocks of columns or groups of rows
         * (small_forward_task) */
        small_forward f = {Y, X, W, b, rows, n, n_in, n_out, ceil_div(n_out, FM_COLS_1), 1};
        /* with few rows the weights' trip from memory dominates: count each
         * weight as several multiply-adds when deciding on threads */
        const int64_t macs = n * n_in * n_out;
        const int64_t streamed = fm_min64(n, FM_PACKED_MIN_ROWS) * n_in * n_out * FM_STREAM_COST;
        const int64_t units = f.blocks > n / 4 ? f.blocks : n / 4;
        f.n_tasks = thread_count(n_threads, streamed > macs ? streamed : macs, units);
        fm_parallel_for((int)f.n_tasks, f.n_tasks, small_forward_task, &f);
    } else {
        const gemm_args g = {n, n_out, n_in, X, n_in, 0, rows, W, n_out, 0, Y, n_out, 0,
                             EPI_BIAS_ACTIVATION, b, NULL, activation};
        gemm(&g, (real *)pack, n_threads);
        if (activation == FM_SOFTMAX) FM_FN(fm_activation_forward)(Y, n, n_out, FM_SOFTMAX);
        return;
    }
    FM_FN(fm_activation_forward)(Y, n, n_out, activation);
}

void FM_FN(fm_dense_backward_data)(real *dX, const real *dY, const real *W, const real *A,
                                   int32_t activation, int64_t n, int64_t n_in,
                                   int64_t n_out, void *pack, int n_threads)
{
    if (n * n_in * n_out < FM_PACKED_MIN_WORK || n < FM_PACKED_MIN_ROWS) {
        backward_data_rows(dX, dY, W, 0, n, n_in, n_out);
        if (A) FM_FN(fm_activation_backward)(dX, A, NULL, n, n_in, activation);
        return;
    }
    const gemm_args g = {n, n_in, n_out, dY, n_out, 0, NULL, W, n_out, 1, dX, n_in, 0,
                         A ? EPI_DERIVATIVE : EPI_NONE, NULL, A, activation};
    gemm(&g, (real *)pack, n_threads);
}

void FM_FN(fm_dense_backward_params)(real *dW, real *db, const real *X, const int64_t *rows,
                                     const real *dY, int64_t n, int64_t n_in, int64_t n_out,
                                     void *pack, int n_threads)
{
    FM_FN(fm_dense_backward_params_to)(dW, db, X, rows, dY, n, n_in, n_out, pack, n_threads, 1);
}

void FM_FN(fm_dense_backward_params_to)(real *dW, real *db, const real *X,
                                        const int64_t *rows, const real *dY, int64_t n,
                                        int64_t n_in, int64_t n_out, void *pack,
                                        int n_threads, int add)
{
    if (!add) memset(db, 0, (size_t)n_out * sizeof(real));
    if (n * n_in * n_out < FM_PACKED_MIN_WORK ||
        (n_out < FM_NARROW && n_in * n_out <= FM_SMALL_WEIGHTS)) {
        if (!add) memset(dW, 0, (size_t)(n_in * n_out) * sizeof(real));
        backward_params_rows(dW, X, rows, dY, n, n_in, n_out);
    } else {
        /* without add, each element's first K block writes instead of adding */
        const gemm_args g = {n_in, n_out, n, X, n_in, 1, rows, dY, n_out, 0, dW, n_out, add,
                             EPI_NONE, NULL, NULL, 0};
        gemm(&g, (real *)pack, n_threads);
    }
    bias_grad(db, dY, n, n_out, n_threads);
}

/* ---- CSR input ------------------------------------------------------------- */

/* Rows [i0, i1) of Y = X W + b for CSR X. */
static void csr_forward_rows(real *FM_RESTRICT Y, const int64_t *indptr,
                                    const int64_t *indices, const real *values,
                                    const int64_t *rows, const real *FM_RESTRICT W,
                                    const real *FM_RESTRICT b, int64_t i0, int64_t i1,
                                    int64_t n_out)
{
    for (int64_t i = i0; i < i1; i++) {
        const int64_t r = rows ? rows[i] : i;
        real *FM_RESTRICT y = Y + i * n_out;
        memset(y, 0, (size_t)n_out * sizeof(real));
        for (int64_t p = indptr[r]; p < indptr[r + 1]; p++) {
            const real *FM_RESTRICT w = W + indices[p] * n_out;
            const real a = values[p];
            for (int64_t j = 0; j < n_out; j++) y[j] = fm_madd(a, w[j], y[j]);
        }
        for (int64_t j = 0; j < n_out; j++) y[j] += b[j];
    }
}

typedef struct {
    real *Y, *dW;
    const int64_t *indptr, *indices, *rows;
    const real *values, *W, *b, *dY;
    int64_t n, n_out, blocks, n_tasks;
} csr_args;

static void csr_forward_task(void *ctx, int64_t task, int tid)
{
    const csr_args *a = ctx;
    (void)tid;
    csr_forward_rows(a->Y, a->indptr, a->indices, a->values, a->rows, a->W, a->b,
                     a->n * task / a->n_tasks, a->n * (task + 1) / a->n_tasks, a->n_out);
}

void FM_FN(fm_csr_dense_forward)(real *Y, const int64_t *indptr, const int64_t *indices,
                                 const real *values, const int64_t *rows, const real *W,
                                 const real *b, int32_t activation, int64_t n, int64_t n_in,
                                 int64_t n_out, int n_threads)
{
    (void)n_in;
    csr_args a = {Y, NULL, indptr, indices, rows, values, W, b, NULL, n, n_out, 0, 1};
    a.n_tasks = thread_count(n_threads, n * n_out * FM_STREAM_COST, n);
    fm_parallel_for((int)a.n_tasks, a.n_tasks, csr_forward_task, &a);
    FM_FN(fm_activation_forward)(Y, n, n_out, activation);
}

/* Columns [j0, j1) of dW += X^T dY for CSR X: each thread owns whole column
 * blocks of dW and walks every sample in order. */
static void csr_backward_params_cols(real *FM_RESTRICT dW, const int64_t *indptr,
                                            const int64_t *indices, const real *values,
                                            const int64_t *rows, const real *FM_RESTRICT dY,
                                            int64_t j0, int64_t j1, int64_t n,
                                            int64_t n_out)
{
    for (int64_t i = 0; i < n; i++) {
        const int64_t r = rows ? rows[i] : i;
        const real *FM_RESTRICT d = dY + i * n_out;
        for (int64_t p = indptr[r]; p < indptr[r + 1]; p++) {
            real *FM_RESTRICT g = dW + indices[p] * n_out;
            const real a = values[p];
            for (int64_t j = j0; j < j1; j++) g[j] = fm_madd(a, d[j], g[j]);
        }
    }
}

static void csr_params_task(void *ctx, int64_t task, int tid)
{
    const csr_args *a = ctx;
    const int64_t nt = a->n_tasks;
    (void)tid;
    const int64_t j0 = a->blocks * task / nt * FM_COL_BLOCK;
    const int64_t j1 = fm_min64(a->blocks * (task + 1) / nt * FM_COL_BLOCK, a->n_out);
    csr_backward_params_cols(a->dW, a->indptr, a->indices, a->values, a->rows, a->dY, j0, j1,
                             a->n, a->n_out);
}

void FM_FN(fm_csr_backward_params)(real *dW, real *db, const int64_t *indptr,
                                   const int64_t *indices, const real *values,
                                   const int64_t *rows, const real *dY, int64_t n,
                                   int64_t n_in, int64_t n_out, int n_threads)
{
    (void)n_in;
    csr_args a = {NULL, dW, indptr, indices, rows, values, NULL, NULL, dY, n, n_out,
                  ceil_div(n_out, FM_COL_BLOCK), 1};
    a.n_tasks = thread_count(n_threads, n * n_out * FM_STREAM_COST, a.blocks);
    fm_parallel_for((int)a.n_tasks, a.n_tasks, csr_params_task, &a);
    bias_grad(db, dY, n, n_out, n_threads);
}
