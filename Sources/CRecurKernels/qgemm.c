#include "recur_kernels.h"
#include <math.h>
#include <string.h>
#if defined(__x86_64__)
#include <immintrin.h>
#endif

/* Reduced-precision row-batched products (recur --precision bf16|int8): recur_rows_gemm with the
 * weights WT (K, N) stored as bf16, or as int8 with one fp32 scale per column n (per output
 * unit). Activations and accumulation stay fp32 ("weight-only" quantization). Per element:
 *
 *   bf16:  s = acc ? c : 0;  for k ascending: s = fma(a_k, float(w_kn), s);  c = s
 *   int8:  s = 0;            for k ascending: s = fma(a_k, float(q_kn), s);  c = acc ? fma(scale_n, s, c) : scale_n · s
 *
 * (float(w) of a bf16 is exact: its bits are the float's high half; float(q) of an int8 is exact.)
 * The order depends on neither the batch nor the row's place in it, and every path (scalar,
 * AVX2+FMA) follows it, so all paths give the same bits. */

static inline float bf16_value(uint16_t h) {
    uint32_t u = (uint32_t)h << 16;
    float f;
    memcpy(&f, &u, 4);
    return f;
}

uint16_t recur_bf16_from_f32(float x) {
    uint32_t u;
    memcpy(&u, &x, 4);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 0x40u); /* NaN stays a (quiet) NaN */
    u += 0x7fffu + ((u >> 16) & 1u);                                           /* round to nearest, ties to even */
    return (uint16_t)(u >> 16);
}

float recur_f32_from_bf16(uint16_t h) { return bf16_value(h); }

void recur_bf16_from_f32_n(int64_t n, const float *x, uint16_t *y) {
    for (int64_t i = 0; i < n; i++) y[i] = recur_bf16_from_f32(x[i]);
}

void recur_i8_quantize_columns(int64_t K, int64_t N, const float *WT, int8_t *Q, float *scale) {
    for (int64_t n = 0; n < N; n++) {
        float m = 0;
        for (int64_t k = 0; k < K; k++) m = fmaxf(m, fabsf(WT[k * N + n]));
        float s = m / 127.0f;
        scale[n] = s;
        for (int64_t k = 0; k < K; k++) {
            float q = s > 0 ? nearbyintf(WT[k * N + n] / s) : 0;
            Q[k * N + n] = (int8_t)(q > 127 ? 127 : q < -127 ? -127 : q);
        }
    }
}

static void qgemm_scalar(int format, int64_t B, int64_t N, int64_t K, const float *A, int64_t lda,
                         const void *W, int64_t ldw, const float *scale, float *C, int64_t ldc, int acc) {
    for (int64_t b = 0; b < B; b++) {
        float *c = C + b * ldc;
        const float *a = A + b * lda;
        for (int64_t n = 0; n < N; n++) {
            if (format == RECUR_WEIGHTS_BF16) {
                const uint16_t *w = (const uint16_t *)W + n;
                float s = acc ? c[n] : 0.0f;
                for (int64_t k = 0; k < K; k++) s = __builtin_fmaf(a[k], bf16_value(w[k * ldw]), s);
                c[n] = s;
            } else {
                const int8_t *w = (const int8_t *)W + n;
                float s = 0.0f;
                for (int64_t k = 0; k < K; k++) s = __builtin_fmaf(a[k], (float)w[k * ldw], s);
                c[n] = acc ? __builtin_fmaf(scale[n], s, c[n]) : scale[n] * s;
            }
        }
    }
}

#if defined(__x86_64__) && defined(__clang__)
/* 8 weights of column block j at row k, widened to fp32: bf16 is zero-extended and shifted into
 * the float's high half (vpmovzxwd + vpslld), int8 sign-extended and converted (vpmovsxbd +
 * vcvtdq2ps); both exact. */
__attribute__((target("avx2,fma"), always_inline))
static inline __m256 load8(int format, const void *W, int64_t offset) {
    if (format == RECUR_WEIGHTS_BF16) {
        __m128i h = _mm_loadu_si128((const __m128i *)((const uint16_t *)W + offset));
        return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
    }
    __m128i q = _mm_loadl_epi64((const __m128i *)((const int8_t *)W + offset));
    return _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(q));
}

/* `rows` rows × nv·8 columns of accumulators (rows·nv ≤ 12), k innermost and sequential, one
 * accumulator per element: the scalar order. Four rows share each widened weight vector; a lone
 * row (the one-stream case) gets up to 12 vectors so that 12 independent FMA chains hide the
 * FMA latency. */
__attribute__((target("avx2,fma"), always_inline))
static inline void qblock(int format, int nv, int rows, int64_t K, const float *A, int64_t lda,
                          const void *W, int64_t ldw, const float *scale, float *C, int64_t ldc, int acc) {
    __m256 c[4][12];
    for (int r = 0; r < rows; r++)
        for (int j = 0; j < nv; j++)
            c[r][j] = format == RECUR_WEIGHTS_BF16 && acc ? _mm256_loadu_ps(C + r * ldc + 8 * j) : _mm256_setzero_ps();
    for (int64_t k = 0; k < K; k++) {
        if (rows == 1) {
            __m256 x = _mm256_broadcast_ss(A + k);
            for (int j = 0; j < nv; j++) c[0][j] = _mm256_fmadd_ps(x, load8(format, W, k * ldw + 8 * j), c[0][j]);
        } else {
            __m256 wv[3];
            for (int j = 0; j < nv; j++) wv[j] = load8(format, W, k * ldw + 8 * j);
            for (int r = 0; r < rows; r++) {
                __m256 x = _mm256_broadcast_ss(A + r * lda + k);
                for (int j = 0; j < nv; j++) c[r][j] = _mm256_fmadd_ps(x, wv[j], c[r][j]);
            }
        }
    }
    for (int r = 0; r < rows; r++)
        for (int j = 0; j < nv; j++) {
            float *out = C + r * ldc + 8 * j;
            __m256 v = c[r][j];
            if (format == RECUR_WEIGHTS_I8) {
                __m256 s = _mm256_loadu_ps(scale + 8 * j);
                v = acc ? _mm256_fmadd_ps(s, v, _mm256_loadu_ps(out)) : _mm256_mul_ps(s, v);
            }
            _mm256_storeu_ps(out, v);
        }
}

/* Blocks of 4 rows × 24 columns (12 accumulators, 3 weight vectors and a broadcast in the 16
 * ymm registers), then leftover rows one at a time over 96 columns; the last N mod 8 columns
 * go through the scalar code, which has the same order. */
__attribute__((target("avx2,fma"), always_inline))
static inline void qgemm_avx2_format(int format, int64_t B, int64_t N, int64_t K, const float *A, int64_t lda,
                                     const void *W, int64_t ldw, const float *scale, float *C, int64_t ldc, int acc) {
    const int size = format == RECUR_WEIGHTS_BF16 ? 2 : 1;
    const char *w = W;
    int64_t N8 = N - N % 8, B4 = B - B % 4;
    for (int64_t n0 = 0; n0 < N8; n0 += 24) {
        int64_t left = (N8 - n0) / 8;
        for (int64_t b0 = 0; b0 < B4; b0 += 4) {
            const float *a = A + b0 * lda;
            float *c = C + b0 * ldc + n0;
            if (left >= 3) qblock(format, 3, 4, K, a, lda, w + n0 * size, ldw, scale + n0, c, ldc, acc);
            else if (left == 2) qblock(format, 2, 4, K, a, lda, w + n0 * size, ldw, scale + n0, c, ldc, acc);
            else qblock(format, 1, 4, K, a, lda, w + n0 * size, ldw, scale + n0, c, ldc, acc);
        }
    }
    for (int64_t b = B4; b < B; b++) {
        const float *a = A + b * lda;
        float *c = C + b * ldc;
        int64_t n0 = 0;
        for (; n0 + 96 <= N8; n0 += 96) qblock(format, 12, 1, K, a, lda, w + n0 * size, ldw, scale + n0, c + n0, ldc, acc);
        for (; n0 + 32 <= N8; n0 += 32) qblock(format, 4, 1, K, a, lda, w + n0 * size, ldw, scale + n0, c + n0, ldc, acc);
        for (; n0 < N8; n0 += 8) qblock(format, 1, 1, K, a, lda, w + n0 * size, ldw, scale + n0, c + n0, ldc, acc);
    }
    if (N8 < N)
        qgemm_scalar(format, B, N - N8, K, A, lda, w + N8 * size, ldw,
                     format == RECUR_WEIGHTS_I8 ? scale + N8 : scale, C + N8, ldc, acc);
}

__attribute__((target("avx2,fma")))
static void qgemm_avx2_bf16(int64_t B, int64_t N, int64_t K, const float *A, int64_t lda,
                            const void *W, int64_t ldw, const float *scale, float *C, int64_t ldc, int acc) {
    qgemm_avx2_format(RECUR_WEIGHTS_BF16, B, N, K, A, lda, W, ldw, scale, C, ldc, acc);
}

__attribute__((target("avx2,fma")))
static void qgemm_avx2_i8(int64_t B, int64_t N, int64_t K, const float *A, int64_t lda,
                          const void *W, int64_t ldw, const float *scale, float *C, int64_t ldc, int acc) {
    qgemm_avx2_format(RECUR_WEIGHTS_I8, B, N, K, A, lda, W, ldw, scale, C, ldc, acc);
}

static int avx2_fma(void) { return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"); }
#endif

int recur_qgemm_path(void) {
    static int path = -1;
    if (path < 0) {
        path = RECUR_QGEMM_SCALAR;
#if defined(__x86_64__) && defined(__clang__)
        if (avx2_fma()) path = RECUR_QGEMM_AVX2;
#endif
    }
    return path;
}

int recur_qgemm_on(int path, int format, int64_t B, int64_t N, int64_t K, const float *A, int64_t lda,
                   const void *W, int64_t ldw, const float *scale, float *C, int64_t ldc, int accumulate) {
    if (format != RECUR_WEIGHTS_BF16 && format != RECUR_WEIGHTS_I8) return -1;
    switch (path) {
    case RECUR_QGEMM_SCALAR:
        qgemm_scalar(format, B, N, K, A, lda, W, ldw, scale, C, ldc, accumulate);
        return 0;
#if defined(__x86_64__) && defined(__clang__)
    case RECUR_QGEMM_AVX2:
        if (!avx2_fma()) return -1;
        if (format == RECUR_WEIGHTS_BF16) qgemm_avx2_bf16(B, N, K, A, lda, W, ldw, scale, C, ldc, accumulate);
        else qgemm_avx2_i8(B, N, K, A, lda, W, ldw, scale, C, ldc, accumulate);
        return 0;
#endif
    default:
        return -1;
    }
}

void recur_qgemm(int format, int64_t B, int64_t N, int64_t K, const float *A, int64_t lda,
                 const void *W, int64_t ldw, const float *scale, float *C, int64_t ldc, int accumulate) {
    if (format == RECUR_WEIGHTS_F32)
        recur_rows_gemm(B, N, K, A, lda, W, ldw, C, ldc, accumulate);
    else
        recur_qgemm_on(recur_qgemm_path(), format, B, N, K, A, lda, W, ldw, scale, C, ldc, accumulate);
}

typedef struct {
    int format;
    int64_t B, N, K, lda, ldw, K2, lda2, ldw2, ldc;
    const float *A, *A2, *scale, *scale2;
    const char *W, *W2;
    float *C;
    int acc;
} qgemm_job;

static void qgemm_part(void *p, int index, int count) {
    qgemm_job *j = p;
    /* Column ranges in multiples of 24 (the 4-row block's width; also a multiple of 8), as even
     * as possible; the per-element order does not depend on the split. */
    int64_t blocks = (j->N + 23) / 24;
    int64_t n0 = blocks * index / count * 24, n1 = blocks * (index + 1) / count * 24;
    if (n1 > j->N) n1 = j->N;
    if (n1 <= n0) return;
    int64_t size = j->format == RECUR_WEIGHTS_F32 ? 4 : j->format == RECUR_WEIGHTS_BF16 ? 2 : 1;
    const float *s = j->scale ? j->scale + n0 : NULL, *s2 = j->scale2 ? j->scale2 + n0 : NULL;
    recur_qgemm(j->format, j->B, n1 - n0, j->K, j->A, j->lda, j->W + n0 * size, j->ldw, s, j->C + n0, j->ldc, j->acc);
    if (j->A2)
        recur_qgemm(j->format, j->B, n1 - n0, j->K2, j->A2, j->lda2, j->W2 + n0 * size, j->ldw2, s2, j->C + n0, j->ldc, 1);
}

void recur_qgemm_parallel(recur_pool *pool, int format, int64_t B, int64_t N,
                          int64_t K, const float *A, int64_t lda, const void *W, int64_t ldw, const float *scale,
                          int64_t K2, const float *A2, int64_t lda2, const void *W2, int64_t ldw2, const float *scale2,
                          float *C, int64_t ldc, int accumulate) {
    qgemm_job job = {format, B, N, K, lda, ldw, K2, lda2, ldw2, ldc, A, A2, scale, scale2, W, W2, C, accumulate};
    if (!pool) { qgemm_part(&job, 0, 1); return; }
    recur_pool_run(pool, qgemm_part, &job);
}
