#ifndef RECUR_KERNELS_H
#define RECUR_KERNELS_H
#include <stdint.h>

/* Pointwise parts of the recurrent cells, vectorised, with run-time CPU dispatch
 * (AVX-512, AVX2+FMA, or portable C). Shapes use B rows (streams) of width H, gates stacked in
 * PyTorch order (RNN: a; GRU: r, z, n; LSTM: i, f, g, o). All matrices are row-major. */

/* exp, sigmoid, tanh over a vector: the cells' own approximations (fast_math.h states and
 * FastMathTests checks their error bounds, within 3e-7 relative). */
void recur_vexp(int64_t n, const float *x, float *y);
void recur_vtanh(int64_t n, const float *x, float *y);
void recur_vsigmoid(int64_t n, const float *x, float *y);

/* Vanilla RNN: a[n] pre-activation -> h[n] = f(a) (relu != 0 chooses ReLU). In place allowed. */
void recur_rnn_forward(int64_t n, const float *a, float *h, int relu);
/* da = dh * f'(a), written from the activated h. */
void recur_rnn_backward(int64_t n, const float *h, const float *dh, float *da, int relu);

/* LSTM step. gates [B,4H]: in pre-activations (both biases included), out activations i,f,g,o.
 * c_prev [B,H]; writes c [B,H], tanh_c [B,H], h [B,H]. */
void recur_lstm_forward(int64_t B, int64_t H, float *gates, const float *c_prev,
                        float *c, float *tanh_c, float *h);
/* dh [B,H] gradient at h_t; dc [B,H] in: gradient at c_t from step t+1, out: gradient at c_{t-1}.
 * dgates [B,4H]: gradient at the pre-activations. */
void recur_lstm_backward(int64_t B, int64_t H, const float *gates, const float *c_prev,
                         const float *tanh_c, const float *dh, float *dc, float *dgates);

/* GRU step. gi [B,3H]: in W_ih x + b_ih, out activations r, z, n. gh [B,3H]: W_hh h + b_hh.
 * h_prev [B,H]; writes h [B,H] and ghn [B,H] (the hidden part of n, kept for backward). */
void recur_gru_forward(int64_t B, int64_t H, float *gi, const float *gh, const float *h_prev,
                       float *h, float *ghn);
/* dgi, dgh [B,3H]: gradients at W_ih x + b_ih and W_hh h + b_hh. dh_prev [B,H] receives the
 * direct path dh * z (the matrix path through W_hh is added by the caller). */
void recur_gru_backward(int64_t B, int64_t H, const float *act, const float *ghn,
                        const float *h_prev, const float *dh, float *dgi, float *dgh,
                        float *dh_prev);

/* Cross-entropy over N rows of V logits with stable log-sum-exp. Returns the summed loss
 * (nats, accumulated in double). If dlogits is not NULL it receives (softmax - onehot) * scale. */
double recur_softmax_xent(int64_t N, int64_t V, const float *logits, const int32_t *targets,
                          float *dlogits, float scale);
/* out[V] = log_softmax(logits[V]). Returns log-sum-exp. */
float recur_log_softmax(int64_t V, const float *logits, float *out);

/* y[i] += x[i] (n floats). */
void recur_vadd(int64_t n, const float *x, float *y);
/* column sums: out[j] += sum_i a[i*cols + j]. */
void recur_colsum(int64_t rows, int64_t cols, const float *a, float *out);
/* out (cols, rows) += aᵀ for a (rows, cols). */
void recur_add_transposed(int64_t rows, int64_t cols, const float *a, float *out);

#endif

/* The inference products (packed_gemm.c): C[b, n] (+)= Σ_k A[b, k] · W[k, n] for b < B, n < N,
 * W being the transposed (K, N) weight matrix of a layer, packed once into panels of 16 columns
 * by recur_pack_weights in one of three formats:
 *   fp32, or bf16 (rounded to nearest even from fp32), or int8 with one fp32 scale per column n
 *   (per output unit: scale = max_k |w_kn| / 127, q = round(w / scale) in [-127, 127]).
 * Activations and accumulation stay fp32 ("weight-only" reduced precision). Each output element
 * is accumulated in one order, whatever B is, wherever the row sits in the batch, however the
 * columns are split over threads, and on every instruction-set path:
 *   fp32, bf16:  s = acc ? c : 0;  for k ascending: s = fma(a_k, w_kn, s);  c = s
 *   int8:        s = 0;  for k ascending: s = fma(a_k, q_kn, s);  c = acc ? fma(scale_n, s, c) : scale_n · s
 * so a stream's numbers depend on none of them. accumulate != 0 adds to C, else overwrites. */
enum { RECUR_WEIGHTS_F32 = 0, RECUR_WEIGHTS_BF16 = 1, RECUR_WEIGHTS_I8 = 2 };
/* Bytes of the packed form of a (K, N) matrix, and the floats of its int8 scale array. */
int64_t recur_packed_bytes(int format, int64_t K, int64_t N);
int64_t recur_packed_scales(int64_t N);
/* Packs WT (K, N, row stride ldw, fp32) into `out` (recur_packed_bytes, 64-byte aligned best);
 * int8 also writes `scale` (recur_packed_scales floats), which is unused otherwise. */
void recur_pack_weights(int format, int64_t K, int64_t N, const float *WT, int64_t ldw, void *out, float *scale);
/* recur_pack_weights of Wᵀ from W itself, stored (N, K) with row stride ldw: a layer's matrix as
 * it is (one row per output unit), with no transposed copy. */
void recur_pack_weights_of_rows(int format, int64_t K, int64_t N, const float *W, int64_t ldw, void *out, float *scale);
/* The value a product multiplies by for element (k, n) of a packed matrix (int8: q, unscaled). */
float recur_packed_weight(int format, int64_t K, const void *W, int64_t k, int64_t n);
/* C (+)= A · W on this CPU's path for the format. scale: the int8 scales, else NULL. */
void recur_packed_gemm(int format, int64_t B, int64_t N, int64_t K, const float *A, int64_t lda,
                       const void *W, const float *scale, float *C, int64_t ldc, int accumulate);
/* The instruction-set paths, which all give the same bits. */
enum { RECUR_GEMM_SCALAR = 0, RECUR_GEMM_AVX2 = 1, RECUR_GEMM_AVX512 = 2 };
/* The path a format takes on this CPU: fp32 AVX-512F, else AVX2 with FMA, else scalar; bf16
 * and int8 AVX2 with FMA, else scalar (an AVX-512 BF16 or VNNI path would sum in another order:
 * pairs of products before the accumulator, or integer activations). */
int recur_packed_gemm_path(int format);
/* Rows per block on that path: split a batch over threads in multiples of it. */
int recur_packed_row_tile(int format);
/* recur_packed_gemm on a given path, for tests and benchmarks; -1 when this CPU lacks it. */
int recur_packed_gemm_on(int path, int format, int64_t B, int64_t N, int64_t K, const float *A, int64_t lda,
                         const void *W, const float *scale, float *C, int64_t ldc, int accumulate);

/* fp32 → bf16 bits, round to nearest with ties to even (NaN stays NaN); and back (exact). */
uint16_t recur_bf16_from_f32(float x);
float recur_f32_from_bf16(uint16_t h);

/* A tiny fork-join pool for the inference step: `threads` - 1 workers that spin briefly and then
 * sleep (futex) between jobs, so an idle daemon burns no CPU. A pool lives as long as the
 * process (InferencePool.shared). Not reentrant: one caller at a
 * time (recur_pool_try_acquire/release guard it); the caller takes part as thread 0. */
typedef struct recur_pool recur_pool;
recur_pool *recur_pool_create(int threads);
/* 1 when the caller now owns the pool, 0 when another thread is using it. */
int recur_pool_try_acquire(recur_pool *pool);
void recur_pool_release(recur_pool *pool);

/* recur_packed_gemm with whole panels split across the pool's threads, optionally followed by a
 * second product (A2, W2, K2; A2 == NULL: none) into the same C, element by element in that
 * order; bit for bit the single-threaded result. */
void recur_packed_gemm_parallel(recur_pool *pool, int format, int64_t B, int64_t N,
                                int64_t K, const float *A, int64_t lda, const void *W, const float *scale,
                                int64_t K2, const float *A2, int64_t lda2, const void *W2, const float *scale2,
                                float *C, int64_t ldc, int accumulate);

/* Runs fn(ctx, index, count) on every thread of the pool (the caller is index 0) and returns
 * when all are done. pool may be NULL: then fn(ctx, 0, 1) runs on the caller. */
void recur_pool_run(recur_pool *pool, void (*fn)(void *ctx, int index, int count), void *ctx);
