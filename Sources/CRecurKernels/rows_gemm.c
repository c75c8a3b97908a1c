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
#endif

void recur_rows_gemm(int64_t B, int64_t N, int64_t K, const float *A, int64_t lda,
                     const float *WT, int64_t ldw, float *C, int64_t ldc, int accumulate) {
#if defined(__x86_64__) && defined(__clang__)
    if (__builtin_cpu_supports("avx512f")) {
        rows_gemm_avx512(B, N, K, A, lda, WT, ldw, C, ldc, accumulate);
        return;
    }
#endif
    rows_gemm_scalar(B, N, K, A, lda, WT, ldw, C, ldc, accumulate);
}
