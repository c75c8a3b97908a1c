#ifndef RECUR_FAST_MATH_H
#define RECUR_FAST_MATH_H
#include <stdint.h>

/* The cells' transcendental functions, in single precision, without libm calls or errno and
 * without branches, so that the compiler vectorises the loops that call them (the kernels in
 * kernels.c are compiled for AVX-512, AVX2+FMA and portable C and picked at load time).
 *
 * Error bounds, relative to the exact value, checked over dense sweeps by FastMathTests (which
 * calls recur_vexp, recur_vsigmoid and recur_vtanh, the vector forms of these, against double
 * precision libm, on the dispatch path the machine picks):
 *
 *   expf_fast(x)      |rel| <= 2e-7 for x in [-87.3, 88.3] (about 1.7 ulp; measured: about 8e-8).
 *                     Outside, x is clamped: exp(88.376...) at most, exp(-87.336...) at least.
 *   sigmoidf_fast(x)  |rel| <= 3e-7 for x in [-80, 80] (measured: about 1.5e-7); beyond, its absolute
 *                     error is below 1e-30 (it saturates to 0 or 1 as the exact value does).
 *   tanhf_fast(x)     |rel| <= 3e-7 for every x (measured: about 1.4e-7, near the switch at |x| = 0.625).
 *
 * Accuracy of a few ulp is all the cells need: training and PyTorch agree to ~1e-5 and the
 * finite-difference checks use double-precision steps elsewhere. */

/* Cephes' expf: x = n·ln 2 + r with |r| <= ln 2 / 2 (ln 2 split in two parts, so that r is exact),
 * exp(r) by a degree-5 polynomial in r, then 2^n by building the float's exponent bits. */
static inline __attribute__((always_inline)) float expf_fast(float x) {
    x = x > 88.3762626647949f ? 88.3762626647949f : x;
    x = x < -87.3365447504f ? -87.3365447504f : x;
    /* n = round(x / ln 2), by the 1.5·2^23 trick (vectorises, unlike floorf under target_clones). */
    float z = (1.44269504088896341f * x + 12582912.0f) - 12582912.0f;
    float r = x - z * 0.693359375f;
    r = r - z * -2.12194440e-4f;
    float r2 = r * r;
    float p = 1.9875691500E-4f;
    p = p * r + 1.3981999507E-3f;
    p = p * r + 8.3334519073E-3f;
    p = p * r + 4.1665795894E-2f;
    p = p * r + 1.6666665459E-1f;
    p = p * r + 5.0000001201E-1f;
    p = p * r2 + r + 1.0f;
    union { int32_t i; float f; } scale = { .i = ((int32_t)z + 127) << 23 };
    return p * scale.f;
}

/* σ(x) = 1 / (1 + e^{-x}). */
static inline __attribute__((always_inline)) float sigmoidf_fast(float x) { return 1.0f / (1.0f + expf_fast(-x)); }

/* Cephes' tanhf: an odd polynomial x + x³·P(x²) for |x| < 0.625, where 1 - 2/(e^{2x} + 1) would
 * lose relative accuracy, and that formula beyond (it saturates to ±1 on its own). */
static inline __attribute__((always_inline)) float tanhf_fast(float x) {
    float ax = __builtin_fabsf(x);
    float z = x * x;
    float small = ((((-5.70498872745E-3f * z + 2.06390887954E-2f) * z - 5.37397155531E-2f) * z
                    + 1.33314422036E-1f) * z - 3.33332819422E-1f) * z * x + x;
    float e = expf_fast(2.0f * ax);
    float big = 1.0f - 2.0f / (e + 1.0f);
    big = x < 0 ? -big : big;
    return ax < 0.625f ? small : big;
}

#endif
