// mindbark's CPU kernels for MindSpore's `ops.Custom(func_type="aot")`: exact GELU and LayerNorm in fp32.
// Single-threaded: MindSpore's own threads spin between kernels, and a second pool would fight them for the cores.
#include <cstdint>
#include <vector>

#include "rows.h"

namespace {

int64_t Numel(int ndim, const int64_t *shape) {
  int64_t n = 1;
  for (int i = 0; i < ndim; ++i) n *= shape[i];
  return n;
}

}  // namespace

// params: x (any shape), y (same shape)
extern "C" int Gelu(int nparam, void **params, int *ndims, int64_t **shapes, const char **dtypes, void *stream,
                    void *extra) {
  const float *x = static_cast<const float *>(params[0]);
  float *y = static_cast<float *>(params[1]);
  const int64_t n = Numel(ndims[0], shapes[0]);
#pragma omp simd
  for (int64_t i = 0; i < n; ++i) y[i] = mindbark::Gelu(x[i]);
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
  for (int64_t r = 0; r < rows; ++r) mindbark::LayerNormRow(x + r * c, w, b, y + r * c, c);
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
