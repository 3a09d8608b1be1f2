/* The network as a whole: forward and backward over every layer for one
 * batch, and the three drivers built on them (one training epoch, the
 * whole-data loss and gradient, prediction).
 *
 * Per batch of n rows (sw = sample weights, S = sum sw):
 *   A_0 = X,  A_{l+1} = f_l(A_l W_l + b_l)                          forward
 *   D_L = (A_L - Y) sw, times f'(A_L) unless (loss, f_L) is canonical
 *   dW_l = (A_l^T D_l + alpha W_l) / S,  db_l = sum D_l / S
 *   D_{l-1} = (D_l W_l^T) * f'_{l-1}(A_l)                           backward
 * which is scikit-learn's backpropagation, operation for operation.
 */
#include <math.h>
#include <string.h>

#include "common.h"

static inline real *act_at(void *work, const fm_layout *lay, const fm_net *net,
                           int64_t rows, int64_t layer)
{
    /* layer >= 1; activations of consecutive layers are laid out in order */
    char *p = (char *)work + lay->acts;
    for (int64_t l = 1; l < layer; l++) {
        const int64_t bytes = rows * net->units[l] * (int64_t)sizeof(real);
        p += (bytes + 63) / 64 * 64;
    }
    return (real *)p;
}

static inline const real *weights(const real *params, const fm_net *net, int64_t l)
{
    return params + fm_weight_offset(net, l);
}

static inline const real *biases(const real *params, const fm_net *net, int64_t l)
{
    return params + fm_bias_offset(net, l);
}

/* Pass the batch through every layer; the output layer writes into `out`
 * when given (prediction), into the workspace otherwise. Returns A_L. */
static real *forward(real *out, void *work, const fm_layout *lay,
                     const FM_FN(fm_batch) *batch, const real *params,
                     const fm_net *net, int64_t n, int64_t ws_rows, int n_threads)
{
    const int64_t L = net->n_layers;
    void *pack = (char *)work + lay->pack;
    const real *A = batch->x;
    real *Z = NULL;
    for (int64_t l = 0; l < L; l++) {
        Z = (l == L - 1 && out) ? out : act_at(work, lay, net, ws_rows, l + 1);
        const int64_t n_in = net->units[l], n_out = net->units[l + 1];
        const int32_t f = net->activation[l];
        if (l == 0 && !batch->x)
            FM_FN(fm_csr_dense_forward)(Z, batch->indptr, batch->indices, batch->values,
                                        batch->rows, weights(params, net, 0),
                                        biases(params, net, 0), f, n, n_in, n_out,
                                        n_threads);
        else
            FM_FN(fm_dense_forward)(Z, A, l == 0 ? batch->rows : NULL, weights(params, net, l),
                                    biases(params, net, l), f, n, n_in, n_out, pack,
                                    n_threads);
        A = Z;
    }
    return Z;
}

static void accumulate(real *grads, double *wloss, double *wsum, void *work,
                       const fm_layout *lay, const FM_FN(fm_batch) *batch,
                       const real *params, const fm_net *net, int64_t n, int64_t ws_rows,
                       int n_threads)
{
    const int64_t L = net->n_layers, K = net->units[L];
    void *pack = (char *)work + lay->pack;
    const real *P = forward(NULL, work, lay, batch, params, net, n, ws_rows, n_threads);

    double *l = (double *)((char *)work + lay->loss);
    FM_FN(fm_loss_forward)(l, P, batch->y, batch->rows, n, K, net->loss);
    double loss = 0, S = 0;
    for (int64_t i = 0; i < n; i++) {
        const double w = batch->sw ? (double)batch->sw[batch->rows ? batch->rows[i] : i] : 1.0;
        loss += w * l[i];
        S += w;
    }
    *wloss += loss;
    *wsum += S;

    real *D = (real *)((char *)work + lay->delta0);
    real *D_next = (real *)((char *)work + lay->delta1);
    FM_FN(fm_loss_backward)(D, P, batch->y, batch->sw, batch->rows, n, K);
    if (!fm_is_canonical(net->loss, net->activation[L - 1]))
        FM_FN(fm_activation_backward)(D, P, n, K, net->activation[L - 1]);

    for (int64_t l = L - 1; l >= 0; l--) {
        const int64_t n_in = net->units[l], n_out = net->units[l + 1];
        real *dW = grads + fm_weight_offset(net, l);
        real *db = grads + fm_bias_offset(net, l);
        if (l == 0 && !batch->x) {
            FM_FN(fm_csr_backward_params)(dW, db, batch->indptr, batch->indices,
                                          batch->values, batch->rows, D, n, n_in, n_out,
                                          n_threads);
            break;
        }
        if (l == 0) {
            FM_FN(fm_dense_backward_params)(dW, db, batch->x, batch->rows, D, n, n_in, n_out,
                                            pack, n_threads);
            break;
        }
        const real *A = act_at(work, lay, net, ws_rows, l);
        FM_FN(fm_dense_backward_params)(dW, db, A, NULL, D, n, n_in, n_out, pack, n_threads);
        FM_FN(fm_dense_backward_data)(D_next, D, weights(params, net, l), A,
                                      net->activation[l - 1], n, n_in, n_out, pack,
                                      n_threads);
        real *t = D;
        D = D_next;
        D_next = t;
    }
}

/* grads = (grads + alpha W) / S for weights, grads / S for biases; returns
 * the L2 term 0.5 alpha sum ||W||^2 / S of the loss. */
static double finalize(real *grads, const real *params, const fm_net *net, double S)
{
    const int64_t L = net->n_layers;
    const real alpha = (real)net->alpha, s = (real)S;
    double sumsq = 0;
    for (int64_t l = 0; l < L; l++) {
        const int64_t off = fm_weight_offset(net, l);
        const int64_t len = net->units[l] * net->units[l + 1];
        real *g = grads + off;
        const real *w = params + off;
        for (int64_t i = 0; i < len; i++) g[i] = (g[i] + alpha * w[i]) / s;
        sumsq += FM_FN(fm_sum_squares)(w, len);
    }
    const int64_t b0 = fm_bias_offset(net, 0), n_params = fm_n_params(net);
    for (int64_t i = b0; i < n_params; i++) grads[i] /= s;
    return 0.5 * net->alpha * sumsq / S;
}

/* ---- drivers ------------------------------------------------------------ */

/* One optimizer step on the batch's raw gradient sums; returns the L2 term
 * 0.5 alpha sum ||W||^2 / S of the batch's loss (weights before the step). */
static double optimizer_step(real *params, const real *grads, real *state, double *partials,
                             const fm_net *net, double S, fm_optimizer *opt, int n_threads)
{
    const int64_t n = fm_n_params(net), n_weights = fm_bias_offset(net, 0);
    double sumsq;
    if (opt->solver == FM_ADAM) {
        opt->t += 1;
        const double t = (double)opt->t;
        const double lr_t = opt->learning_rate * sqrt(1 - pow(opt->beta_2, t)) /
                            (1 - pow(opt->beta_1, t));
        sumsq = FM_FN(fm_adam_step)(params, state, state + n, grads, n, n_weights, net->alpha,
                                    S, lr_t, opt->beta_1, opt->beta_2, opt->epsilon, partials,
                                    n_threads);
    } else {
        sumsq = FM_FN(fm_sgd_step)(params, state, grads, n, n_weights, net->alpha, S,
                                   opt->learning_rate, opt->momentum, opt->nesterov, partials,
                                   n_threads);
    }
    return 0.5 * net->alpha * sumsq / S;
}

/* The batch of `rows` (indexes into the whole data set), or of the
 * contiguous rows from `start` when rows is NULL. */
static FM_FN(fm_batch) batch_of(const fm_data *data, const fm_net *net, int64_t start,
                                const int64_t *rows)
{
    const int64_t off = rows ? 0 : start;
    FM_FN(fm_batch) b;
    b.x = data->x ? (const real *)data->x + off * net->units[0] : NULL;
    b.indptr = data->indptr ? data->indptr + off : NULL;
    b.indices = data->indices;
    b.values = (const real *)data->values;
    b.rows = rows;
    b.y = data->y ? (const real *)data->y + off * net->units[net->n_layers] : NULL;
    b.sw = data->sample_weight ? (const real *)data->sample_weight + off : NULL;
    return b;
}

/* One epoch over order [n]: returns FM_OK with *loss_sum = sum of batch
 * losses times batch lengths, or FM_ERR_INTERRUPTED. */
static fm_status train_epoch(real *params, real *grads, real *state, void *work,
                             const fm_layout *lay, double *loss_sum, const int64_t *order,
                             int64_t n, const fm_data *data, const fm_net *net,
                             fm_optimizer *opt, int64_t batch_size, int n_threads,
                             const volatile int *interrupt)
{
    const int64_t n_params = fm_n_params(net);
    double total = 0;
    for (int64_t start = 0; start < n; start += batch_size) {
        if (interrupt && *interrupt) return FM_ERR_INTERRUPTED;
        const int64_t B = fm_min64(batch_size, n - start);
        const FM_FN(fm_batch) batch = batch_of(data, net, start, order + start);
        memset(grads, 0, (size_t)n_params * sizeof(real));
        double wloss = 0, S = 0;
        accumulate(grads, &wloss, &S, work, lay, &batch, params, net, B, batch_size,
                   n_threads);
        const double l2 = optimizer_step(params, grads, state,
                                         (double *)((char *)work + lay->steps), net, S, opt,
                                         n_threads);
        total += (wloss / S + l2) * (double)B;
    }
    *loss_sum = total;
    return FM_OK;
}

/* scikit-learn's end-of-epoch rules (see fm_run in fastmlp.h). */
static void end_of_epoch(fm_run *run, fm_optimizer *opt, double loss, int64_t n)
{
    run->t += n;
    run->event = FM_EVENT_NONE;
    if (run->watch_loss) {
        run->no_improvement = loss > run->best_loss - run->tol ? run->no_improvement + 1 : 0;
        if (loss < run->best_loss) run->best_loss = loss;
    }
    const int sgd = opt->solver == FM_SGD;
    if (sgd && run->schedule == FM_INVSCALING)
        opt->learning_rate = run->learning_rate_init / pow((double)run->t + 1, run->power_t);
    if (!run->watch_loss || !((double)run->no_improvement > run->n_iter_no_change)) return;
    if (!sgd || run->schedule != FM_ADAPTIVE) {
        run->event = FM_EVENT_STOP;
    } else if (opt->learning_rate <= 1e-6) {
        run->event = FM_EVENT_STOP_LR_TOO_SMALL;
    } else {
        opt->learning_rate /= 5.0;
        run->no_improvement = 0;
        run->event = FM_EVENT_LR_REDUCED;
    }
}

fm_status FM_FN(fm_train)(real *params, real *grads, real *state, real *snapshot,
                          void *work, double *loss_curve, int64_t *order, int64_t n_rows,
                          fm_run *run, fm_mt19937 *rng, const fm_data *data,
                          const fm_net *net, fm_optimizer *opt, int64_t batch_size,
                          int n_threads, const volatile int *interrupt)
{
    if (fm_check_net(net) != FM_OK || batch_size < 1 || n_rows < 1 || !order ||
        (run->shuffle && !rng) || (interrupt && !snapshot))
        return FM_ERR_ARGUMENT;
    const fm_layout lay = fm_workspace_layout(net, batch_size, sizeof(real), n_threads);
    const int64_t n_params = fm_n_params(net);
    const int64_t n_state = (opt->solver == FM_ADAM ? 2 : 1) * n_params;
    run->epochs = 0;
    run->event = FM_EVENT_NONE;
    while (run->epochs < run->max_epochs) {
        if (run->shuffle && fm_shuffle(rng, order, n_rows) != FM_OK) return FM_ERR_ARGUMENT;
        const int64_t adam_t = opt->t;
        if (snapshot) {
            memcpy(snapshot, params, (size_t)n_params * sizeof(real));
            memcpy(snapshot + n_params, state, (size_t)n_state * sizeof(real));
        }
        double loss_sum = 0;
        const fm_status s = train_epoch(params, grads, state, work, &lay, &loss_sum, order,
                                        n_rows, data, net, opt, batch_size, n_threads,
                                        interrupt);
        const double loss = loss_sum / (double)n_rows;
        const int diverged = s == FM_OK && !(isfinite(loss) && FM_FN(fm_all_finite)(params, n_params));
        if ((s == FM_ERR_INTERRUPTED || diverged) && snapshot) {
            memcpy(params, snapshot, (size_t)n_params * sizeof(real));
            memcpy(state, snapshot + n_params, (size_t)n_state * sizeof(real));
            opt->t = adam_t;
        }
        if (s != FM_OK) return s;
        if (diverged) {
            run->event = FM_EVENT_DIVERGED;
            break;
        }
        loss_curve[run->epochs++] = loss;
        end_of_epoch(run, opt, loss, n_rows);
        if (run->event == FM_EVENT_STOP || run->event == FM_EVENT_STOP_LR_TOO_SMALL) break;
    }
    return FM_OK;
}

fm_status FM_FN(fm_loss_grad)(real *grads, double *loss, void *work, const fm_data *data,
                              const real *params, const fm_net *net, int64_t chunk,
                              int n_threads)
{
    if (fm_check_net(net) != FM_OK || chunk < 1) return FM_ERR_ARGUMENT;
    const int64_t n = data->n_samples;
    const fm_layout lay = fm_workspace_layout(net, chunk, sizeof(real), n_threads);
    memset(grads, 0, (size_t)fm_n_params(net) * sizeof(real));
    double wloss = 0, S = 0;
    for (int64_t start = 0; start < n; start += chunk) {
        const int64_t B = fm_min64(chunk, n - start);
        const FM_FN(fm_batch) batch = batch_of(data, net, start, NULL);
        accumulate(grads, &wloss, &S, work, &lay, &batch, params, net, B, chunk,
                   n_threads);
    }
    const double l2 = finalize(grads, params, net, S);
    *loss = wloss / S + l2;
    return FM_OK;
}

fm_status FM_FN(fm_predict)(real *out, void *work, const fm_data *data,
                            const int64_t *rows, int64_t n_rows, const real *params,
                            const fm_net *net, int64_t chunk, int n_threads)
{
    if (fm_check_net(net) != FM_OK || chunk < 1) return FM_ERR_ARGUMENT;
    const int64_t n = rows ? n_rows : data->n_samples;
    const int64_t K = net->units[net->n_layers];
    const fm_layout lay = fm_workspace_layout(net, chunk, sizeof(real), n_threads);
    for (int64_t start = 0; start < n; start += chunk) {
        const int64_t B = fm_min64(chunk, n - start);
        const FM_FN(fm_batch) batch = batch_of(data, net, start, rows ? rows + start : NULL);
        forward(out + start * K, work, &lay, &batch, params, net, B, chunk, n_threads);
    }
    return FM_OK;
}

/* x * 0 is 0 for every finite x and NaN for NaN and infinities, so the sum
 * of those products is 0 exactly when all of x is finite. */
FM_HOT int FM_FN(fm_all_finite)(const real *x, int64_t n)
{
    real s[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        for (int u = 0; u < 8; u++) s[u] += x[i + u] * 0;
    real t = ((s[0] + s[1]) + (s[2] + s[3])) + ((s[4] + s[5]) + (s[6] + s[7]));
    for (; i < n; i++) t += x[i] * 0;
    return t == 0;
}
