// A few rows times a weight matrix (y = x W^T + b, x (M, K) with M small, W (N, K)) for MindSpore's
// `ops.Custom(func_type="aot")`: the decode step's projections, where every weight is read once per step and the
// time is the memory's: each weight row streams in once, one after another. The weights may be
// fp32, bf16 (the upper half of fp32's bits) or int8 in blocks of 32 with one fp32 scale each (ggml's q8_0 layout,
// scales first in each row); every product and sum is fp32. Rows of W are split over MindSpore's CPU thread pool
// (`pool.cc`) in pieces claimed one at a time, so a late worker costs no more than one piece.
#include <algorithm>
#include <cstdint>
#include <vector>

#include "vector.h"

using mindbark::Format;

// params: x (M, K) fp32, w (N, K) fp32 | (N, K) uint16 bf16 | (N, K + K/32 * 4) uint8 q8, bias (N) fp32, y (M, N)
extern "C" int Gemv(int nparam, void **params, int *ndims, int64_t **shapes, const char **dtypes, void *stream,
                    void *extra) {
  const int64_t k = shapes[0][1];
  mindbark::Weights w;
  if (!mindbark::ReadWeights(1, k, params, shapes, dtypes, &w)) return 1;
  const float *x = static_cast<const float *>(params[0]), *bias = static_cast<const float *>(params[2]);
  float *y = static_cast<float *>(params[3]);
  const int64_t m = shapes[0][0], n = shapes[1][0];
  mindbark::RunPhases({mindbark::ProductPhase(w, n, m, x, k, [=](int64_t b, int64_t j, float v) {
    y[b * n + j] = v + bias[j];
  })});
  return 0;
}

// The fp32 weights (N, K) of bf16 or q8 rows, for passes of many rows, which run as fp32 GEMMs.
// params: w (N, K) uint16 | (N, K + K/32 * 4) uint8, x (..., K) fp32 (the rows w will multiply: they give the
// output its K and its type), y (N, K) fp32
extern "C" int Dequantize(int nparam, void **params, int *ndims, int64_t **shapes, const char **dtypes,
                          void *stream, void *extra) {
  Format format;
  if (!mindbark::ParseFormat(dtypes[0], &format) || format == Format::kF32) return 1;
  const int64_t n = shapes[0][0], k = shapes[1][ndims[1] - 1];
  const mindbark::Weights w{format, static_cast<const uint8_t *>(params[0]), k};
  float *y = static_cast<float *>(params[2]);
  const int64_t rows = w.RowsPerPiece();
  mindbark::RunPhases({{(n + rows - 1) / rows, [=](int64_t piece) {
    const int64_t end = std::min(n, (piece + 1) * rows);
    for (int64_t r = piece * rows; r < end; ++r) w.Row(r, y + r * k);
  }}});
  return 0;
}

enum TypeId : int {};

extern "C" std::vector<int64_t> GemvInferShape(int *ndims, int64_t **shapes, void *extra) {
  return {shapes[0][0], shapes[1][0]};
}

extern "C" TypeId GemvInferType(std::vector<TypeId> types, void *extra) { return types[0]; }

extern "C" std::vector<int64_t> DequantizeInferShape(int *ndims, int64_t **shapes, void *extra) {
  return {shapes[0][0], shapes[1][ndims[1] - 1]};
}

extern "C" TypeId DequantizeInferType(std::vector<TypeId> types, void *extra) { return types[1]; }
