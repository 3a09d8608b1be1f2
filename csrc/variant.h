/* Prototypes of one instruction set's variant (FM_ISA), in both precisions,
 * for dispatch.c. No include guard: included once per instruction set. */
#define FM_REAL_F32
#include "real.h"
#include "kernels.h"
#undef FM_REAL_F32
#include "real.h"
#include "kernels.h"
