#include "recur_kernels.h"
#include "fast_math.h"
#include <math.h>
#include <string.h>

/* One definition of each kernel, compiled three times by the compiler and picked at load time. */
#if defined(__x86_64__) && defined(__clang__)
#define DISPATCH __attribute__((target_clones("avx512f", "arch=x86-64-v3", "default")))
#else
#define DISPATCH
#endif

/* The vector forms of fast_math.h's functions: what FastMathTests measures the bounds on. */
DISPATCH void recur_vexp(int64_t n, const float *restrict x, float *restrict y) {
    for (int64_t i = 0; i < n; i++) y[i] = expf_fast(x[i]);
}
DISPATCH void recur_vtanh(int64_t n, const float *restrict x, float *restrict y) {
    for (int64_t i = 0; i < n; i++) y[i] = tanhf_fast(x[i]);
}
DISPATCH void recur_vsigmoid(int64_t n, const float *restrict x, float *restrict y) {
    for (int64_t i = 0; i < n; i++) y[i] = sigmoidf_fast(x[i]);
}

/* Vanilla RNN (docs/ARCHITECTURE.md's notation; a = W_ih x_t + b_ih + W_hh h_{t-1} + b_hh):
 *   forward   h_t = f(a),             f = tanh or ReLU
 *   backward  ∂a = ∂h_t ⊙ f'(a),      tanh' = 1 - h_t², ReLU' = [h_t > 0]  (from h_t alone) */
DISPATCH void recur_rnn_forward(int64_t n, const float *a, float *h, int relu) {
    if (relu) {
        for (int64_t i = 0; i < n; i++) h[i] = a[i] > 0 ? a[i] : 0.0f;
    } else {
        for (int64_t i = 0; i < n; i++) h[i] = tanhf_fast(a[i]);
    }
}

DISPATCH void recur_rnn_backward(int64_t n, const float *restrict h, const float *restrict dh, float *restrict da, int relu) {
    if (relu) {
        for (int64_t i = 0; i < n; i++) da[i] = h[i] > 0 ? dh[i] : 0.0f;
    } else {
        for (int64_t i = 0; i < n; i++) da[i] = dh[i] * (1.0f - h[i] * h[i]);
    }
}

/* LSTM, gates in PyTorch's order i, f, g, o; each pre-activation is W_ih x_t + b_ih + W_hh h_{t-1} + b_hh:
 *   forward   i = σ(a_i)   f = σ(a_f)   g = tanh(a_g)   o = σ(a_o)
 *             c_t = f ⊙ c_{t-1} + i ⊙ g          h_t = o ⊙ tanh(c_t)
 *   backward  (∂h_t, and ∂c_t from step t+1, given; ∂c̃ is the whole gradient at c_t)
 *             ∂c̃ = ∂c_t + ∂h_t ⊙ o ⊙ (1 - tanh²(c_t))
 *             ∂a_o = ∂h_t ⊙ tanh(c_t) ⊙ o(1 - o)    ∂a_i = ∂c̃ ⊙ g ⊙ i(1 - i)
 *             ∂a_f = ∂c̃ ⊙ c_{t-1} ⊙ f(1 - f)         ∂a_g = ∂c̃ ⊙ i ⊙ (1 - g²)
 *             ∂c_{t-1} = ∂c̃ ⊙ f
 * Forward keeps the activations (in gates), c_t and tanh(c_t): all that backward reads. */
DISPATCH void recur_lstm_forward(int64_t B, int64_t H, float *restrict gates, const float *restrict c_prev,
                                 float *restrict c, float *restrict tanh_c, float *restrict h) {
    for (int64_t b = 0; b < B; b++) {
        float *gi = gates + b * 4 * H, *gf = gi + H, *gg = gf + H, *go = gg + H;
        const float *cp = c_prev + b * H;
        float *cb = c + b * H, *tb = tanh_c + b * H, *hb = h + b * H;
        /* Gate blocks are disjoint H-wide slices of one row: no dependence between j's. */
        _Pragma("clang loop vectorize(assume_safety)")
        for (int64_t j = 0; j < H; j++) {
            float i = sigmoidf_fast(gi[j]), f = sigmoidf_fast(gf[j]);
            float g = tanhf_fast(gg[j]), o = sigmoidf_fast(go[j]);
            float cn = f * cp[j] + i * g;
            float tc = tanhf_fast(cn);
            gi[j] = i; gf[j] = f; gg[j] = g; go[j] = o;
            cb[j] = cn; tb[j] = tc; hb[j] = o * tc;
        }
    }
}

DISPATCH void recur_lstm_backward(int64_t B, int64_t H, const float *restrict gates, const float *restrict c_prev,
                                  const float *restrict tanh_c, const float *restrict dh, float *restrict dc, float *restrict dgates) {
    for (int64_t b = 0; b < B; b++) {
        const float *gi = gates + b * 4 * H, *gf = gi + H, *gg = gf + H, *go = gg + H;
        const float *cp = c_prev + b * H, *tb = tanh_c + b * H, *dhb = dh + b * H;
        float *dcb = dc + b * H;
        float *di = dgates + b * 4 * H, *df = di + H, *dg = df + H, *dout = dg + H;
        /* Gate blocks are disjoint H-wide slices of one row: no dependence between j's. */
        _Pragma("clang loop vectorize(assume_safety)")
        for (int64_t j = 0; j < H; j++) {
            float i = gi[j], f = gf[j], g = gg[j], o = go[j], tc = tb[j];
            float dct = dcb[j] + dhb[j] * o * (1.0f - tc * tc);
            dout[j] = dhb[j] * tc * o * (1.0f - o);
            di[j] = dct * g * i * (1.0f - i);
            df[j] = dct * cp[j] * f * (1.0f - f);
            dg[j] = dct * i * (1.0f - g * g);
            dcb[j] = dct * f;
        }
    }
}

/* GRU, gates in PyTorch's order r, z, n; x-parts x_• = W_i• x_t + b_i•, h-parts h_• = W_h• h_{t-1} + b_h•:
 *   forward   r = σ(x_r + h_r)   z = σ(x_z + h_z)   n = tanh(x_n + r ⊙ h_n)
 *             h_t = (1 - z) ⊙ n + z ⊙ h_{t-1}
 *   backward  ∂a_n = ∂h_t ⊙ (1 - z) ⊙ (1 - n²)               (a_n = x_n + r ⊙ h_n)
 *             ∂a_z = ∂h_t ⊙ (h_{t-1} - n) ⊙ z(1 - z)
 *             ∂a_r = ∂a_n ⊙ h_n ⊙ r(1 - r)
 *             ∂x_r = ∂h_r = ∂a_r,   ∂x_z = ∂h_z = ∂a_z,   ∂x_n = ∂a_n,   ∂h_n = ∂a_n ⊙ r
 *             ∂h_{t-1} (direct part) = ∂h_t ⊙ z;  the products' part comes from ∂h_• · W_hh
 * Forward keeps r, z, n (in gi) and h_n (ghn): all that backward reads. */
DISPATCH void recur_gru_forward(int64_t B, int64_t H, float *restrict gi, const float *restrict gh,
                                const float *restrict h_prev, float *restrict h, float *restrict ghn) {
    for (int64_t b = 0; b < B; b++) {
        float *ir = gi + b * 3 * H, *iz = ir + H, *in = iz + H;
        const float *hr = gh + b * 3 * H, *hz = hr + H, *hn = hz + H;
        const float *hp = h_prev + b * H;
        float *hb = h + b * H, *gn = ghn + b * H;
        /* Gate blocks are disjoint H-wide slices of one row: no dependence between j's. */
        _Pragma("clang loop vectorize(assume_safety)")
        for (int64_t j = 0; j < H; j++) {
            float r = sigmoidf_fast(ir[j] + hr[j]);
            float z = sigmoidf_fast(iz[j] + hz[j]);
            float n = tanhf_fast(in[j] + r * hn[j]);
            ir[j] = r; iz[j] = z; in[j] = n;
            gn[j] = hn[j];
            hb[j] = (1.0f - z) * n + z * hp[j];
        }
    }
}

DISPATCH void recur_gru_backward(int64_t B, int64_t H, const float *restrict act, const float *restrict ghn,
                                 const float *restrict h_prev, const float *restrict dh, float *restrict dgi, float *restrict dgh,
                                 float *restrict dh_prev) {
    for (int64_t b = 0; b < B; b++) {
        const float *ar = act + b * 3 * H, *az = ar + H, *an = az + H;
        const float *gn = ghn + b * H, *hp = h_prev + b * H, *dhb = dh + b * H;
        float *ir = dgi + b * 3 * H, *iz = ir + H, *in = iz + H;
        float *hr = dgh + b * 3 * H, *hz = hr + H, *hn = hz + H;
        float *dp = dh_prev + b * H;
        /* Gate blocks are disjoint H-wide slices of one row: no dependence between j's. */
        _Pragma("clang loop vectorize(assume_safety)")
        for (int64_t j = 0; j < H; j++) {
            float r = ar[j], z = az[j], n = an[j], d = dhb[j];
            float dan = d * (1.0f - z) * (1.0f - n * n);
            float daz = d * (hp[j] - n) * z * (1.0f - z);
            float dar = dan * gn[j] * r * (1.0f - r);
            ir[j] = dar; iz[j] = daz; in[j] = dan;
            hr[j] = dar; hz[j] = daz; hn[j] = dan * r;
            dp[j] = d * z;
        }
    }
}

DISPATCH double recur_softmax_xent(int64_t N, int64_t V, const float *logits,
                                   const int32_t *restrict targets, float *dlogits, float scale) {
    double total = 0;
    for (int64_t r = 0; r < N; r++) {
        const float *l = logits + r * V;
        float m = l[0];
        for (int64_t j = 1; j < V; j++) m = l[j] > m ? l[j] : m;
        float s = 0;
        if (dlogits) {
            float *d = dlogits + r * V;
            for (int64_t j = 0; j < V; j++) { d[j] = expf_fast(l[j] - m); s += d[j]; }
            float k = scale / s;
            for (int64_t j = 0; j < V; j++) d[j] *= k;
            d[targets[r]] -= scale;
        } else {
            for (int64_t j = 0; j < V; j++) s += expf_fast(l[j] - m);
        }
        total += (double)(m + logf(s) - l[targets[r]]);
    }
    return total;
}

DISPATCH float recur_log_softmax(int64_t V, const float *restrict logits, float *restrict out) {
    float m = logits[0];
    for (int64_t j = 1; j < V; j++) m = logits[j] > m ? logits[j] : m;
    float s = 0;
    for (int64_t j = 0; j < V; j++) s += expf_fast(logits[j] - m);
    float lse = m + logf(s);
    for (int64_t j = 0; j < V; j++) out[j] = logits[j] - lse;
    return lse;
}

DISPATCH void recur_vadd(int64_t n, const float *restrict x, float *restrict y) {
    for (int64_t i = 0; i < n; i++) y[i] += x[i];
}

DISPATCH void recur_colsum(int64_t rows, int64_t cols, const float *restrict a, float *restrict out) {
    for (int64_t i = 0; i < rows; i++) {
        const float *r = a + i * cols;
        for (int64_t j = 0; j < cols; j++) out[j] += r[j];
    }
}

/* out (cols, rows) += aᵀ, a being (rows, cols): in 16 × 16 tiles so that both sides stay in cache. */
DISPATCH void recur_add_transposed(int64_t rows, int64_t cols, const float *restrict a, float *restrict out) {
    for (int64_t i0 = 0; i0 < rows; i0 += 16)
        for (int64_t j0 = 0; j0 < cols; j0 += 16) {
            int64_t i1 = i0 + 16 < rows ? i0 + 16 : rows, j1 = j0 + 16 < cols ? j0 + 16 : cols;
            for (int64_t j = j0; j < j1; j++)
                for (int64_t i = i0; i < i1; i++) out[j * rows + i] += a[i * cols + j];
        }
}
