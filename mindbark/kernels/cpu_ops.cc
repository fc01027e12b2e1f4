// mindbark's CPU kernels for MindSpore's `ops.Custom(func_type="aot")`: exact GELU and LayerNorm in fp32.
// Single-threaded: MindSpore's own threads spin between kernels, and a second pool would fight them for the cores.
#include <cmath>
#include <cstdint>
#include <vector>

namespace {

int64_t Numel(int ndim, const int64_t *shape) {
  int64_t n = 1;
  for (int i = 0; i < ndim; ++i) n *= shape[i];
  return n;
}

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

}  // namespace

// params: x (any shape), y (same shape)
extern "C" int Gelu(int nparam, void **params, int *ndims, int64_t **shapes, const char **dtypes, void *stream,
                    void *extra) {
  const float *x = static_cast<const float *>(params[0]);
  float *y = static_cast<float *>(params[1]);
  const int64_t n = Numel(ndims[0], shapes[0]);
#pragma omp simd
  for (int64_t i = 0; i < n; ++i) y[i] = 0.5f * x[i] * (1.f + Erf(x[i] * 0.7071067811865476f));
  return 0;
}

// params: x (..., C), weight (C), bias (C), y (..., C); over the last axis with eps 1e-5, as torch's default
extern "C" int LayerNorm(int nparam, void **params, int *ndims, int64_t **shapes, const char **dtypes, void *stream,
                         void *extra) {
  const float *x = static_cast<const float *>(params[0]);
  const float *w = static_cast<const float *>(params[1]);
  const float *b = static_cast<const float *>(params[2]);
  float *y = static_cast<float *>(params[3]);
  const int64_t c = shapes[0][ndims[0] - 1];
  const int64_t rows = Numel(ndims[0], shapes[0]) / c;
  for (int64_t r = 0; r < rows; ++r) {
    const float *xr = x + r * c;
    float *yr = y + r * c;
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
  return 0;
}

// Shape and type inference in C++ (MindSpore's documented `<name>InferShape` / `<name>InferType`): graphs with
// dynamic-shape inputs and graphs loaded from MindIR cannot call Python ones. Both kernels give their first
// input's shape and type. `extra` is MindSpore's AotExtra, unused.
enum TypeId : int {};

extern "C" std::vector<int64_t> GeluInferShape(int *ndims, int64_t **shapes, void *extra) {
  return std::vector<int64_t>(shapes[0], shapes[0] + ndims[0]);
}

extern "C" TypeId GeluInferType(std::vector<TypeId> types, void *extra) { return types[0]; }

extern "C" std::vector<int64_t> LayerNormInferShape(int *ndims, int64_t **shapes, void *extra) {
  return std::vector<int64_t>(shapes[0], shapes[0] + ndims[0]);
}

extern "C" TypeId LayerNormInferType(std::vector<TypeId> types, void *extra) { return types[0]; }
