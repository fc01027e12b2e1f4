// A few rows times a weight matrix (y = x W^T + b, x (M, K) with M small, W (N, K)) for MindSpore's
// `ops.Custom(func_type="aot")`: the decode step's projections, where every weight is read once per step and the
// time is the memory's: each weight row streams in once, one after another. The weights may be
// fp32, bf16 (the upper half of fp32's bits) or int8 in blocks of 32 with one fp32 scale each (ggml's q8_0 layout,
// scales first in each row); every product and sum is fp32. Rows of W are split over MindSpore's CPU thread pool
// (`pool.cc`) in blocks claimed one at a time, so a late worker costs no more than one block.
#include <algorithm>
#include <cstdint>
#include <vector>

#include "vector.h"

namespace mindbark {
namespace {

constexpr int64_t kRowsPerBlock = 32;  // rows of W per claimed block

struct Product {
  Weights w;
  const float *x, *bias;
  float *y;
  int64_t m, n;

  // output columns [lo, hi), for every row of x: each weight row is read from memory once, the other rows of x
  // read it again from cache
  void Columns(int64_t lo, int64_t hi) const {
    for (int64_t c = lo; c < hi; ++c) {
      for (int64_t i = 0; i < m; ++i) y[i * n + c] = w.Dot(c, x + i * w.k) + bias[c];
    }
  }
};

// Runs body(lo, hi) over [0, n) in blocks of `block`, on the pool and the calling thread.
template <class Body>
void InBlocks(int64_t n, int64_t block, const Body &body) {
  ForEachClaimed((n + block - 1) / block, [&](int64_t b) { body(b * block, std::min(n, (b + 1) * block)); });
}

}  // namespace
}  // namespace mindbark

using mindbark::Format;

// params: x (M, K) fp32, w (N, K) fp32 | (N, K) uint16 bf16 | (N, K + K/32 * 4) uint8 q8, bias (N) fp32, y (M, N)
extern "C" int Gemv(int nparam, void **params, int *ndims, int64_t **shapes, const char **dtypes, void *stream,
                    void *extra) {
  Format format;
  if (!mindbark::ParseFormat(dtypes[1], &format)) return 1;
  const int64_t k = shapes[0][1];
  if (format == Format::kQ8 && k % mindbark::kQ8Block) return 1;
  const mindbark::Weights w{format, static_cast<const uint8_t *>(params[1]), k};
  if (shapes[1][1] * (format == Format::kF32 ? 4 : format == Format::kBf16 ? 2 : 1) != w.RowBytes()) return 1;
  const mindbark::Product work{w, static_cast<const float *>(params[0]), static_cast<const float *>(params[2]),
                  static_cast<float *>(params[3]), shapes[0][0], shapes[1][0]};
  mindbark::InBlocks(work.n, mindbark::kRowsPerBlock, [&work](int64_t lo, int64_t hi) { work.Columns(lo, hi); });
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
  mindbark::InBlocks(n, mindbark::kRowsPerBlock, [&](int64_t lo, int64_t hi) {
    for (int64_t r = lo; r < hi; ++r) w.Row(r, y + r * k);
  });
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
