// The codec's causal convolutions, second half, for MindSpore's `ops.Custom(func_type="aot")`, fp32: summing the
// taps. One GEMM gives every tap's output at every row of the chunk (z) and of the context carried from the chunk
// before (zc); output row t is tap j's output at row t + j * dilation of [zc; z], summed over the taps, plus the
// bias. Done with MindSpore ops, the context was concatenated to the chunk and each tap's input window copied out
// (StridedSlice copies on CPU), then the taps added and the bias in passes of their own: at EnCodec's last stages
// several copies and passes of the chunk's whole width per convolution. The rows are split in two halves, run
// on MindSpore's CPU thread pool (`pool.cc`).
#include <atomic>
#include <cstdint>
#include <functional>
#include <vector>

namespace mindbark {
bool LaunchOnPool(const std::function<int(void *, int, float, float)> &task, int count);
}

namespace {

constexpr int kParts = 2;

struct Taps {
  const float *z, *zc, *bias;
  float *y;
  int64_t rows, width, pad, c, taps, dilation;

  // output rows [lo, hi) of the flattened (B * T) rows
  void Rows(int64_t lo, int64_t hi) const {
    for (int64_t i = lo; i < hi; ++i) {
      const int64_t b = i / rows, t = i % rows;
      float *out = y + i * c;
      // taps in order, then the bias: the order the per-tap matmuls were summed in before
      for (int64_t j = 0; j < taps; ++j) {
        const int64_t r = t + j * dilation;  // row of [zc; z]
        const float *in = (r < pad ? zc + (b * pad + r) * width : z + (b * rows + r - pad) * width) + j * c;
        if (j == 0) {
#pragma omp simd
          for (int64_t o = 0; o < c; ++o) out[o] = in[o];
        } else {
#pragma omp simd
          for (int64_t o = 0; o < c; ++o) out[o] += in[o];
        }
      }
#pragma omp simd
      for (int64_t o = 0; o < c; ++o) out[o] += bias[o];
    }
  }
};

}  // namespace

// params: z (B, T, k C), zc (B, P, k C) with P = (k - 1) dilation, bias (C), y (B, T, C)
extern "C" int CausalTaps(int nparam, void **params, int *ndims, int64_t **shapes, const char **dtypes, void *stream,
                          void *extra) {
  const float *z = static_cast<const float *>(params[0]);
  const float *zc = static_cast<const float *>(params[1]);
  const float *bias = static_cast<const float *>(params[2]);
  float *y = static_cast<float *>(params[3]);
  const int64_t batch = shapes[0][0], rows = shapes[0][1], width = shapes[0][2], pad = shapes[1][1];
  const int64_t c = shapes[2][0], taps = width / c;
  const Taps work{z, zc, bias, y, rows, width, pad, c, taps, taps > 1 ? pad / (taps - 1) : 0};
  const int64_t total = batch * rows;
  std::atomic<bool> claimed[kParts] = {};
  const auto part = [&](int p) {
    if (!claimed[p].exchange(true)) work.Rows(total * p / kParts, total * (p + 1) / kParts);
  };
  mindbark::LaunchOnPool([&part](void *, int p, float, float) { part(p); return 0; }, kParts);
  for (int p = 0; p < kParts; ++p) part(p);  // what the pool did not run, or all of it without one
  return 0;
}

enum TypeId : int {};

extern "C" std::vector<int64_t> CausalTapsInferShape(int *ndims, int64_t **shapes, void *extra) {
  return {shapes[0][0], shapes[0][1], shapes[2][0]};
}

extern "C" TypeId CausalTapsInferType(std::vector<TypeId> types, void *extra) { return types[0]; }
