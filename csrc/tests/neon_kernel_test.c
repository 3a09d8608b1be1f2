/* The NEON micro-kernels (kernels_neon.h) against the scalar loop they must
 * equal bit for bit: acc = fma(a, b, acc) in ascending p from zero, then
 * t = add ? t + acc : acc. Random panels, depths from 1 to past FM_KC, both
 * values of add, a tile inside a wider matrix whose other columns must stay
 * untouched, and panels and tile off 16-byte alignment. Panels whose
 * products are all signed zeros check that the sum starts from +0 (a kernel
 * starting from the first product would leave -0 where it should be +0).
 *
 * The data must be able to tell a wrong kernel from a right one: over the
 * run, the unfused sum and the sum in descending p must each differ from
 * the reference somewhere, else the test fails too.
 *
 * Exits 0 and prints one "neon <type> MRxNR ok" line per kernel when all
 * match. aarch64 only. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../kernels_neon.h"

#ifndef FM_NEON_F32_MR
#error "neon_kernel_test.c needs an aarch64 target"
#endif

static const int64_t DEPTHS[] = {1, 2, 3, 7, 64, 256, 257};
#define N_DEPTHS ((int)(sizeof DEPTHS / sizeof DEPTHS[0]))
/* columns of the matrix the tile sits in, beyond the tile's NR */
#define EXTRA_COLS 3

static uint64_t rng_state = 0x2545f4914f6cdd1dULL;

/* splitmix64 */
static uint64_t next_u64(void)
{
    uint64_t z = (rng_state += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

/* uniform in [-1, 1) with all 53 bits random */
static double uniform(void) { return (double)(next_u64() >> 11) * 0x1p-52 - 1.0; }

/* CHECK_KERNEL(T, NAME, FMA, KERNEL, MR, NR) defines
 * static int NAME(int64_t kc, int add, int zeros, int64_t *unfused_diff,
 *                 int64_t *reversed_diff):
 * runs KERNEL on fresh random panels (b all +0 or -0 when zeros), returns
 * the number of tile elements that differ from the fused ascending
 * reference (a padding column that changed counts as one more), and adds to
 * the two counters the elements where the unfused and the descending sums
 * differ from that reference. */
#define CHECK_KERNEL(T, NAME, FMA, KERNEL, MR, NR)                                          \
    static int NAME(int64_t kc, int add, int zeros, int64_t *unfused_diff,                  \
                    int64_t *reversed_diff)                                                 \
    {                                                                                       \
        const int64_t ldt = (NR) + EXTRA_COLS;                                              \
        /* one element more than needed, used as offset so nothing is 16-byte aligned */    \
        T *a_buf = malloc((size_t)(kc * (MR) + 1) * sizeof(T));                             \
        /* b packed (ldb = NR) or read in place from a wider matrix */                    \
        const int64_t ldb = (NR) + (kc % 2 ? 5 : 0);                                         \
        T *b_buf = malloc((size_t)(kc * ldb + 1) * sizeof(T));                              \
        T *t_buf = malloc((size_t)((MR) * ldt + 1) * sizeof(T));                            \
        T *before = malloc((size_t)((MR) * ldt) * sizeof(T));                               \
        if (!a_buf || !b_buf || !t_buf || !before) {                                        \
            printf("out of memory\n");                                                      \
            exit(2);                                                                        \
        }                                                                                   \
        T *a = a_buf + 1, *b = b_buf + 1, *t = t_buf + 1;                                   \
        for (int64_t i = 0; i < kc * (MR); i++) a[i] = (T)uniform();                        \
        for (int64_t i = 0; i < kc * ldb; i++)                                              \
            b[i] = zeros ? (next_u64() >> 63 ? (T)-0.0 : (T)0.0) : (T)uniform();            \
        for (int64_t i = 0; i < (MR) * ldt; i++) t[i] = before[i] = (T)uniform();           \
        KERNEL(kc, a, b, ldb, t, ldt, add);                                                 \
        int bad = 0;                                                                        \
        for (int r = 0; r < (MR); r++) {                                                    \
            for (int c = 0; c < (NR); c++) {                                                \
                T acc = 0, up = 0, down = 0;                                                \
                for (int64_t p = 0; p < kc; p++) {                                          \
                    acc = FMA(a[p * (MR) + r], b[p * ldb + c], acc);                        \
                    /* volatile: the product is rounded before the add */                   \
                    volatile T prod = a[p * (MR) + r] * b[p * ldb + c];                     \
                    up = prod + up;                                                         \
                }                                                                           \
                for (int64_t p = kc - 1; p >= 0; p--)                                       \
                    down = FMA(a[p * (MR) + r], b[p * ldb + c], down);                      \
                const T old = before[r * ldt + c];                                          \
                const T want = add ? old + acc : acc;                                       \
                const T got = t[r * ldt + c];                                               \
                *unfused_diff += memcmp(&up, &acc, sizeof(T)) != 0;                         \
                *reversed_diff += memcmp(&down, &acc, sizeof(T)) != 0;                      \
                if (memcmp(&got, &want, sizeof(T)) != 0) {                                  \
                    if (!bad)                                                               \
                        printf("%s kc=%lld add=%d: t[%d][%d] = %a, want %a\n", #KERNEL,     \
                               (long long)kc, add, r, c, (double)got, (double)want);        \
                    bad++;                                                                  \
                }                                                                           \
            }                                                                               \
            for (int64_t c = (NR); c < ldt; c++)                                            \
                if (memcmp(&t[r * ldt + c], &before[r * ldt + c], sizeof(T)) != 0) {        \
                    if (!bad)                                                               \
                        printf("%s kc=%lld add=%d: wrote column %lld of row %d\n", #KERNEL, \
                               (long long)kc, add, (long long)c, r);                        \
                    bad++;                                                                  \
                }                                                                           \
        }                                                                                   \
        free(a_buf);                                                                        \
        free(b_buf);                                                                        \
        free(t_buf);                                                                        \
        free(before);                                                                       \
        return bad;                                                                         \
    }

CHECK_KERNEL(float, check_f32, fmaf, fm_kernel_neon_f32, FM_NEON_F32_MR, FM_NEON_F32_NR)
CHECK_KERNEL(double, check_f64, fma, fm_kernel_neon_f64, FM_NEON_F64_MR, FM_NEON_F64_NR)

typedef int (*check_fn)(int64_t kc, int add, int zeros, int64_t *unfused_diff,
                        int64_t *reversed_diff);

/* Every depth with add 0 and 1, three random draws and one of signed zeros
 * each; 0 when all match. */
static int run(const char *type, check_fn check, int mr, int nr)
{
    int64_t unfused_diff = 0, reversed_diff = 0;
    int bad = 0;
    for (int d = 0; d < N_DEPTHS; d++)
        for (int add = 0; add <= 1; add++)
            for (int draw = 0; draw < 4; draw++)
                bad += check(DEPTHS[d], add, draw == 3, &unfused_diff, &reversed_diff) != 0;
    if (unfused_diff == 0 || reversed_diff == 0) {
        printf("neon %s: the data cannot tell an unfused (%lld) or reordered (%lld) sum "
               "from the reference\n",
               type, (long long)unfused_diff, (long long)reversed_diff);
        bad++;
    }
    if (bad) {
        printf("neon %s %dx%d FAILED (%d runs)\n", type, mr, nr, bad);
        return 1;
    }
    printf("neon %s %dx%d ok\n", type, mr, nr);
    return 0;
}

int main(void)
{
    int failed = run("f32", check_f32, FM_NEON_F32_MR, FM_NEON_F32_NR);
    failed += run("f64", check_f64, FM_NEON_F64_MR, FM_NEON_F64_NR);
    return failed != 0;
}
