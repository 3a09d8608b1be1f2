/* The network as a whole: forward and backward over every layer for one
 * batch, and the three drivers built on them (one training epoch, the
 * whole-data loss and gradient, prediction).
 *
 * Per batch of n rows (sw = sample weights, S = sum sw):
 *   A_0 = X,  A_{l+1} = f_l(A_l W_l + b_l)                          forward
 *   D_L = (A_L - Y) sw, times f'(A_L) unless (loss, f_L) is canonical
 *   dW_l = (A_l^T D_l + alpha W_l) / S,  db_l = sum D_l / S
 *   D_{l-1} = (D_l W_l^T) * f'_{l-1}(A_l)                           backward
 * which is scikit-learn's backpropagation, operation for operation; with
 * dropout on a hidden layer, the next layer reads A_l S_l (S_l the mask's
 * scales) and D_{l-1} is multiplied by S_l as well.
 */
#include <math.h>
#include <string.h>

#include "common.h"

/* The buffers of layer l (1..L) in the workspace: its outputs A, and, when
 * its activation needs them, its pre-activations Z; with dropout, the
 * masked outputs M the next layer reads and the mask scales S. */
typedef struct {
    real *a, *z, *m, *s;
} layer_buffers;

static layer_buffers layer_at(void *work, const fm_layout *lay, const fm_net *net,
                              int64_t rows, int64_t layer)
{
    char *p = (char *)work + lay->acts;
    for (int64_t l = 1; l < layer; l++) p += fm_layer_bytes(net, rows, l, sizeof(real));
    const int64_t size = fm_buffer_bytes(rows * net->units[layer] * (int64_t)sizeof(real));
    layer_buffers b = {(real *)p, NULL, NULL, NULL};
    if (fm_needs_preactivation(net->activation[layer - 1])) {
        p += size;
        b.z = (real *)p;
    }
    if (fm_dropout(net, layer)) {
        b.m = (real *)(p + size);
        b.s = (real *)(p + 2 * size);
    }
    return b;
}

static inline const real *weights(const real *params, const fm_net *net, int64_t l)
{
    return params + fm_weight_offset(net, l);
}

static inline const real *biases(const real *params, const fm_net *net, int64_t l)
{
    return params + fm_bias_offset(net, l);
}

static inline uint64_t splitmix64(uint64_t x)
{
    x += 0x9e3779b97f4a7c15ULL;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
    return x ^ (x >> 31);
}

/* Where a training pass stands: the batch's step (what dropout masks are
 * drawn for) and the batch row its first row is (batches larger than the
 * workspace go through in pieces). NULL for passes without dropout. */
typedef struct {
    int64_t step, row0;
} training_pass;

/* Inverted dropout on layer `layer`'s outputs A [n x m], rows row0.. of the
 * batch of training step `step`: S = 0 or 1 / (1 - rate), M = A S. Each
 * element's draw hashes (seed, step, layer, batch row, unit), so masks
 * repeat exactly and do not depend on how work is split. */
static void dropout_forward(const layer_buffers *b, const fm_net *net, int64_t layer,
                            const training_pass *pass, int64_t n, int64_t m)
{
    const double rate = net->dropout[layer - 1];
    const real keep = (real)(1.0 / (1.0 - rate));
    const uint64_t base =
        splitmix64(net->dropout_seed ^ splitmix64((uint64_t)pass->step * 1024u + (uint64_t)layer)) +
        (uint64_t)(pass->row0 * m);
    for (int64_t i = 0; i < n * m; i++) {
        const double u = (double)(splitmix64(base + (uint64_t)i) >> 11) * 0x1.0p-53;
        b->s[i] = u >= rate ? keep : 0;
        b->m[i] = b->a[i] * b->s[i];
    }
}

/* Pass the batch through every layer; the output layer writes into `out`
 * when given (prediction), into the workspace otherwise; dropout applies
 * when training (train not NULL). Returns A_L. */
static real *forward(real *out, void *work, const fm_layout *lay,
                     const FM_FN(fm_batch) *batch, const real *params, const fm_net *net,
                     int64_t n, int64_t ws_rows, const training_pass *train, int n_threads)
{
    const int64_t L = net->n_layers;
    void *pack = (char *)work + lay->pack;
    const real *A = batch->x;
    real *Y = NULL;
    for (int64_t l = 0; l < L; l++) {
        const layer_buffers b = layer_at(work, lay, net, ws_rows, l + 1);
        Y = (l == L - 1 && out) ? out : b.a;
        const int64_t n_in = net->units[l], n_out = net->units[l + 1];
        const int32_t f = net->activation[l];
        /* GELU and SiLU keep their inputs: the affine map goes to Z, then f */
        real *dest = b.z ? b.z : Y;
        const int32_t fused = b.z ? FM_IDENTITY : f;
        if (l == 0 && !batch->x)
            FM_FN(fm_csr_dense_forward)(dest, batch->indptr, batch->indices, batch->values,
                                        batch->rows, weights(params, net, 0),
                                        biases(params, net, 0), fused, n, n_in, n_out,
                                        n_threads);
        else
            FM_FN(fm_dense_forward)(dest, A, l == 0 ? batch->rows : NULL, weights(params, net, l),
                                    biases(params, net, l), fused, n, n_in, n_out, pack,
                                    n_threads);
        if (b.z) {
            memcpy(Y, b.z, (size_t)(n * n_out) * sizeof(real));
            FM_FN(fm_activation_forward)(Y, n, n_out, f);
        }
        A = Y;
        if (train && b.m) {
            dropout_forward(&b, net, l + 1, train, n, n_out);
            A = b.m;
        }
    }
    return Y;
}

/* Forward, loss, and (grads given) backward for one batch: adds the raw
 * gradient sums into grads (writes them when `fresh`: grads holds nothing
 * yet), the weighted loss into *wloss and the weight total into *wsum. */
static void accumulate(real *grads, int fresh, double *wloss, double *wsum, void *work,
                       const fm_layout *lay, const FM_FN(fm_batch) *batch,
                       const real *params, const fm_net *net, int64_t n, int64_t ws_rows,
                       const training_pass *train, int n_threads)
{
    const int64_t L = net->n_layers, K = net->units[L];
    void *pack = (char *)work + lay->pack;
    const real *P = forward(NULL, work, lay, batch, params, net, n, ws_rows, train, n_threads);

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
    if (!grads) return;

    real *D = (real *)((char *)work + lay->delta0);
    real *D_next = (real *)((char *)work + lay->delta1);
    FM_FN(fm_loss_backward)(D, P, batch->y, batch->sw, batch->rows, n, K);
    if (!fm_is_canonical(net->loss, net->activation[L - 1]))
        FM_FN(fm_activation_backward)(D, P, layer_at(work, lay, net, ws_rows, L).z, n, K,
                                      net->activation[L - 1]);

    for (int64_t l = L - 1; l >= 0; l--) {
        const int64_t n_in = net->units[l], n_out = net->units[l + 1];
        real *dW = grads + fm_weight_offset(net, l);
        real *db = grads + fm_bias_offset(net, l);
        if (l == 0 && !batch->x) {
            if (fresh) {
                memset(dW, 0, (size_t)(n_in * n_out) * sizeof(real));
                memset(db, 0, (size_t)n_out * sizeof(real));
            }
            FM_FN(fm_csr_backward_params)(dW, db, batch->indptr, batch->indices,
                                          batch->values, batch->rows, D, n, n_in, n_out,
                                          n_threads);
            break;
        }
        if (l == 0) {
            FM_FN(fm_dense_backward_params_to)(dW, db, batch->x, batch->rows, D, n, n_in,
                                               n_out, pack, n_threads, !fresh);
            break;
        }
        /* layer l's input: layer l's outputs, masked when dropout applied */
        const layer_buffers b = layer_at(work, lay, net, ws_rows, l);
        const int dropped = train && b.m;
        FM_FN(fm_dense_backward_params_to)(dW, db, dropped ? b.m : b.a, NULL, D, n, n_in,
                                           n_out, pack, n_threads, !fresh);
        const int32_t f = net->activation[l - 1];
        if (dropped || b.z) {
            FM_FN(fm_dense_backward_data)(D_next, D, weights(params, net, l), NULL, f, n, n_in,
                                          n_out, pack, n_threads);
            if (dropped)
                for (int64_t i = 0; i < n * n_in; i++) D_next[i] *= b.s[i];
            FM_FN(fm_activation_backward)(D_next, b.a, b.z, n, n_in, f);
        } else {
            FM_FN(fm_dense_backward_data)(D_next, D, weights(params, net, l), b.a, f, n, n_in,
                                          n_out, pack, n_threads);
        }
        real *t = D;
        D = D_next;
        D_next = t;
    }
}

/* grads (unless NULL) = (grads + alpha W) / S for weights, grads / S for
 * biases; returns the L2 term 0.5 alpha sum ||W||^2 / S of the loss. */
static double finalize(real *grads, const real *params, const fm_net *net, double S)
{
    const int64_t n_weights = fm_bias_offset(net, 0), n_params = fm_n_params(net);
    const real alpha = (real)net->alpha, s = (real)S;
    if (grads) {
        for (int64_t i = 0; i < n_weights; i++) grads[i] = (grads[i] + alpha * params[i]) / s;
        for (int64_t i = n_weights; i < n_params; i++) grads[i] /= s;
    }
    return 0.5 * net->alpha * FM_FN(fm_sum_squares)(params, n_weights) / S;
}

/* ---- drivers ------------------------------------------------------------ */

/* One optimizer step on the batch's raw gradient sums, grads plus the
 * n_sums in sums (which the step adds into grads first); returns the L2 term
 * 0.5 alpha sum ||W||^2 / S of the batch's loss (weights before the step). */
static double optimizer_step(real *params, real *grads, const real *sums, int64_t n_sums,
                             real *state, double *partials, const fm_net *net, double S,
                             fm_optimizer *opt, int n_threads)
{
    const double sumsq = FM_FN(fm_optimizer_step_sums)(params, state, grads, sums, n_sums,
                                                       fm_n_params(net), fm_bias_offset(net, 0),
                                                       net->alpha, S, opt, partials, n_threads);
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

/* ---- a piece of rows, whole or in blocks ---------------------------------- */

#define FM_MAX_BLOCKS (FM_BLOCK_MAX_ROWS / FM_BLOCK_ROWS)

/* The gradient sums of blocks 1.. in the workspace (see fm_layout). */
static real *partials_of(void *work, const fm_layout *lay)
{
    return (real *)((char *)work + lay->partials);
}

/* The layout with area b's buffers in place of the first area's. */
static fm_layout area_of(const fm_layout *lay, int64_t b)
{
    fm_layout area = *lay;
    const int64_t shift = b * lay->block_bytes;
    area.acts += shift;
    area.delta0 += shift;
    area.delta1 += shift;
    area.loss += shift;
    return area;
}

/* n rows through the network: the rows order[start ..] of data (the rows
 * from start when order is NULL). Training or the loss and gradient
 * (out NULL): the gradient sums go into grads (written when fresh, else
 * added; none when grads is NULL) and the weighted losses and weights into
 * *wloss and *wsum. With leave_sums, the sums of blocks 1.. stay in the
 * partials, sums_left of them, for the optimizer step to add in.
 * Prediction: the outputs go into out [n x K]. */
typedef struct {
    real *grads, *out;
    int fresh, leave_sums;
    int64_t sums_left;
    double *wloss, *wsum;
    void *work;
    const fm_layout *lay;
    const fm_data *data;
    const fm_net *net;
    const real *params;
    const int64_t *order;
    int64_t start, n, blocks;
    const training_pass *train;
    double block_wloss[FM_MAX_BLOCKS], block_wsum[FM_MAX_BLOCKS];
} piece_args;

static FM_FN(fm_batch) piece_batch(const piece_args *p, int64_t r0)
{
    return batch_of(p->data, p->net, p->start + r0, p->order ? p->order + p->start + r0 : NULL);
}

/* Block b of the piece on one thread: its rows [n b / blocks, n (b + 1) /
 * blocks) in area b; block 0's gradient goes into grads, block b's into
 * the partials' (b - 1)th. */
static void block_task(void *ctx, int64_t b, int tid)
{
    piece_args *p = ctx;
    (void)tid;
    const int64_t r0 = p->n * b / p->blocks, r1 = p->n * (b + 1) / p->blocks;
    const FM_FN(fm_batch) batch = piece_batch(p, r0);
    const fm_layout area = area_of(p->lay, b);
    training_pass pass;
    if (p->train) {
        pass = *p->train;
        pass.row0 += r0;
    }
    if (p->out) {
        forward(p->out + r0 * p->net->units[p->net->n_layers], p->work, &area, &batch, p->params,
                p->net, r1 - r0, p->lay->area_rows, NULL, 1);
        return;
    }
    real *grads = p->grads;
    if (grads && b > 0)
        grads = partials_of(p->work, p->lay) + (b - 1) * fm_n_params(p->net);
    p->block_wloss[b] = p->block_wsum[b] = 0;
    accumulate(grads, b == 0 ? p->fresh : 1, &p->block_wloss[b], &p->block_wsum[b], p->work,
               &area, &batch, p->params, p->net, r1 - r0, p->lay->area_rows,
               p->train ? &pass : NULL, 1);
}

/* grads += the blocks' partial sums, in block order: chunk c's elements. */
static void reduce_task(void *ctx, int64_t c, int tid)
{
    const piece_args *p = ctx;
    (void)tid;
    const int64_t n_params = fm_n_params(p->net);
    const int64_t i0 = c * FM_STEP_CHUNK, i1 = fm_min64(i0 + FM_STEP_CHUNK, n_params);
    FM_FN(fm_add_sums)(p->grads, partials_of(p->work, p->lay), p->blocks - 1, n_params, i0, i1);
}

static void pass_piece(piece_args *p, int n_threads)
{
    p->sums_left = 0;
    p->blocks = p->lay->blocks > 1 ? (p->n + p->lay->area_rows - 1) / p->lay->area_rows : 1;
    if (p->blocks == 1) { /* the whole piece at once, the products shared by the threads */
        const FM_FN(fm_batch) batch = piece_batch(p, 0);
        if (p->out)
            forward(p->out, p->work, p->lay, &batch, p->params, p->net, p->n, p->lay->area_rows,
                    NULL, n_threads);
        else
            accumulate(p->grads, p->fresh, p->wloss, p->wsum, p->work, p->lay, &batch, p->params,
                       p->net, p->n, p->lay->area_rows, p->train, n_threads);
        return;
    }
    fm_parallel_for(n_threads, p->blocks, block_task, p);
    if (p->out) return;
    if (p->grads && p->leave_sums) {
        p->sums_left = p->blocks - 1;
    } else if (p->grads) {
        const int64_t chunks = (fm_n_params(p->net) + FM_STEP_CHUNK - 1) / FM_STEP_CHUNK;
        fm_parallel_for(chunks > 2 ? n_threads : 1, chunks, reduce_task, p);
    }
    for (int64_t b = 0; b < p->blocks; b++) {
        *p->wloss += p->block_wloss[b];
        *p->wsum += p->block_wsum[b];
    }
}

/* One epoch over order [n]: returns FM_OK with *loss_sum = sum of batch
 * losses times batch lengths, or FM_ERR_INTERRUPTED. A batch goes through
 * the network `chunk` rows at a time (in blocks, for small networks), its
 * gradient summed over the pieces. */
static fm_status train_epoch(real *params, real *grads, real *state, void *work,
                             const fm_layout *lay, double *loss_sum, const int64_t *order,
                             int64_t n, const fm_data *data, const fm_net *net,
                             fm_optimizer *opt, int64_t *step, int64_t batch_size,
                             int64_t chunk, int max_threads, fm_tuner *tuner,
                             const volatile int *interrupt)
{
    double total = 0;
    for (int64_t start = 0; start < n; start += batch_size) {
        const int64_t B = fm_min64(batch_size, n - start);
        const int n_threads = fm_tuner_pick(tuner, max_threads);
        const fm_tuner_mark began = fm_tuner_begin(tuner);
        double wloss = 0, S = 0;
        int64_t sums_left = 0;
        for (int64_t row0 = 0; row0 < B; row0 += chunk) {
            if (interrupt && *interrupt) return FM_ERR_INTERRUPTED;
            const training_pass pass = {*step, row0};
            /* the last piece's block sums are added by the step */
            piece_args p = {.grads = grads, .fresh = row0 == 0, .leave_sums = row0 + chunk >= B,
                            .wloss = &wloss, .wsum = &S, .work = work, .lay = lay,
                            .data = data, .net = net, .params = params, .order = order,
                            .start = start + row0, .n = fm_min64(chunk, B - row0),
                            .train = &pass};
            pass_piece(&p, n_threads);
            sums_left = p.sums_left;
        }
        *step += 1;
        const double l2 = optimizer_step(params, grads, partials_of(work, lay), sums_left, state,
                                         (double *)((char *)work + lay->steps), net, S, opt,
                                         n_threads);
        fm_tuner_end(tuner, n_threads, began, B);
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
                          int64_t chunk, int n_threads, fm_tuner *tuner,
                          const volatile int *interrupt)
{
    if (fm_check_net(net) != FM_OK || batch_size < 1 || chunk < 1 || n_rows < 1 || !order ||
        (run->shuffle && !rng) || (interrupt && !snapshot))
        return FM_ERR_ARGUMENT;
    chunk = fm_min64(chunk, batch_size);
    work = fm_line_start(work);
    const fm_layout lay = fm_workspace_layout(net, chunk, sizeof(real), n_threads);
    const int64_t n_params = fm_n_params(net);
    const int64_t n_state = (opt->solver == FM_SGD ? 1 : 2) * n_params;
    if (!fm_may_use_threads(net, chunk)) tuner = NULL;
    fm_scope scope;
    fm_scope_begin(&scope, n_threads);
    fm_status status = FM_OK;
    run->epochs = 0;
    run->event = FM_EVENT_NONE;
    while (run->epochs < run->max_epochs) {
        if (run->shuffle && fm_shuffle(rng, order, n_rows) != FM_OK) {
            status = FM_ERR_ARGUMENT;
            break;
        }
        const int64_t adam_t = opt->t, step = run->step;
        if (snapshot) {
            memcpy(snapshot, params, (size_t)n_params * sizeof(real));
            memcpy(snapshot + n_params, state, (size_t)n_state * sizeof(real));
        }
        double loss_sum = 0;
        const fm_status s = train_epoch(params, grads, state, work, &lay, &loss_sum, order,
                                        n_rows, data, net, opt, &run->step, batch_size,
                                        chunk, n_threads, tuner,
                                        run->finish_epoch ? NULL : interrupt);
        const double loss = loss_sum / (double)n_rows;
        const int diverged = s == FM_OK && !(isfinite(loss) && FM_FN(fm_all_finite)(params, n_params));
        if ((s == FM_ERR_INTERRUPTED || diverged) && snapshot) {
            memcpy(params, snapshot, (size_t)n_params * sizeof(real));
            memcpy(state, snapshot + n_params, (size_t)n_state * sizeof(real));
            opt->t = adam_t;
            run->step = step;
        }
        if (s != FM_OK) {
            status = s;
            break;
        }
        if (diverged) {
            run->event = FM_EVENT_DIVERGED;
            break;
        }
        loss_curve[run->epochs++] = loss;
        end_of_epoch(run, opt, loss, n_rows);
        if (run->event == FM_EVENT_STOP || run->event == FM_EVENT_STOP_LR_TOO_SMALL) break;
        if (run->finish_epoch && interrupt && *interrupt) break;
    }
    fm_scope_end(&scope);
    return status;
}

fm_status FM_FN(fm_loss_grad_sums)(real *grads, double *wloss, double *wsum, void *work,
                                   const fm_data *data, const int64_t *rows, int64_t n_rows,
                                   const real *params, const fm_net *net, int64_t chunk,
                                   int n_threads, fm_tuner *tuner,
                                   const volatile int *interrupt)
{
    if (fm_check_net(net) != FM_OK || chunk < 1 || n_rows < 0) return FM_ERR_ARGUMENT;
    const int64_t n = rows ? n_rows : data->n_samples;
    work = fm_line_start(work);
    const fm_layout lay = fm_workspace_layout(net, chunk, sizeof(real), n_threads);
    *wloss = 0;
    *wsum = 0;
    /* the first chunk writes grads: without one, the sums are zero */
    if (n == 0 && grads) memset(grads, 0, (size_t)fm_n_params(net) * sizeof(real));
    if (!fm_may_use_threads(net, chunk)) tuner = NULL;
    fm_status status = FM_OK;
    fm_scope scope;
    fm_scope_begin(&scope, n_threads);
    for (int64_t start = 0; start < n; start += chunk) {
        if (interrupt && *interrupt) {
            status = FM_ERR_INTERRUPTED;
            break;
        }
        const int64_t B = fm_min64(chunk, n - start);
        const int threads = fm_tuner_pick(tuner, n_threads);
        const fm_tuner_mark began = fm_tuner_begin(tuner);
        piece_args p = {.grads = grads, .fresh = start == 0, .wloss = wloss, .wsum = wsum,
                        .work = work, .lay = &lay, .data = data, .net = net, .params = params,
                        .order = rows, .start = start, .n = B};
        pass_piece(&p, threads);
        fm_tuner_end(tuner, threads, began, B);
    }
    fm_scope_end(&scope);
    return status;
}

fm_status FM_FN(fm_loss_grad_finish)(real *grads, double *loss, double wloss, double wsum,
                                     const real *params, const fm_net *net)
{
    if (fm_check_net(net) != FM_OK) return FM_ERR_ARGUMENT;
    const double l2 = finalize(grads, params, net, wsum);
    *loss = wloss / wsum + l2;
    return FM_OK;
}

fm_status FM_FN(fm_loss_grad)(real *grads, double *loss, void *work, const fm_data *data,
                              const real *params, const fm_net *net, int64_t chunk,
                              int n_threads, fm_tuner *tuner, const volatile int *interrupt)
{
    if (data->n_samples < 1) return FM_ERR_ARGUMENT;
    double wloss, S;
    const fm_status status = FM_FN(fm_loss_grad_sums)(grads, &wloss, &S, work, data, NULL, 0,
                                                      params, net, chunk, n_threads, tuner,
                                                      interrupt);
    if (status != FM_OK) return status;
    return FM_FN(fm_loss_grad_finish)(grads, loss, wloss, S, params, net);
}

typedef struct {
    const real *x;
    const int64_t *rows;
    int64_t n, n_in, n_tasks;
    volatile int64_t bad;
} finite_check;

static void finite_task(void *ctx, int64_t task, int tid)
{
    finite_check *c = ctx;
    (void)tid;
    for (int64_t i = c->n * task / c->n_tasks; i < c->n * (task + 1) / c->n_tasks; i++) {
        if (fm_atomic_load(&c->bad)) return;
        if (!FM_FN(fm_all_finite)(c->x + (c->rows ? c->rows[i] : i) * c->n_in, c->n_in)) {
            fm_atomic_store(&c->bad, 1);
            return;
        }
    }
}

/* 1 when rows [n] of x (every row i, or rows[i]) are all finite; the
 * threads share big checks. */
static int rows_finite(const real *x, const int64_t *rows, int64_t n, int64_t n_in,
                       int n_threads)
{
    finite_check c = {x, rows, n, n_in, 1, 0};
    if (n_threads > 1 && n * n_in * FM_STREAM_COST >= FM_PARALLEL_MIN_WORK)
        c.n_tasks = fm_min64(n_threads, n);
    fm_parallel_for((int)c.n_tasks, c.n_tasks, finite_task, &c);
    return !fm_atomic_load(&c.bad);
}

fm_status FM_FN(fm_predict)(real *out, void *work, const fm_data *data,
                            const int64_t *rows, int64_t n_rows, const real *params,
                            const fm_net *net, int64_t chunk, int n_threads,
                            fm_tuner *tuner, int check_finite,
                            const volatile int *interrupt)
{
    if (fm_check_net(net) != FM_OK || chunk < 1) return FM_ERR_ARGUMENT;
    const int64_t n = rows ? n_rows : data->n_samples;
    const int64_t K = net->units[net->n_layers], n_in = net->units[0];
    work = fm_line_start(work);
    const fm_layout lay = fm_workspace_layout(net, chunk, sizeof(real), n_threads);
    fm_status status = FM_OK;
    if (!fm_may_use_threads(net, fm_min64(chunk, n))) tuner = NULL;
    fm_scope scope;
    fm_scope_begin(&scope, n_threads);
    for (int64_t start = 0; start < n; start += chunk) {
        if (interrupt && *interrupt) {
            status = FM_ERR_INTERRUPTED;
            break;
        }
        const int64_t B = fm_min64(chunk, n - start);
        const FM_FN(fm_batch) batch = batch_of(data, net, start, rows ? rows + start : NULL);
        const int threads = fm_tuner_pick(tuner, n_threads);
        const fm_tuner_mark began = fm_tuner_begin(tuner);
        /* checked while the chunk is about to be read anyway */
        if (check_finite && batch.x && !rows_finite(batch.x, batch.rows, B, n_in, threads)) {
            status = FM_ERR_NONFINITE;
            break;
        }
        piece_args p = {.out = out + start * K, .work = work, .lay = &lay, .data = data,
                        .net = net, .params = params, .order = rows, .start = start, .n = B};
        pass_piece(&p, threads);
        fm_tuner_end(tuner, threads, began, B);
    }
    fm_scope_end(&scope);
    return status;
}

/* x * 0 is 0 for every finite x and NaN for NaN and infinities, so the sum
 * of those products is 0 exactly when all of x is finite. */
int FM_FN(fm_all_finite)(const real *x, int64_t n)
{
    real s[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        for (int u = 0; u < 8; u++) s[u] += x[i + u] * 0;
    real t = ((s[0] + s[1]) + (s[2] + s[3])) + ((s[4] + s[5]) + (s[6] + s[7]));
    for (; i < n; i++) t += x[i] * 0;
    return t == 0;
}

/* Row i is written after p_i (at n + i) is read, and its two slots 2i and
 * 2i + 1 lie below n + i + 1, where the unread p's start. */
void FM_FN(fm_two_class)(real *out, int64_t n)
{
    for (int64_t i = 0; i < n; i++) {
        const real p = out[n + i];
        out[2 * i] = 1 - p;
        out[2 * i + 1] = p;
    }
}
