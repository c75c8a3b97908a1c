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

#endif

/* C[b, n] (+)= sum_k A[b, k] · WT[k, n] for b < B, n < N: a row-batched product with the weights
 * stored transposed (K, N). Each output element is accumulated over k = 0..K-1 in the same order
 * whatever B is and wherever the row sits in the batch, so a stream's result does not depend on
 * which other streams were stepped with it. accumulate != 0 adds to C, else overwrites. */
void recur_rows_gemm(int64_t B, int64_t N, int64_t K, const float *A, int64_t lda,
                     const float *WT, int64_t ldw, float *C, int64_t ldc, int accumulate);

/* The instruction-set paths of recur_rows_gemm, which all give the same bits. */
enum { RECUR_ROWS_GEMM_SCALAR = 0, RECUR_ROWS_GEMM_AVX2 = 1, RECUR_ROWS_GEMM_AVX512 = 2 };
/* The path recur_rows_gemm takes on this CPU (AVX-512F, else AVX2 with FMA, else scalar). */
int recur_rows_gemm_path(void);
/* recur_rows_gemm on a given path, for tests and benchmarks; -1 when this CPU lacks it. */
int recur_rows_gemm_on(int path, int64_t B, int64_t N, int64_t K, const float *A, int64_t lda,
                       const float *WT, int64_t ldw, float *C, int64_t ldc, int accumulate);

/* Reduced-precision inference (recur --precision): a transposed weight matrix WT (K, N) stored as
 * fp32, bf16 (round to nearest even from fp32) or int8 with one fp32 scale per column n (per
 * output unit: scale = max_k |w_kn| / 127, q = round(w / scale)). Products take fp32 activations
 * and accumulate in fp32 ("weight-only" quantization). */
enum { RECUR_WEIGHTS_F32 = 0, RECUR_WEIGHTS_BF16 = 1, RECUR_WEIGHTS_I8 = 2 };
/* fp32 → bf16 bits, round to nearest with ties to even (NaN stays NaN); and back (exact). */
uint16_t recur_bf16_from_f32(float x);
float recur_f32_from_bf16(uint16_t h);
void recur_bf16_from_f32_n(int64_t n, const float *x, uint16_t *y);
/* Quantizes WT (K, N, row stride N) to Q (K, N) int8 in [-127, 127] with scale[n] per column. */
void recur_i8_quantize_columns(int64_t K, int64_t N, const float *WT, int8_t *Q, float *scale);

/* recur_rows_gemm with W (K, N, ldw elements a row) in `format`; `scale` (N) for int8, else
 * unused. Per element: bf16: s = acc ? c : 0, s = fma(a_k, w_kn, s) for k ascending, c = s;
 * int8: s = 0, s = fma(a_k, q_kn, s) for k ascending, c = acc ? fma(scale_n, s, c) : scale_n · s.
 * The order is the same whatever the batch and on every path, so the paths give the same bits.
 * RECUR_WEIGHTS_F32 is recur_rows_gemm. */
void recur_qgemm(int format, int64_t B, int64_t N, int64_t K, const float *A, int64_t lda,
                 const void *W, int64_t ldw, const float *scale, float *C, int64_t ldc, int accumulate);
/* The instruction-set paths of recur_qgemm's bf16 and int8 products (no AVX-512 path: its
 * vdpbf16ps / VNNI instructions sum in another order, so it would not give these bits). */
enum { RECUR_QGEMM_SCALAR = 0, RECUR_QGEMM_AVX2 = 1 };
/* The path recur_qgemm takes on this CPU (AVX2 with FMA, else scalar). */
int recur_qgemm_path(void);
/* recur_qgemm (bf16 or int8) on a given path, for tests; -1 when this CPU lacks it. */
int recur_qgemm_on(int path, int format, int64_t B, int64_t N, int64_t K, const float *A, int64_t lda,
                   const void *W, int64_t ldw, const float *scale, float *C, int64_t ldc, int accumulate);

/* A tiny fork-join pool for the inference step: `threads` - 1 workers that spin briefly and then
 * sleep (futex) between jobs, so an idle daemon burns no CPU. A pool lives as long as the
 * process (InferencePool.shared). Not reentrant: one caller at a
 * time (recur_pool_try_acquire/release guard it); the caller takes part as thread 0. */
typedef struct recur_pool recur_pool;
recur_pool *recur_pool_create(int threads);
/* 1 when the caller now owns the pool, 0 when another thread is using it. */
int recur_pool_try_acquire(recur_pool *pool);
void recur_pool_release(recur_pool *pool);

/* recur_rows_gemm with the columns split across the pool's threads; the per-element order is
 * unchanged, so results equal the single-threaded call bit for bit. A second product
 * (A2, WT2, K2) may be accumulated into the same C in the same pass (A2 == NULL: none), as
 * C (+)= A·WT then += A2·WT2, element by element in that order. */
void recur_rows_gemm_parallel(recur_pool *pool, int64_t B, int64_t N,
                              int64_t K, const float *A, int64_t lda, const float *WT, int64_t ldw,
                              int64_t K2, const float *A2, int64_t lda2, const float *WT2, int64_t ldw2,
                              float *C, int64_t ldc, int accumulate);

/* recur_qgemm with the columns split across the pool's threads, optionally followed by a second
 * product into the same C, as recur_rows_gemm_parallel; bit for bit the single-threaded result. */
void recur_qgemm_parallel(recur_pool *pool, int format, int64_t B, int64_t N,
                          int64_t K, const float *A, int64_t lda, const void *W, int64_t ldw, const float *scale,
                          int64_t K2, const float *A2, int64_t lda2, const void *W2, int64_t ldw2, const float *scale2,
                          float *C, int64_t ldc, int accumulate);

/* Runs fn(ctx, index, count) on every thread of the pool (the caller is index 0) and returns
 * when all are done. pool may be NULL: then fn(ctx, 0, 1) runs on the caller. */
void recur_pool_run(recur_pool *pool, void (*fn)(void *ctx, int index, int count), void *ctx);
