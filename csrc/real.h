/* Working precision and instruction set of the generic sources.
 *
 * gemm.c, activations.c, losses.c, optimizers.c and model.c are written once
 * against `real` and compiled once per precision and instruction set: with
 * FM_REAL_F32 defined (float) or not (double), and FM_ISA naming the
 * instruction set the build compiles them for (avx512, avx2, sse2, neon,
 * generic). Every external name they define goes through FM_FN, which
 * appends the precision and the instruction set (fm_train_f32_avx2). The
 * fm_<math> names call the function of the working precision (expf or exp),
 * the same on every compiler. No include guard: dispatch.c includes this
 * file once per variant, with kernels.h after it each time.
 */
#include <float.h>
#include <math.h>

#ifndef FM_ISA
#define FM_ISA generic
#endif

#undef real
#undef FM_PREC
#undef FM_EPS
#undef fm_exp
#undef fm_expm1
#undef fm_log1p
#undef fm_tanh
#undef fm_erf
#undef fm_sqrt
#undef fm_fmin
#undef fm_fmax
#undef fm_madd
#ifdef FM_REAL_F32
#define real float
#define FM_PREC f32
#define FM_EPS FLT_EPSILON
#define fm_exp expf
#define fm_expm1 expm1f
#define fm_log1p log1pf
#define fm_tanh tanhf
#define fm_erf erff
#define fm_sqrt sqrtf
#define fm_fmin fminf
#define fm_fmax fmaxf
#else
#define real double
#define FM_PREC f64
#define FM_EPS DBL_EPSILON
#define fm_exp exp
#define fm_expm1 expm1
#define fm_log1p log1p
#define fm_tanh tanh
#define fm_erf erf
#define fm_sqrt sqrt
#define fm_fmin fmin
#define fm_fmax fmax
#endif

/* fm_madd(a, b, c) = a b + c: one fused multiply-add where the instruction
 * set has them (the compiler turns fma() into the instruction there), a
 * multiply then an add elsewhere. The same everywhere within one variant,
 * so results never depend on which loop or thread computes an element. */
#if defined(FM_ISA_AVX2) || defined(FM_ISA_AVX512) || defined(FM_ISA_NEON)
#ifdef FM_REAL_F32
#define fm_madd(a, b, c) fmaf(a, b, c)
#else
#define fm_madd(a, b, c) fma(a, b, c)
#endif
#else
#define fm_madd(a, b, c) ((a) * (b) + (c))
#endif

/* Bytes and number of the instruction set's vector registers: 32 of 64
 * bytes (AVX-512), of 16 bytes (NEON), 16 of 32 bytes (AVX2) or of 16
 * bytes (SSE2, and the portable build). */
#undef FM_VECTOR_BYTES
#undef FM_VECTOR_REGISTERS
#if defined(FM_ISA_AVX512)
#define FM_VECTOR_BYTES 64
#define FM_VECTOR_REGISTERS 32
#elif defined(FM_ISA_AVX2)
#define FM_VECTOR_BYTES 32
#define FM_VECTOR_REGISTERS 16
#elif defined(FM_ISA_NEON)
#define FM_VECTOR_BYTES 16
#define FM_VECTOR_REGISTERS 32
#else
#define FM_VECTOR_BYTES 16
#define FM_VECTOR_REGISTERS 16
#endif

#ifndef FM_FN
#define FM_NAME3(name, prec, isa) name##_##prec##_##isa
#define FM_NAME(name, prec, isa) FM_NAME3(name, prec, isa)
#define FM_FN(name) FM_NAME(name, FM_PREC, FM_ISA)
#endif
