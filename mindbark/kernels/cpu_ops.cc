// mindbark's CPU kernels for MindSpore's `ops.Custom(func_type="aot")`: exact GELU and LayerNorm in fp32, their
// elements or rows split over MindSpore's thread pool (`pool.cc`) in pieces; a single piece (a decode step's row)
// runs on the calling thread alone.
#include <algorithm>
#include <cstdint>
#include <vector>

#include "rows.h"
#include "vector.h"

namespace {

constexpr int64_t kGeluPiece = 16384;  // elements per piece
constexpr int64_t kNormPiece = 64 * 1024;  // elements per piece, in whole rows

int64_t Numel(int ndim, const int64_t *shape) {
  int64_t n = 1;
  for (int i = 0; i < ndim; ++i) n *= shape[i];
  return n;
}

// pieces [0, count): in one phase on the pool, or here where there is only one
void Split(int64_t count, const std::function<void(int64_t)> &body) {
  if (count == 1) {
    body(0);
  } else {
    mindbark::RunPhases({{count, body}});
  }
}

}  // namespace

// params: x (any shape), y (same shape)
extern "C" int Gelu(int nparam, void **params, int *ndims, int64_t **shapes, const char **dtypes, void *stream,
                    void *extra) {
  const float *x = static_cast<const float *>(params[0]);
  float *y = static_cast<float *>(params[1]);
  const int64_t n = Numel(ndims[0], shapes[0]);
  Split((n + kGeluPiece - 1) / kGeluPiece, [=](int64_t piece) {
    const int64_t end = std::min(n, (piece + 1) * kGeluPiece);
#pragma omp simd
    for (int64_t i = piece * kGeluPiece; i < end; ++i) y[i] = mindbark::Gelu(x[i]);
  });
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
  const int64_t rows = Numel(ndims[0], shapes[0]) / c, per_piece = std::max<int64_t>(1, kNormPiece / c);
  Split((rows + per_piece - 1) / per_piece, [=](int64_t piece) {
    for (int64_t r = piece * per_piece; r < std::min(rows, (piece + 1) * per_piece); ++r) {
      mindbark::LayerNormRow(x + r * c, w, b, y + r * c, c);
    }
  });
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
