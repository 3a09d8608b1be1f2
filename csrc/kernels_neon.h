/* NEON micro-kernels for aarch64, float and double.
 *
 *   acc [MR x NR] = sum_{p < kc} a[p MR + r] b[p ldb + c], from zero, ascending p
 *   t   [MR x NR, leading dimension ldt] = acc, or t + acc when add
 *
 * a is an MR-row panel packed p-major, b an NR-column panel packed p-major
 * (ldb = NR) or NR columns of a row-major matrix (ldb its row stride). Every
 * element takes one fused multiply-add per p in ascending p and then one
 * add into t: bit for bit the scalar loop acc = fma(a, b, acc) followed by
 * t = add ? t + acc : acc, like the x86 kernels, so results do not depend
 * on how the tiles are shared among threads.
 *
 *   float  12 x 8: 24 accumulators (12 rows x 2 vectors of 4), 2 vectors of
 *                  b and 3 of a per p; 29 of the 32 vector registers.
 *   double  6 x 8: 24 accumulators (6 rows x 4 vectors of 2), 4 vectors of
 *                  b and 3 of a per p; 31 of the 32 vector registers.
 *
 * Each a vector holds several rows' values; fmla by element multiplies a b
 * vector by one lane of it, so a needs no broadcast. Both shapes are panel
 * widths the packing code supports, with MR dividing FM_MC and NR dividing
 * FM_NC (which rules out NR = 12). Of the shapes with 24 accumulators
 * these load the fewest vectors per p: float 6 x 16 would load 6 (a is
 * 1.5 vectors), double 12 x 4 would load 8 and need all 32 registers.
 *
 * Inner loop per p, counted in aarch64-linux-gnu-objdump -d of GCC 12 -O3
 * and clang 14 -O3 builds (b's stride a run-time argument), the same for
 * both compilers:
 *   float:  3 vectors of a and 2 of b in 3 load instructions (2 ldp, 1 ldr),
 *           24 fmla, no stores, nothing from the stack;
 *   double: 3 vectors of a and 4 of b in 4 load instructions (3 ldp, and
 *           1 ldr from clang or 1 ldur from GCC),
 *           24 fmla, no stores, nothing from the stack.
 * That is 8 and 6 fmla per load instruction (96 and 48 multiply-adds per
 * 80 and 112 bytes of panel).
 *
 * Plain ACLE intrinsics and standard C only (no attributes, statement
 * expressions, variable-length arrays or vector subscripts), for GCC, clang
 * and MSVC for ARM64 alike. The lane argument of vfmaq_laneq_* must be a
 * constant even without optimisation, hence the rows written out through
 * FM_NEON_FMA_* below. The kernels are static inline, so a source that
 * includes this header but uses one precision gets no unused-function
 * warning for the other.
 */
#ifndef FM_KERNELS_NEON_H
#define FM_KERNELS_NEON_H

#if defined(__aarch64__) || defined(_M_ARM64)

#include <arm_neon.h>
#include <stdint.h>

#define FM_NEON_F32_MR 12
#define FM_NEON_F32_NR 8
#define FM_NEON_F64_MR 6
#define FM_NEON_F64_NR 8

/* dst = v, or dst + v when add */
static inline void fm_neon_store_f32(float *dst, float32x4_t v, int add)
{
    vst1q_f32(dst, add ? vaddq_f32(vld1q_f32(dst), v) : v);
}

static inline void fm_neon_store_f64(double *dst, float64x2_t v, int add)
{
    vst1q_f64(dst, add ? vaddq_f64(vld1q_f64(dst), v) : v);
}

/* Row R of the float tile: its two accumulators += b * lane L of A. */
#define FM_NEON_FMA_F32(R, A, L)                    \
    c##R##_0 = vfmaq_laneq_f32(c##R##_0, b0, A, L); \
    c##R##_1 = vfmaq_laneq_f32(c##R##_1, b1, A, L);

static inline void fm_kernel_neon_f32(int64_t kc, const float *a, const float *b, int64_t ldb,
                                      float *t, int64_t ldt, int add)
{
    const float32x4_t z = vdupq_n_f32(0.0f);
    float32x4_t c0_0 = z, c0_1 = z, c1_0 = z, c1_1 = z, c2_0 = z, c2_1 = z;
    float32x4_t c3_0 = z, c3_1 = z, c4_0 = z, c4_1 = z, c5_0 = z, c5_1 = z;
    float32x4_t c6_0 = z, c6_1 = z, c7_0 = z, c7_1 = z, c8_0 = z, c8_1 = z;
    float32x4_t c9_0 = z, c9_1 = z, c10_0 = z, c10_1 = z, c11_0 = z, c11_1 = z;
    for (int64_t p = 0; p < kc; p++) {
        const float32x4_t a0 = vld1q_f32(a), a1 = vld1q_f32(a + 4), a2 = vld1q_f32(a + 8);
        const float32x4_t b0 = vld1q_f32(b), b1 = vld1q_f32(b + 4);
        FM_NEON_FMA_F32(0, a0, 0)
        FM_NEON_FMA_F32(1, a0, 1)
        FM_NEON_FMA_F32(2, a0, 2)
        FM_NEON_FMA_F32(3, a0, 3)
        FM_NEON_FMA_F32(4, a1, 0)
        FM_NEON_FMA_F32(5, a1, 1)
        FM_NEON_FMA_F32(6, a1, 2)
        FM_NEON_FMA_F32(7, a1, 3)
        FM_NEON_FMA_F32(8, a2, 0)
        FM_NEON_FMA_F32(9, a2, 1)
        FM_NEON_FMA_F32(10, a2, 2)
        FM_NEON_FMA_F32(11, a2, 3)
        a += FM_NEON_F32_MR;
        b += ldb;
    }
    fm_neon_store_f32(t, c0_0, add);
    fm_neon_store_f32(t + 4, c0_1, add);
    fm_neon_store_f32(t + ldt, c1_0, add);
    fm_neon_store_f32(t + ldt + 4, c1_1, add);
    fm_neon_store_f32(t + 2 * ldt, c2_0, add);
    fm_neon_store_f32(t + 2 * ldt + 4, c2_1, add);
    fm_neon_store_f32(t + 3 * ldt, c3_0, add);
    fm_neon_store_f32(t + 3 * ldt + 4, c3_1, add);
    fm_neon_store_f32(t + 4 * ldt, c4_0, add);
    fm_neon_store_f32(t + 4 * ldt + 4, c4_1, add);
    fm_neon_store_f32(t + 5 * ldt, c5_0, add);
    fm_neon_store_f32(t + 5 * ldt + 4, c5_1, add);
    fm_neon_store_f32(t + 6 * ldt, c6_0, add);
    fm_neon_store_f32(t + 6 * ldt + 4, c6_1, add);
    fm_neon_store_f32(t + 7 * ldt, c7_0, add);
    fm_neon_store_f32(t + 7 * ldt + 4, c7_1, add);
    fm_neon_store_f32(t + 8 * ldt, c8_0, add);
    fm_neon_store_f32(t + 8 * ldt + 4, c8_1, add);
    fm_neon_store_f32(t + 9 * ldt, c9_0, add);
    fm_neon_store_f32(t + 9 * ldt + 4, c9_1, add);
    fm_neon_store_f32(t + 10 * ldt, c10_0, add);
    fm_neon_store_f32(t + 10 * ldt + 4, c10_1, add);
    fm_neon_store_f32(t + 11 * ldt, c11_0, add);
    fm_neon_store_f32(t + 11 * ldt + 4, c11_1, add);
}

/* Row R of the double tile: its four accumulators += b * lane L of A. */
#define FM_NEON_FMA_F64(R, A, L)                    \
    c##R##_0 = vfmaq_laneq_f64(c##R##_0, b0, A, L); \
    c##R##_1 = vfmaq_laneq_f64(c##R##_1, b1, A, L); \
    c##R##_2 = vfmaq_laneq_f64(c##R##_2, b2, A, L); \
    c##R##_3 = vfmaq_laneq_f64(c##R##_3, b3, A, L);

static inline void fm_kernel_neon_f64(int64_t kc, const double *a, const double *b,
                                      int64_t ldb, double *t, int64_t ldt, int add)
{
    const float64x2_t z = vdupq_n_f64(0.0);
    float64x2_t c0_0 = z, c0_1 = z, c0_2 = z, c0_3 = z, c1_0 = z, c1_1 = z, c1_2 = z, c1_3 = z;
    float64x2_t c2_0 = z, c2_1 = z, c2_2 = z, c2_3 = z, c3_0 = z, c3_1 = z, c3_2 = z, c3_3 = z;
    float64x2_t c4_0 = z, c4_1 = z, c4_2 = z, c4_3 = z, c5_0 = z, c5_1 = z, c5_2 = z, c5_3 = z;
    for (int64_t p = 0; p < kc; p++) {
        const float64x2_t a0 = vld1q_f64(a), a1 = vld1q_f64(a + 2), a2 = vld1q_f64(a + 4);
        const float64x2_t b0 = vld1q_f64(b), b1 = vld1q_f64(b + 2);
        const float64x2_t b2 = vld1q_f64(b + 4), b3 = vld1q_f64(b + 6);
        FM_NEON_FMA_F64(0, a0, 0)
        FM_NEON_FMA_F64(1, a0, 1)
        FM_NEON_FMA_F64(2, a1, 0)
        FM_NEON_FMA_F64(3, a1, 1)
        FM_NEON_FMA_F64(4, a2, 0)
        FM_NEON_FMA_F64(5, a2, 1)
        a += FM_NEON_F64_MR;
        b += ldb;
    }
    fm_neon_store_f64(t, c0_0, add);
    fm_neon_store_f64(t + 2, c0_1, add);
    fm_neon_store_f64(t + 4, c0_2, add);
    fm_neon_store_f64(t + 6, c0_3, add);
    fm_neon_store_f64(t + ldt, c1_0, add);
    fm_neon_store_f64(t + ldt + 2, c1_1, add);
    fm_neon_store_f64(t + ldt + 4, c1_2, add);
    fm_neon_store_f64(t + ldt + 6, c1_3, add);
    fm_neon_store_f64(t + 2 * ldt, c2_0, add);
    fm_neon_store_f64(t + 2 * ldt + 2, c2_1, add);
    fm_neon_store_f64(t + 2 * ldt + 4, c2_2, add);
    fm_neon_store_f64(t + 2 * ldt + 6, c2_3, add);
    fm_neon_store_f64(t + 3 * ldt, c3_0, add);
    fm_neon_store_f64(t + 3 * ldt + 2, c3_1, add);
    fm_neon_store_f64(t + 3 * ldt + 4, c3_2, add);
    fm_neon_store_f64(t + 3 * ldt + 6, c3_3, add);
    fm_neon_store_f64(t + 4 * ldt, c4_0, add);
    fm_neon_store_f64(t + 4 * ldt + 2, c4_1, add);
    fm_neon_store_f64(t + 4 * ldt + 4, c4_2, add);
    fm_neon_store_f64(t + 4 * ldt + 6, c4_3, add);
    fm_neon_store_f64(t + 5 * ldt, c5_0, add);
    fm_neon_store_f64(t + 5 * ldt + 2, c5_1, add);
    fm_neon_store_f64(t + 5 * ldt + 4, c5_2, add);
    fm_neon_store_f64(t + 5 * ldt + 6, c5_3, add);
}

#undef FM_NEON_FMA_F32
#undef FM_NEON_FMA_F64

#endif
#endif
