#include "recur_kernels.h"
#if defined(__x86_64__)
#include <immintrin.h>
#endif

/* Portable reference with the same per-element order (k ascending, one accumulator). */
static void rows_gemm_scalar(int64_t B, int64_t N, int64_t K, const float *A, int64_t lda,
                             const float *WT, int64_t ldw, float *C, int64_t ldc, int acc) {
    for (int64_t b = 0; b < B; b++) {
        float *c = C + b * ldc;
        for (int64_t n = 0; n < N; n++) {
            float s = acc ? c[n] : 0.0f;
            for (int64_t k = 0; k < K; k++) s = __builtin_fmaf(A[b * lda + k], WT[k * ldw + n], s);
            c[n] = s;
        }
    }
}

#if defined(__x86_64__) && defined(__clang__)
/* 4 rows × 64 columns of accumulators in 16 zmm registers; k innermost, sequential. Rows past B
 * and columns past N are masked, never computed differently. */
__attribute__((target("avx512f")))
static void rows_gemm_avx512(int64_t B, int64_t N, int64_t K, const float *A, int64_t lda,
                             const float *WT, int64_t ldw, float *C, int64_t ldc, int acc) {
    for (int64_t n0 = 0; n0 < N; n0 += 64) {
        __mmask16 m[4];
        for (int j = 0; j < 4; j++) {
            int64_t left = N - n0 - 16 * j;
            m[j] = left >= 16 ? (__mmask16)0xFFFF : left <= 0 ? 0 : (__mmask16)((1u << left) - 1);
        }
        int64_t b0 = 0;
        for (; b0 + 4 <= B; b0 += 4) {
            __m512 c[4][4];
            for (int r = 0; r < 4; r++)
                for (int j = 0; j < 4; j++)
                    c[r][j] = acc ? _mm512_maskz_loadu_ps(m[j], C + (b0 + r) * ldc + n0 + 16 * j)
                                  : _mm512_setzero_ps();
            const float *a0 = A + b0 * lda, *a1 = a0 + lda, *a2 = a1 + lda, *a3 = a2 + lda;
            for (int64_t k = 0; k < K; k++) {
                const float *w = WT + k * ldw + n0;
                __m512 w0 = _mm512_maskz_loadu_ps(m[0], w), w1 = _mm512_maskz_loadu_ps(m[1], w + 16);
                __m512 w2 = _mm512_maskz_loadu_ps(m[2], w + 32), w3 = _mm512_maskz_loadu_ps(m[3], w + 48);
                __m512 x;
                x = _mm512_set1_ps(a0[k]);
                c[0][0] = _mm512_fmadd_ps(x, w0, c[0][0]); c[0][1] = _mm512_fmadd_ps(x, w1, c[0][1]);
                c[0][2] = _mm512_fmadd_ps(x, w2, c[0][2]); c[0][3] = _mm512_fmadd_ps(x, w3, c[0][3]);
                x = _mm512_set1_ps(a1[k]);
                c[1][0] = _mm512_fmadd_ps(x, w0, c[1][0]); c[1][1] = _mm512_fmadd_ps(x, w1, c[1][1]);
                c[1][2] = _mm512_fmadd_ps(x, w2, c[1][2]); c[1][3] = _mm512_fmadd_ps(x, w3, c[1][3]);
                x = _mm512_set1_ps(a2[k]);
                c[2][0] = _mm512_fmadd_ps(x, w0, c[2][0]); c[2][1] = _mm512_fmadd_ps(x, w1, c[2][1]);
                c[2][2] = _mm512_fmadd_ps(x, w2, c[2][2]); c[2][3] = _mm512_fmadd_ps(x, w3, c[2][3]);
                x = _mm512_set1_ps(a3[k]);
                c[3][0] = _mm512_fmadd_ps(x, w0, c[3][0]); c[3][1] = _mm512_fmadd_ps(x, w1, c[3][1]);
                c[3][2] = _mm512_fmadd_ps(x, w2, c[3][2]); c[3][3] = _mm512_fmadd_ps(x, w3, c[3][3]);
            }
            for (int r = 0; r < 4; r++)
                for (int j = 0; j < 4; j++)
                    _mm512_mask_storeu_ps(C + (b0 + r) * ldc + n0 + 16 * j, m[j], c[r][j]);
        }
    }
    /* Leftover rows (B mod 4), one at a time: 8 accumulators over 128 columns keep the FMA
     * pipes busy; the per-element order (k ascending, one accumulator) is the same as above. */
    for (int64_t b = B - B % 4; b < B; b++) {
        const float *a = A + b * lda;
        float *c = C + b * ldc;
        int64_t n0 = 0;
        for (; n0 + 128 <= N; n0 += 128) {
            __m512 s[8];
            for (int j = 0; j < 8; j++) s[j] = acc ? _mm512_loadu_ps(c + n0 + 16 * j) : _mm512_setzero_ps();
            const float *w = WT + n0;
            for (int64_t k = 0; k < K; k++, w += ldw) {
                __m512 x = _mm512_set1_ps(a[k]);
                s[0] = _mm512_fmadd_ps(x, _mm512_loadu_ps(w), s[0]);
                s[1] = _mm512_fmadd_ps(x, _mm512_loadu_ps(w + 16), s[1]);
                s[2] = _mm512_fmadd_ps(x, _mm512_loadu_ps(w + 32), s[2]);
                s[3] = _mm512_fmadd_ps(x, _mm512_loadu_ps(w + 48), s[3]);
                s[4] = _mm512_fmadd_ps(x, _mm512_loadu_ps(w + 64), s[4]);
                s[5] = _mm512_fmadd_ps(x, _mm512_loadu_ps(w + 80), s[5]);
                s[6] = _mm512_fmadd_ps(x, _mm512_loadu_ps(w + 96), s[6]);
                s[7] = _mm512_fmadd_ps(x, _mm512_loadu_ps(w + 112), s[7]);
            }
            for (int j = 0; j < 8; j++) _mm512_storeu_ps(c + n0 + 16 * j, s[j]);
        }
        for (; n0 < N; n0 += 64) {
            __mmask16 m[4];
            for (int j = 0; j < 4; j++) {
                int64_t left = N - n0 - 16 * j;
                m[j] = left >= 16 ? (__mmask16)0xFFFF : left <= 0 ? 0 : (__mmask16)((1u << left) - 1);
            }
            __m512 s[4];
            for (int j = 0; j < 4; j++) s[j] = acc ? _mm512_maskz_loadu_ps(m[j], c + n0 + 16 * j) : _mm512_setzero_ps();
            const float *w = WT + n0;
            for (int64_t k = 0; k < K; k++, w += ldw) {
                __m512 x = _mm512_set1_ps(a[k]);
                s[0] = _mm512_fmadd_ps(x, _mm512_maskz_loadu_ps(m[0], w), s[0]);
                s[1] = _mm512_fmadd_ps(x, _mm512_maskz_loadu_ps(m[1], w + 16), s[1]);
                s[2] = _mm512_fmadd_ps(x, _mm512_maskz_loadu_ps(m[2], w + 32), s[2]);
                s[3] = _mm512_fmadd_ps(x, _mm512_maskz_loadu_ps(m[3], w + 48), s[3]);
            }
            for (int j = 0; j < 4; j++) _mm512_mask_storeu_ps(c + n0 + 16 * j, m[j], s[j]);
        }
    }
}

/* AVX2 + FMA (x86-64-v3, e.g. AMD EPYC without AVX-512): blocks of 4 rows × NV·8 columns,
 * NV ≤ 3 (12 accumulators, 3 weight vectors and a broadcast fill the 16 ymm registers); k
 * innermost and sequential, one accumulator per element, as in the scalar reference. Columns
 * past the last multiple of 8 are done one at a time with the same fused multiply-add. */
__attribute__((target("avx2,fma"), always_inline))
static inline void rows_avx2_block(int nv, int rows, int64_t K, const float *A, int64_t lda,
                                   const float *WT, int64_t ldw, float *C, int64_t ldc, int acc) {
    __m256 c[4][3];
    for (int r = 0; r < rows; r++)
        for (int j = 0; j < nv; j++)
            c[r][j] = acc ? _mm256_loadu_ps(C + r * ldc + 8 * j) : _mm256_setzero_ps();
    for (int64_t k = 0; k < K; k++) {
        const float *w = WT + k * ldw;
        __m256 wv[3];
        for (int j = 0; j < nv; j++) wv[j] = _mm256_loadu_ps(w + 8 * j);
        for (int r = 0; r < rows; r++) {
            __m256 x = _mm256_broadcast_ss(A + r * lda + k);
            for (int j = 0; j < nv; j++) c[r][j] = _mm256_fmadd_ps(x, wv[j], c[r][j]);
        }
    }
    for (int r = 0; r < rows; r++)
        for (int j = 0; j < nv; j++)
            _mm256_storeu_ps(C + r * ldc + 8 * j, c[r][j]);
}

__attribute__((target("avx2,fma")))
static void rows_gemm_avx2(int64_t B, int64_t N, int64_t K, const float *A, int64_t lda,
                           const float *WT, int64_t ldw, float *C, int64_t ldc, int acc) {
    int64_t N8 = N - N % 8;
    for (int64_t n0 = 0; n0 < N8; n0 += 24) {
        int64_t left = (N8 - n0) / 8;
        int64_t b0 = 0;
        for (; b0 + 4 <= B; b0 += 4) {
            const float *a = A + b0 * lda;
            float *c = C + b0 * ldc + n0;
            if (left >= 3) rows_avx2_block(3, 4, K, a, lda, WT + n0, ldw, c, ldc, acc);
            else if (left == 2) rows_avx2_block(2, 4, K, a, lda, WT + n0, ldw, c, ldc, acc);
            else rows_avx2_block(1, 4, K, a, lda, WT + n0, ldw, c, ldc, acc);
        }
        for (; b0 < B; b0++) {
            const float *a = A + b0 * lda;
            float *c = C + b0 * ldc + n0;
            if (left >= 3) rows_avx2_block(3, 1, K, a, lda, WT + n0, ldw, c, ldc, acc);
            else if (left == 2) rows_avx2_block(2, 1, K, a, lda, WT + n0, ldw, c, ldc, acc);
            else rows_avx2_block(1, 1, K, a, lda, WT + n0, ldw, c, ldc, acc);
        }
    }
    for (int64_t b = 0; b < B && N8 < N; b++) {
        float *c = C + b * ldc;
        for (int64_t n = N8; n < N; n++) {
            float s = acc ? c[n] : 0.0f;
            for (int64_t k = 0; k < K; k++) s = __builtin_fmaf(A[b * lda + k], WT[k * ldw + n], s);
            c[n] = s;
        }
    }
}
#endif

/* The path every call takes, chosen once from the CPU's features. */
static int rows_gemm_best_path(void) {
#if defined(__x86_64__) && defined(__clang__)
    if (__builtin_cpu_supports("avx512f")) return RECUR_ROWS_GEMM_AVX512;
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return RECUR_ROWS_GEMM_AVX2;
#endif
    return RECUR_ROWS_GEMM_SCALAR;
}

int recur_rows_gemm_path(void) {
    static int path = -1;
    if (path < 0) path = rows_gemm_best_path();
    return path;
}

int recur_rows_gemm_on(int path, int64_t B, int64_t N, int64_t K, const float *A, int64_t lda,
                       const float *WT, int64_t ldw, float *C, int64_t ldc, int accumulate) {
    switch (path) {
    case RECUR_ROWS_GEMM_SCALAR:
        rows_gemm_scalar(B, N, K, A, lda, WT, ldw, C, ldc, accumulate);
        return 0;
#if defined(__x86_64__) && defined(__clang__)
    case RECUR_ROWS_GEMM_AVX2:
        if (!(__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))) return -1;
        rows_gemm_avx2(B, N, K, A, lda, WT, ldw, C, ldc, accumulate);
        return 0;
    case RECUR_ROWS_GEMM_AVX512:
        if (!__builtin_cpu_supports("avx512f")) return -1;
        rows_gemm_avx512(B, N, K, A, lda, WT, ldw, C, ldc, accumulate);
        return 0;
#endif
    default:
        return -1;
    }
}

void recur_rows_gemm(int64_t B, int64_t N, int64_t K, const float *A, int64_t lda,
                     const float *WT, int64_t ldw, float *C, int64_t ldc, int accumulate) {
    recur_rows_gemm_on(recur_rows_gemm_path(), B, N, K, A, lda, WT, ldw, C, ldc, accumulate);
}
