/* The worked backpropagation example (shared/WORKED_EXAMPLE.md) driven
 * through the C API alone, in both precisions: one step, then one epoch.
 * Exits 0 when every number matches to 1e-6. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "fastmlp.h"

static const double X[6] = {0.5, -0.5, 0.3, 0.4, 0.7, 0.9};
static const double Y[6] = {0.9, 0.1, 0.9, 0.9, 0.1, 0.1};
/* W0 (2x2), W1 (2x2), b0 (2), b1 (2): the flat layout of fastmlp.h */
static const double START[12] = {0.1, 0.3, -0.2, 0.55, 0.37, -0.22, 0.9, -0.12,
                                 0.01, -0.02, 0.31, 0.27};
static const double AFTER_ONE_STEP[12] = {0.105522, 0.306898, -0.205522, 0.543102,
                                          0.394148, -0.288500, 0.920745, -0.178845,
                                          0.021044, -0.006203, 0.354726, 0.143128};

static int failures = 0;

static void expect(const char *what, double got, double want)
{
    if (fabs(got - want) > 1e-6) {
        printf("FAIL %s: got %.8f, want %.6f\n", what, got, want);
        failures++;
    }
}

#define RUN(T, DTYPE)                                                                  \
    do {                                                                               \
        int64_t units[3] = {2, 2, 2};                                                  \
        int32_t acts[2] = {FM_LOGISTIC, FM_LOGISTIC};                                  \
        fm_net net = {2, units, acts, FM_SQUARED_ERROR, 0.0, NULL, 0};                          \
        T x[6], y[6], params[12], grads[12], velocity[12];                             \
        static unsigned char work[1 << 21];                                               \
        int64_t order[3] = {0, 1, 2};                                                  \
        for (int i = 0; i < 6; i++) { x[i] = (T)X[i]; y[i] = (T)Y[i]; }                \
        for (int i = 0; i < 12; i++) params[i] = (T)START[i];                          \
        memset(velocity, 0, sizeof velocity);                                          \
        fm_data data = {3, x, NULL, NULL, NULL, y, NULL};                              \
        fm_optimizer opt = {FM_SGD, 1.2, 0.0, 0, 0.9, 0.999, 1e-8, 0, 0, 0};                 \
        double loss = 0;                                                               \
        if (fm_workspace_bytes(&net, 1, DTYPE, 1) > (int64_t)sizeof work) return 2;       \
        fm_run run = {1, 0, 0, FM_CONSTANT, 0, 1e9, 1.2, 0.5, 0, 1e300, 0, 0, 0, 0};      \
        fm_status s = fm_train(DTYPE, params, grads, velocity, NULL, work, &loss, order, 1,  \
                               &run, NULL, &data, &net, &opt, 1, 1, 1, NULL);             \
        if (s != FM_OK || run.epochs != 1) return 3;                                   \
        for (int i = 0; i < 12; i++) expect(#T " first step", params[i], AFTER_ONE_STEP[i]); \
        expect(#T " E of the first sample", loss * 2, 0.106669);                       \
        expect(#T " samples seen", (double)run.t, 1);                                  \
        for (int i = 0; i < 12; i++) params[i] = (T)START[i];                          \
        s = fm_train(DTYPE, params, grads, velocity, NULL, work, &loss, order, 3, &run, NULL,\
                     &data, &net, &opt, 1, 1, 1, NULL);                                 \
        if (s != FM_OK || run.epochs != 1) return 3;                                   \
        expect(#T " summed E of one epoch", loss * 3 * 2, 0.523640);                   \
    } while (0)

int main(void)
{
    RUN(double, FM_FLOAT64);
    RUN(float, FM_FLOAT32);
    printf("%s (openmp %d)\n", failures ? "FAILED" : "ok", fm_have_openmp());
    return failures ? 1 : 0;
}
