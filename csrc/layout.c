/* Parameter and workspace layout, shared by both precisions. */
#include "common.h"

/* Sizes are products of widths and row counts supplied from outside: every
 * product and sum is checked so that none can wrap around. */
static int add_ok(int64_t a, int64_t b, int64_t *out) { return !fm_add_overflows(a, b, out); }
static int mul_ok(int64_t a, int64_t b, int64_t *out) { return !fm_mul_overflows(a, b, out); }

fm_status fm_check_net(const fm_net *net)
{
    if (!net || net->n_layers < 1 || !net->units || !net->activation) return FM_ERR_ARGUMENT;
    for (int64_t l = 0; l <= net->n_layers; l++)
        if (net->units[l] < 1) return FM_ERR_ARGUMENT;
    int64_t total = 0, prod;
    for (int64_t l = 0; l < net->n_layers; l++) {
        const int32_t a = net->activation[l];
        if (a < 0 || a >= FM_N_ACTIVATIONS) return FM_ERR_ARGUMENT;
        if ((a == FM_SOFTMAX) && l != net->n_layers - 1) return FM_ERR_ARGUMENT;
        if (!mul_ok(net->units[l] + 1, net->units[l + 1], &prod) || !add_ok(total, prod, &total))
            return FM_ERR_ARGUMENT;
    }
    /* leaves room for element sizes and the optimizer's two copies */
    if (total > ((int64_t)1 << 58)) return FM_ERR_ARGUMENT;
    if (net->loss < 0 || net->loss >= FM_N_LOSSES) return FM_ERR_ARGUMENT;
    for (int64_t l = 0; net->dropout && l < net->n_layers; l++)
        if (!(net->dropout[l] >= 0 && net->dropout[l] < 1) ||
            (l == net->n_layers - 1 && net->dropout[l] != 0))
            return FM_ERR_ARGUMENT;
    return FM_OK;
}

int64_t fm_weight_offset(const fm_net *net, int64_t layer)
{
    int64_t off = 0;
    for (int64_t l = 0; l < layer; l++) off += net->units[l] * net->units[l + 1];
    return off;
}

int64_t fm_bias_offset(const fm_net *net, int64_t layer)
{
    int64_t off = fm_weight_offset(net, net->n_layers);
    for (int64_t l = 0; l < layer; l++) off += net->units[l + 1];
    return off;
}

int64_t fm_n_params(const fm_net *net) { return fm_bias_offset(net, net->n_layers); }

int64_t fm_max_width(const fm_net *net)
{
    int64_t w = 0;
    for (int64_t l = 1; l <= net->n_layers; l++) w = net->units[l] > w ? net->units[l] : w;
    return w;
}

/* Adds an aligned region of count x size bytes at *off; 0 on overflow. */
static int region(int64_t *off, int64_t count, int64_t size)
{
    int64_t bytes;
    return mul_ok(count, size, &bytes) && add_ok(bytes, FM_LINE - 1, &bytes) &&
           add_ok(*off, bytes / FM_LINE * FM_LINE, off);
}

int64_t fm_block_rows(const fm_net *net, int64_t rows)
{
    return fm_n_params(net) <= FM_BLOCK_MAX_PARAMS && rows > FM_BLOCK_ROWS &&
                   rows <= FM_BLOCK_MAX_ROWS
               ? FM_BLOCK_ROWS
               : 0;
}

/* The layout, or total = -1 when a size would overflow. */
fm_layout fm_workspace_layout(const fm_net *net, int64_t rows, int64_t elem_bytes,
                              int n_threads)
{
    fm_layout lay = {0, 0, 0, 0, 0, 0, -1, 0, 0, 0, 0};
    int64_t off = 0, max_row = 0, pack = 0;
    const int64_t block = fm_block_rows(net, rows);
    lay.area_rows = block ? block : rows;
    lay.blocks = block ? (rows + block - 1) / block : 1;
    int ok = mul_ok(fm_max_width(net), elem_bytes, &max_row) &&
             mul_ok(fm_pack_total_elems(n_threads), elem_bytes, &pack);
    lay.acts = off;
    for (int64_t l = 1; ok && l <= net->n_layers; l++) {
        const int64_t bytes = fm_layer_bytes(net, lay.area_rows, l, elem_bytes);
        ok = bytes >= 0 && add_ok(off, bytes, &off);
    }
    lay.delta0 = off;
    ok = ok && region(&off, lay.area_rows, max_row);
    lay.delta1 = off;
    ok = ok && region(&off, lay.area_rows, max_row);
    lay.loss = off;
    ok = ok && region(&off, lay.area_rows, (int64_t)sizeof(double));
    lay.block_bytes = off;
    ok = ok && mul_ok(lay.block_bytes, lay.blocks, &off);
    lay.partials = off;
    ok = ok && region(&off, (lay.blocks - 1) * fm_n_params(net), elem_bytes);
    lay.steps = off;
    ok = ok && region(&off, fm_n_params(net) / FM_STEP_CHUNK + 1, (int64_t)sizeof(double));
    lay.pack = off;
    ok = ok && region(&off, 1, pack);
    lay.total = ok ? off : -1;
    return lay;
}

int64_t fm_workspace_bytes(const fm_net *net, int64_t rows, fm_dtype dtype, int n_threads)
{
    if (fm_check_net(net) != FM_OK || rows < 1) return -1;
    const int64_t elem = dtype == FM_FLOAT32 ? 4 : 8;
    const int64_t total = fm_workspace_layout(net, rows, elem, n_threads).total;
    int64_t bytes; /* and the bytes fm_line_start may skip */
    return total < 0 || !add_ok(total, FM_LINE - 1, &bytes) ? -1 : bytes;
}

int64_t fm_pack_elems(void) { return FM_MC * FM_KC + FM_KC * FM_NC; }

int64_t fm_pack_total_elems(int n_threads)
{
    return n_threads > 1 ? n_threads * fm_pack_elems() + FM_SHARED_A_ELEMS : fm_pack_elems();
}

int64_t fm_pack_bytes(fm_dtype dtype, int n_threads)
{
    int64_t bytes;
    if (!mul_ok(fm_pack_total_elems(n_threads), dtype == FM_FLOAT32 ? 4 : 8, &bytes)) return -1;
    return bytes;
}

int fm_may_use_threads(const fm_net *net, int64_t rows)
{
    if (fm_n_params(net) > 2 * FM_STEP_CHUNK) return 1;
    if (rows < 1) return 0;
    /* each product's work as the kernels weigh it, the sparse first layer's
     * and the NaN check's (FM_STREAM_COST per element), against
     * FM_PARALLEL_MIN_WORK, and a packed product's (FM_PACKED_MIN_ROWS rows
     * or more) against FM_GEMM_MIN_WORK, by divisions that cannot overflow */
    const int64_t few = FM_STREAM_COST * fm_min64(rows, FM_PACKED_MIN_ROWS);
    const int64_t weight = rows > few ? rows : few;
    const int64_t least = FM_PARALLEL_MIN_WORK / FM_STREAM_COST / rows;
    if (net->units[0] >= least || net->units[1] >= least) return 1;
    for (int64_t l = 0; l < net->n_layers; l++) {
        const int64_t w = net->units[l] * net->units[l + 1];
        if (w >= FM_PARALLEL_MIN_WORK / weight) return 1;
        if (rows >= FM_PACKED_MIN_ROWS && w >= FM_GEMM_MIN_WORK / rows) return 1;
    }
    return 0;
}

int64_t fm_buffer_bytes(int64_t bytes) { return (bytes + 63) / 64 * 64; }

int fm_dropout(const fm_net *net, int64_t layer)
{
    return net->dropout && layer < net->n_layers && net->dropout[layer - 1] > 0;
}

int64_t fm_layer_bytes(const fm_net *net, int64_t rows, int64_t layer, int64_t elem_bytes)
{
    int64_t one;
    if (!mul_ok(rows, net->units[layer] * elem_bytes, &one) || one > ((int64_t)1 << 60))
        return -1;
    const int64_t count = 1 + fm_needs_preactivation(net->activation[layer - 1]) +
                          2 * fm_dropout(net, layer);
    return fm_buffer_bytes(one) * count;
}

int fm_needs_preactivation(int32_t activation)
{
    return activation == FM_GELU || activation == FM_SILU;
}

/* (loss, output activation) pairs whose output delta dL/dz is P - Y. */
int fm_is_canonical(int32_t loss, int32_t out_activation)
{
    switch (loss) {
    case FM_SQUARED_ERROR: return out_activation == FM_IDENTITY;
    case FM_LOG_LOSS: return out_activation == FM_SOFTMAX;
    case FM_BINARY_LOG_LOSS: return out_activation == FM_LOGISTIC;
    case FM_POISSON: return out_activation == FM_EXP;
    default: return 0;
    }
}
