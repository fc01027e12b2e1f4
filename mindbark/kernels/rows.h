// Row functions shared by mindbark's kernels (cpu_ops.cc, decode_step.cc, lstm.cc, attention.cc): exact GELU and
// LayerNorm, exp, and the masked softmax of a row of attention scores, in fp32.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>

namespace mindbark {

// erf(x) = x P(x^2) / Q(x^2) on [-4, 4], +-1 to fp32 precision beyond: the rational approximation used by
// Eigen and XLA for float. No branch, so the loop below vectorises (libm's erf does not).
inline float Erf(float x) {
  x = x < -4.f ? -4.f : (x > 4.f ? 4.f : x);
  const float x2 = x * x;
  float p = -2.72614225801306e-10f;
  p = p * x2 + 2.77068142495902e-08f;
  p = p * x2 - 2.10102402082508e-06f;
  p = p * x2 - 5.69250639462346e-05f;
  p = p * x2 - 7.34990630326855e-04f;
  p = p * x2 - 2.95459980854025e-03f;
  p = p * x2 - 1.60960333262415e-02f;
  float q = -1.45660718464996e-05f;
  q = q * x2 - 2.13374055278905e-04f;
  q = q * x2 - 1.68282697438203e-03f;
  q = q * x2 - 7.37332916720468e-03f;
  q = q * x2 - 1.42647390514189e-02f;
  return x * p / q;
}

// exp(x) for x in [-87, 87] to ~1 ulp: Cody-Waite reduction by ln 2 and a degree-6 polynomial (Cephes' expf
// coefficients), then 2^n through the exponent bits. Written so that GCC 12 vectorises loops over it: floor by
// truncation (floorf vectorises only without trapping math), and no clamp (a clamp in the same loop kept it
// scalar): callers clamp in a loop of their own (`Clamp`).
inline float ExpClamped(float x) {
  const float y = x * 1.44269504088896341f + 0.5f;
  const int32_t truncated = static_cast<int32_t>(y);
  const int32_t n = truncated - static_cast<int32_t>(y < static_cast<float>(truncated));  // floor(y)
  const float fn = static_cast<float>(n);
  x = x - fn * 0.693359375f + fn * 2.12194440e-4f;
  float p = 1.9875691500e-4f;
  p = p * x + 1.3981999507e-3f;
  p = p * x + 8.3334519073e-3f;
  p = p * x + 4.1665795894e-2f;
  p = p * x + 1.6666665459e-1f;
  p = p * x + 5.0000001201e-1f;
  p = p * x * x + x + 1.f;
  const int32_t bits = (n + 127) << 23;
  float scale;
  std::memcpy(&scale, &bits, sizeof scale);
  return p * scale;
}

// x limited to [-87, 87], where `ExpClamped` holds
inline float Clamp(float x) { return x < -87.f ? -87.f : (x > 87.f ? 87.f : x); }

inline float Exp(float x) { return ExpClamped(Clamp(x)); }

// The largest of scores x[0, n) that `ok` allows (1; null: all), -inf if none. Here and in `Exponentiate` every
// loop is one GCC 12 vectorises: written with std::max, a null mask tested inside, or a clamp, sum or mask beside
// the exponential, they ran one element at a time, a tenth of a fine pass at bark's shapes.
inline float Largest(const float *x, const float *ok, int64_t n) {
  float top = -INFINITY;
  if (ok) {
#pragma omp simd reduction(max : top)
    for (int64_t j = 0; j < n; ++j) top = ok[j] != 0.f && x[j] > top ? x[j] : top;
  } else {
#pragma omp simd reduction(max : top)
    for (int64_t j = 0; j < n; ++j) top = x[j] > top ? x[j] : top;
  }
  return top;
}

// x[j] <- exp(x[j] - top) where `ok` allows it, else 0; returns their sum
inline float Exponentiate(float *x, const float *ok, int64_t n, float top) {
#pragma omp simd
  for (int64_t j = 0; j < n; ++j) x[j] = Clamp(x[j] - top);  // a masked score may exceed top
#pragma omp simd
  for (int64_t j = 0; j < n; ++j) x[j] = ExpClamped(x[j]);
  float total = 0.f;
  if (ok) {
#pragma omp simd reduction(+ : total)
    for (int64_t j = 0; j < n; ++j) {
      x[j] = ok[j] != 0.f ? x[j] : 0.f;
      total += x[j];
    }
  } else {
#pragma omp simd reduction(+ : total)
    for (int64_t j = 0; j < n; ++j) total += x[j];
  }
  return total;
}

inline float Gelu(float x) { return 0.5f * x * (1.f + Erf(x * 0.7071067811865476f)); }

// y = LayerNorm(x) over c values with weight w and bias b, eps 1e-5 as torch's default
inline void LayerNormRow(const float *xr, const float *w, const float *b, float *yr, int64_t c) {
  float sum = 0.f;
#pragma omp simd reduction(+ : sum)
  for (int64_t i = 0; i < c; ++i) sum += xr[i];
  const float mean = sum / c;
  float var = 0.f;  // two passes: E[x^2] - E[x]^2 cancels badly for rows far from zero
#pragma omp simd reduction(+ : var)
  for (int64_t i = 0; i < c; ++i) var += (xr[i] - mean) * (xr[i] - mean);
  const float inv = 1.f / std::sqrt(var / c + 1e-5f);
#pragma omp simd
  for (int64_t i = 0; i < c; ++i) yr[i] = (xr[i] - mean) * inv * w[i] + b[i];
}

}  // namespace mindbark
