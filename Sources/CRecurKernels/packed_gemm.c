#include "recur_kernels.h"
#include <math.h>
#include <string.h>
#if defined(__x86_64__)
#include <immintrin.h>
#endif

/* The inference products: C[b, n] (+)= Σ_k A[b, k] · W[k, n], W being Wᵀ of a layer's matrix,
 * packed once at load (recur_pack_weights) into panels of 16 columns: panel p holds columns
 * 16p..16p+15 for k = 0..K-1, one row of 16 after another, so a kernel streams through it front
 * to back (no 4 KiB strides between k's, which made every row of a panel fall into the same few
 * L1 sets). Columns past N are zeros. In a panel row:
 *   fp32  16 floats, columns in order;
 *   bf16  16 bf16, columns interleaved 0, 8, 1, 9, ..., 7, 15, so that 32-bit lane i holds
 *         columns i (low half) and 8 + i (high half): one load and a shift (columns 0-7) or a
 *         mask (columns 8-15) widen them to fp32, exactly;
 *   int8  16 int8, columns in order, with one fp32 scale per column (max_k |w_kn| / 127,
 *         q = round(w / scale) in [-127, 127]) in a separate array of panels·16 floats.
 * Per element, on every path and whatever the batch, the row's place in it, or the thread
 * count (so a stream's numbers depend on none of them):
 *   fp32, bf16:  s = acc ? c : 0;  for k ascending: s = fma(a_k, w_kn, s);  c = s
 *   int8:        s = 0;            for k ascending: s = fma(a_k, q_kn, s);
 *                c = acc ? fma(scale_n, s, c) : scale_n · s */

#define PANEL 16
#define ROW_CHUNK 96

static inline int64_t panels_of(int64_t N) { return (N + PANEL - 1) / PANEL; }
static inline int64_t element_size(int format) {
    return format == RECUR_WEIGHTS_F32 ? 4 : format == RECUR_WEIGHTS_BF16 ? 2 : 1;
}
/* Where column j (0..15) of a panel row sits, in elements. */
static inline int64_t slot_of(int format, int64_t j) {
    return format == RECUR_WEIGHTS_BF16 ? (j < 8 ? 2 * j : 2 * (j - 8) + 1) : j;
}

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

int64_t recur_packed_bytes(int format, int64_t K, int64_t N) {
    return panels_of(N) * PANEL * K * element_size(format);
}

int64_t recur_packed_scales(int64_t N) { return panels_of(N) * PANEL; }

/* Packs the (K, N) matrix whose element (k, n) is W[k · sk + n · sn]. */
static void pack_strided(int format, int64_t K, int64_t N, const float *W, int64_t sk, int64_t sn, void *out,
                         float *scale) {
    int64_t panels = panels_of(N);
    if (format == RECUR_WEIGHTS_I8) {
        for (int64_t n = 0; n < panels * PANEL; n++) {
            float m = 0;
            for (int64_t k = 0; n < N && k < K; k++) m = fmaxf(m, fabsf(W[k * sk + n * sn]));
            scale[n] = m / 127.0f;
        }
    }
    for (int64_t p = 0; p < panels; p++)
        for (int64_t k = 0; k < K; k++)
            for (int64_t j = 0; j < PANEL; j++) {
                int64_t n = p * PANEL + j, at = (p * K + k) * PANEL + slot_of(format, j);
                float w = n < N ? W[k * sk + n * sn] : 0.0f;
                if (format == RECUR_WEIGHTS_F32) {
                    ((float *)out)[at] = w;
                } else if (format == RECUR_WEIGHTS_BF16) {
                    ((uint16_t *)out)[at] = recur_bf16_from_f32(w);
                } else {
                    float s = scale[n], q = s > 0 ? nearbyintf(w / s) : 0;
                    ((int8_t *)out)[at] = (int8_t)(q > 127 ? 127 : q < -127 ? -127 : q);
                }
            }
}

void recur_pack_weights(int format, int64_t K, int64_t N, const float *WT, int64_t ldw, void *out, float *scale) {
    pack_strided(format, K, N, WT, ldw, 1, out, scale);
}

void recur_pack_weights_of_rows(int format, int64_t K, int64_t N, const float *W, int64_t ldw, void *out, float *scale) {
    pack_strided(format, K, N, W, 1, ldw, out, scale);
}

float recur_packed_weight(int format, int64_t K, const void *W, int64_t k, int64_t n) {
    int64_t at = ((n / PANEL) * K + k) * PANEL + slot_of(format, n % PANEL);
    if (format == RECUR_WEIGHTS_F32) return ((const float *)W)[at];
    if (format == RECUR_WEIGHTS_BF16) return bf16_value(((const uint16_t *)W)[at]);
    return (float)((const int8_t *)W)[at];
}

/* The reference: one element at a time, in the documented order. */
static void packed_scalar(int format, int64_t B, int64_t N, int64_t K, const float *A, int64_t lda,
                          const void *W, const float *scale, float *C, int64_t ldc, int acc) {
    for (int64_t b = 0; b < B; b++) {
        const float *a = A + b * lda;
        float *c = C + b * ldc;
        for (int64_t n = 0; n < N; n++) {
            if (format == RECUR_WEIGHTS_I8) {
                float s = 0.0f;
                for (int64_t k = 0; k < K; k++) s = __builtin_fmaf(a[k], recur_packed_weight(format, K, W, k, n), s);
                c[n] = acc ? __builtin_fmaf(scale[n], s, c[n]) : scale[n] * s;
            } else {
                float s = acc ? c[n] : 0.0f;
                for (int64_t k = 0; k < K; k++) s = __builtin_fmaf(a[k], recur_packed_weight(format, K, W, k, n), s);
                c[n] = s;
            }
        }
    }
}

/* The vector paths share one driver: blocks of ROWS rows × PB panels (the batched case; a block
 * of ROWS rows × 1 panel for whole panels left over), then each leftover row alone over up to
 * WIDE panels at once (the one-stream case: WIDE panels' accumulators are independent chains
 * that hide the FMA latency). A partial last panel is computed into a 16-wide scratch copy of
 * C's valid columns, so C is never touched past N; whole panels left over after the row's groups
 * go two at a time, then one. BLOCK(format, rows, panels, K, A, lda, W,
 * panel_bytes, scale, C, ldc, acc) is always inlined with constant rows and panels. */
#define PACKED_DRIVER(BLOCK, ROWS, PB, WIDE)                                                                   \
    const int64_t esz = element_size(format), pbytes = K * PANEL * esz, full = N / PANEL;                     \
    const int64_t panels = panels_of(N), tail = N - full * PANEL, BR = B - B % (ROWS);                         \
    const char *w = W;                                                                                         \
    float t[(ROWS) * PANEL];                                                                                   \
    for (int64_t p = 0, step; p < panels; p += step) {                                                         \
        step = p + (PB) <= full ? (PB) : 1;                                                                    \
        const char *wp = w + p * pbytes;                                                                       \
        const float *sp = scale ? scale + p * PANEL : NULL;                                                    \
        for (int64_t b0 = 0; b0 < BR; b0 += (ROWS)) {                                                          \
            float *c = C + b0 * ldc + p * PANEL;                                                               \
            const float *a = A + b0 * lda;                                                                     \
            if (p + (PB) <= full) {                                                                            \
                BLOCK(format, ROWS, PB, K, a, lda, wp, pbytes, sp, c, ldc, acc);                               \
            } else if (p < full) {                                                                             \
                BLOCK(format, ROWS, 1, K, a, lda, wp, pbytes, sp, c, ldc, acc);                                \
            } else {                                                                                           \
                for (int r = 0; r < (ROWS); r++)                                                               \
                    for (int j = 0; j < PANEL; j++) t[r * PANEL + j] = j < tail ? c[r * ldc + j] : 0.0f;       \
                BLOCK(format, ROWS, 1, K, a, lda, wp, pbytes, sp, t, PANEL, acc);                              \
                for (int r = 0; r < (ROWS); r++)                                                               \
                    for (int j = 0; j < tail; j++) c[r * ldc + j] = t[r * PANEL + j];                          \
            }                                                                                                  \
        }                                                                                                      \
    }                                                                                                          \
    for (int64_t b = BR; b < B; b++) {                                                                         \
        const float *a = A + b * lda;                                                                          \
        float *c = C + b * ldc;                                                                                \
        int64_t p = 0;                                                                                         \
        for (; p + (WIDE) <= full; p += (WIDE))                                                                \
            BLOCK(format, 1, WIDE, K, a, lda, w + p * pbytes, pbytes, scale ? scale + p * PANEL : NULL,       \
                  c + p * PANEL, ldc, acc);                                                                    \
        for (; p + 2 <= full; p += 2)                                                                          \
            BLOCK(format, 1, 2, K, a, lda, w + p * pbytes, pbytes, scale ? scale + p * PANEL : NULL,          \
                  c + p * PANEL, ldc, acc);                                                                    \
        for (; p < full; p++)                                                                                  \
            BLOCK(format, 1, 1, K, a, lda, w + p * pbytes, pbytes, scale ? scale + p * PANEL : NULL,          \
                  c + p * PANEL, ldc, acc);                                                                    \
        if (tail) {                                                                                            \
            for (int j = 0; j < PANEL; j++) t[j] = j < tail ? c[p * PANEL + j] : 0.0f;                         \
            BLOCK(format, 1, 1, K, a, lda, w + p * pbytes, pbytes, scale ? scale + p * PANEL : NULL, t,       \
                  PANEL, acc);                                                                                 \
            for (int j = 0; j < tail; j++) c[p * PANEL + j] = t[j];                                            \
        }                                                                                                      \
    }

#if defined(__x86_64__) && defined(__clang__)
/* Row k of a panel as two vectors of 8 fp32 (columns 0-7 and 8-15), widened exactly. */
__attribute__((target("avx2,fma"), always_inline))
static inline void avx2_row(int format, const char *row, __m256 *lo, __m256 *hi) {
    if (format == RECUR_WEIGHTS_F32) {
        *lo = _mm256_loadu_ps((const float *)row);
        *hi = _mm256_loadu_ps((const float *)row + 8);
    } else if (format == RECUR_WEIGHTS_BF16) {
        __m256i v = _mm256_loadu_si256((const __m256i *)row);
        *lo = _mm256_castsi256_ps(_mm256_slli_epi32(v, 16));
        *hi = _mm256_castsi256_ps(_mm256_and_si256(v, _mm256_set1_epi32((int)0xFFFF0000u)));
    } else {
        __m128i q = _mm_loadu_si128((const __m128i *)row);
        *lo = _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(q));
        *hi = _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_srli_si128(q, 8)));
    }
}

/* rows × panels of 16 columns: rows · panels · 2 ≤ 12 accumulators (6 × 1 for batches: 12
 * accumulators, 2 weight vectors and a broadcast fit the 16 ymm registers; 1 × 6 for one row). */
__attribute__((target("avx2,fma"), always_inline))
static inline void avx2_block(int format, int rows, int np, int64_t K, const float *A, int64_t lda,
                              const char *W, int64_t pbytes, const float *scale, float *C, int64_t ldc, int acc) {
    const int64_t rb = PANEL * element_size(format);
    __m256 c[6][12];
    for (int r = 0; r < rows; r++)
        for (int v = 0; v < 2 * np; v++)
            c[r][v] = format != RECUR_WEIGHTS_I8 && acc ? _mm256_loadu_ps(C + r * ldc + 8 * v) : _mm256_setzero_ps();
    for (int64_t k = 0; k < K; k++) {
        if (rows == 1) {
            __m256 x = _mm256_broadcast_ss(A + k);
            for (int p = 0; p < np; p++) {
                __m256 lo, hi;
                avx2_row(format, W + p * pbytes + k * rb, &lo, &hi);
                c[0][2 * p] = _mm256_fmadd_ps(x, lo, c[0][2 * p]);
                c[0][2 * p + 1] = _mm256_fmadd_ps(x, hi, c[0][2 * p + 1]);
            }
        } else {
            for (int p = 0; p < np; p++) {
                __m256 lo, hi;
                avx2_row(format, W + p * pbytes + k * rb, &lo, &hi);
                for (int r = 0; r < rows; r++) {
                    __m256 x = _mm256_broadcast_ss(A + r * lda + k);
                    c[r][2 * p] = _mm256_fmadd_ps(x, lo, c[r][2 * p]);
                    c[r][2 * p + 1] = _mm256_fmadd_ps(x, hi, c[r][2 * p + 1]);
                }
            }
        }
    }
    for (int r = 0; r < rows; r++)
        for (int v = 0; v < 2 * np; v++) {
            float *out = C + r * ldc + 8 * v;
            __m256 s = c[r][v];
            if (format == RECUR_WEIGHTS_I8) {
                __m256 sc = _mm256_loadu_ps(scale + 8 * v);
                s = acc ? _mm256_fmadd_ps(sc, s, _mm256_loadu_ps(out)) : _mm256_mul_ps(sc, s);
            }
            _mm256_storeu_ps(out, s);
        }
}

__attribute__((target("avx2,fma"), always_inline))
static inline void packed_avx2(int format, int64_t B, int64_t N, int64_t K, const float *A, int64_t lda,
                               const void *W, const float *scale, float *C, int64_t ldc, int acc) {
    PACKED_DRIVER(avx2_block, 6, 1, 6)
}

__attribute__((target("avx2,fma")))
static void packed_avx2_f32(int64_t B, int64_t N, int64_t K, const float *A, int64_t lda, const void *W,
                            const float *scale, float *C, int64_t ldc, int acc) {
    packed_avx2(RECUR_WEIGHTS_F32, B, N, K, A, lda, W, scale, C, ldc, acc);
}
__attribute__((target("avx2,fma")))
static void packed_avx2_bf16(int64_t B, int64_t N, int64_t K, const float *A, int64_t lda, const void *W,
                             const float *scale, float *C, int64_t ldc, int acc) {
    packed_avx2(RECUR_WEIGHTS_BF16, B, N, K, A, lda, W, scale, C, ldc, acc);
}
__attribute__((target("avx2,fma")))
static void packed_avx2_i8(int64_t B, int64_t N, int64_t K, const float *A, int64_t lda, const void *W,
                           const float *scale, float *C, int64_t ldc, int acc) {
    packed_avx2(RECUR_WEIGHTS_I8, B, N, K, A, lda, W, scale, C, ldc, acc);
}

/* AVX-512F, fp32 only: a panel row is one zmm. Blocks of 4 rows × 4 panels (16 accumulators,
 * 4 weight vectors, a broadcast), leftover rows alone over 8 panels; same order as above. */
__attribute__((target("avx512f"), always_inline))
static inline void avx512_block(int format, int rows, int np, int64_t K, const float *A, int64_t lda,
                                const char *W, int64_t pbytes, const float *scale, float *C, int64_t ldc, int acc) {
    (void)format;
    (void)scale;
    __m512 c[4][8];
    for (int r = 0; r < rows; r++)
        for (int p = 0; p < np; p++)
            c[r][p] = acc ? _mm512_loadu_ps(C + r * ldc + PANEL * p) : _mm512_setzero_ps();
    for (int64_t k = 0; k < K; k++) {
        __m512 wv[8];
        for (int p = 0; p < np; p++) wv[p] = _mm512_loadu_ps((const float *)(W + p * pbytes) + k * PANEL);
        for (int r = 0; r < rows; r++) {
            __m512 x = _mm512_set1_ps(A[r * lda + k]);
            for (int p = 0; p < np; p++) c[r][p] = _mm512_fmadd_ps(x, wv[p], c[r][p]);
        }
    }
    for (int r = 0; r < rows; r++)
        for (int p = 0; p < np; p++) _mm512_storeu_ps(C + r * ldc + PANEL * p, c[r][p]);
}

__attribute__((target("avx512f")))
static void packed_avx512_f32(int64_t B, int64_t N, int64_t K, const float *A, int64_t lda, const void *W,
                              const float *scale, float *C, int64_t ldc, int acc) {
    const int format = RECUR_WEIGHTS_F32;
    PACKED_DRIVER(avx512_block, 4, 4, 8)
}

static int has_avx2_fma(void) { return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"); }
#endif

int recur_packed_gemm_path(int format) {
    static int paths[3] = {-1, -1, -1};
    if (format < 0 || format > 2) return -1;
    if (paths[format] < 0) {
        int path = RECUR_GEMM_SCALAR;
#if defined(__x86_64__) && defined(__clang__)
        if (format == RECUR_WEIGHTS_F32 && __builtin_cpu_supports("avx512f")) path = RECUR_GEMM_AVX512;
        else if (has_avx2_fma()) path = RECUR_GEMM_AVX2;
#endif
        paths[format] = path;
    }
    return paths[format];
}

int recur_packed_row_tile(int format) {
    switch (recur_packed_gemm_path(format)) {
    case RECUR_GEMM_AVX512: return 4;
    case RECUR_GEMM_AVX2: return 6;
    default: return 1;
    }
}

int recur_packed_gemm_on(int path, int format, int64_t B, int64_t N, int64_t K, const float *A, int64_t lda,
                         const void *W, const float *scale, float *C, int64_t ldc, int accumulate) {
    if (format != RECUR_WEIGHTS_F32 && format != RECUR_WEIGHTS_BF16 && format != RECUR_WEIGHTS_I8) return -1;
    if (format == RECUR_WEIGHTS_I8 && !scale) return -1;
    if (B <= 0 || N <= 0) return 0;
    /* Many rows: in chunks of 96 (whole blocks on every path), each through every panel, so that
     * the chunk's rows of A stay in L2 while the panels stream past. */
    if (B > ROW_CHUNK) {
        for (int64_t b0 = 0; b0 < B; b0 += ROW_CHUNK) {
            int64_t rows = B - b0 < ROW_CHUNK ? B - b0 : ROW_CHUNK;
            int status = recur_packed_gemm_on(path, format, rows, N, K, A + b0 * lda, lda, W, scale, C + b0 * ldc, ldc,
                                              accumulate);
            if (status != 0) return status;
        }
        return 0;
    }
    switch (path) {
    case RECUR_GEMM_SCALAR:
        packed_scalar(format, B, N, K, A, lda, W, scale, C, ldc, accumulate);
        return 0;
#if defined(__x86_64__) && defined(__clang__)
    case RECUR_GEMM_AVX2:
        if (!has_avx2_fma()) return -1;
        if (format == RECUR_WEIGHTS_F32) packed_avx2_f32(B, N, K, A, lda, W, scale, C, ldc, accumulate);
        else if (format == RECUR_WEIGHTS_BF16) packed_avx2_bf16(B, N, K, A, lda, W, scale, C, ldc, accumulate);
        else packed_avx2_i8(B, N, K, A, lda, W, scale, C, ldc, accumulate);
        return 0;
    case RECUR_GEMM_AVX512:
        if (format != RECUR_WEIGHTS_F32 || !__builtin_cpu_supports("avx512f")) return -1;
        packed_avx512_f32(B, N, K, A, lda, W, scale, C, ldc, accumulate);
        return 0;
#endif
    default:
        return -1;
    }
}

void recur_packed_gemm(int format, int64_t B, int64_t N, int64_t K, const float *A, int64_t lda,
                       const void *W, const float *scale, float *C, int64_t ldc, int accumulate) {
    recur_packed_gemm_on(recur_packed_gemm_path(format), format, B, N, K, A, lda, W, scale, C, ldc, accumulate);
}

typedef struct {
    int format;
    int64_t B, N, K, lda, K2, lda2, ldc;
    const float *A, *A2, *scale, *scale2;
    const char *W, *W2;
    float *C;
    int acc;
} packed_job;

static void packed_part(void *p, int index, int count) {
    packed_job *j = p;
    /* Whole panels per thread, as even as possible; the per-element order does not depend on
     * the split. */
    int64_t panels = panels_of(j->N), esz = element_size(j->format);
    int64_t p0 = panels * index / count, p1 = panels * (index + 1) / count;
    int64_t n0 = p0 * PANEL, n1 = p1 * PANEL < j->N ? p1 * PANEL : j->N;
    if (n1 <= n0) return;
    recur_packed_gemm(j->format, j->B, n1 - n0, j->K, j->A, j->lda, j->W + p0 * j->K * PANEL * esz,
                      j->scale ? j->scale + n0 : NULL, j->C + n0, j->ldc, j->acc);
    if (j->A2)
        recur_packed_gemm(j->format, j->B, n1 - n0, j->K2, j->A2, j->lda2, j->W2 + p0 * j->K2 * PANEL * esz,
                          j->scale2 ? j->scale2 + n0 : NULL, j->C + n0, j->ldc, 1);
}

void recur_packed_gemm_parallel(recur_pool *pool, int format, int64_t B, int64_t N,
                                int64_t K, const float *A, int64_t lda, const void *W, const float *scale,
                                int64_t K2, const float *A2, int64_t lda2, const void *W2, const float *scale2,
                                float *C, int64_t ldc, int accumulate) {
    packed_job job = {format, B, N, K, lda, K2, lda2, ldc, A, A2, scale, scale2, W, W2, C, accumulate};
    if (!pool) { packed_part(&job, 0, 1); return; }
    recur_pool_run(pool, packed_part, &job);
}
