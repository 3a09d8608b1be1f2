/* Working precision of the generic sources.
 *
 * gemm.c, activations.c, losses.c, optimizers.c and model.c are written once
 * against `real` and compiled twice: with FM_REAL_F32 defined (float) and
 * without (double). Every external name they define goes through FM_FN, which
 * appends _f32 or _f64. No include guard: dispatch.c includes this file once
 * per precision, with kernels.h after it each time.
 */
#include <float.h>

#undef real
#undef FM_FN
#undef FM_EPS
#ifdef FM_REAL_F32
#define real float
#define FM_FN(name) name##_f32
#define FM_EPS FLT_EPSILON
#else
#define real double
#define FM_FN(name) name##_f64
#define FM_EPS DBL_EPSILON
#endif
