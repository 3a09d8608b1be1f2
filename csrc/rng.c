/* numpy's RandomState shuffle, reproduced so that epochs can be shuffled in
 * C and still draw exactly what scikit-learn draws: the MT19937 generator,
 * bounded integers by masked rejection, and Fisher-Yates from the end. */
#include "compat.h"
#include "fastmlp.h"

#define MT_N 624
#define MT_M 397

/* key[i] from key[i], key[i + 1] and key[i + MT_M], indexes mod MT_N; the
 * three ranges where they wrap differently run as separate loops. */
static inline uint32_t mt_twist(uint32_t ki, uint32_t knext, uint32_t km)
{
    const uint32_t y = (ki & 0x80000000u) | (knext & 0x7fffffffu);
    return km ^ (y >> 1) ^ ((y & 1u) ? 0x9908b0dfu : 0u);
}

static void mt_refill(fm_mt19937 *s)
{
    uint32_t *k = s->key;
    int i = 0;
    for (; i < MT_N - MT_M; i++) k[i] = mt_twist(k[i], k[i + 1], k[i + MT_M]);
    for (; i < MT_N - 1; i++) k[i] = mt_twist(k[i], k[i + 1], k[i + MT_M - MT_N]);
    k[MT_N - 1] = mt_twist(k[MT_N - 1], k[0], k[MT_M - 1]);
    s->pos = 0;
}

static uint32_t mt_next32(fm_mt19937 *s)
{
    if (s->pos >= MT_N) mt_refill(s);
    uint32_t y = s->key[s->pos++];
    y ^= y >> 11;
    y ^= (y << 7) & 0x9d2c5680u;
    y ^= (y << 15) & 0xefc60000u;
    y ^= y >> 18;
    return y;
}

/* uniform integer in [0, max], max < 2^32 */
static uint32_t bounded(fm_mt19937 *s, uint32_t max)
{
    if (max == 0) return 0;
    /* all ones up to max's highest set bit */
    const uint32_t mask = 0xffffffffu >> fm_clz32(max);
    uint32_t v;
    while ((v = mt_next32(s) & mask) > max) {
    }
    return v;
}

fm_status fm_shuffle(fm_mt19937 *rng, int64_t *x, int64_t n)
{
    if (n > (int64_t)UINT32_MAX || rng->pos < 0 || rng->pos > MT_N) return FM_ERR_ARGUMENT;
    for (int64_t i = n - 1; i > 0; i--) {
        const int64_t j = bounded(rng, (uint32_t)i);
        const int64_t t = x[i];
        x[i] = x[j];
        x[j] = t;
    }
    return FM_OK;
}
