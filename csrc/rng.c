/* numpy's RandomState shuffle, reproduced so that epochs can be shuffled in
 * C and still draw exactly what scikit-learn draws: the MT19937 generator,
 * bounded integers by masked rejection, and Fisher-Yates from the end. */
#include "fastmlp.h"

#define MT_N 624
#define MT_M 397

static void mt_refill(fm_mt19937 *s)
{
    for (int i = 0; i < MT_N; i++) {
        const uint32_t y = (s->key[i] & 0x80000000u) | (s->key[(i + 1) % MT_N] & 0x7fffffffu);
        s->key[i] = s->key[(i + MT_M) % MT_N] ^ (y >> 1) ^ ((y & 1u) ? 0x9908b0dfu : 0u);
    }
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
    uint32_t mask = max;
    mask |= mask >> 1;
    mask |= mask >> 2;
    mask |= mask >> 4;
    mask |= mask >> 8;
    mask |= mask >> 16;
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
