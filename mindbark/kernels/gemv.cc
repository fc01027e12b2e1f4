// A few rows times a weight matrix (y = x W^T + b, x (M, K) with M small, W (N, K)) for MindSpore's
// `ops.Custom(func_type="aot")`: the decode step's projections, where every weight is read once per step and the
// time is the memory's. MindSpore's CPU MatMul runs these at about half the read bandwidth. The weights may be
// fp32, bf16 (the upper half of fp32's bits) or int8 in blocks of 32 with one fp32 scale each (ggml's q8_0 layout,
// scales first in each row); every product and sum is fp32. Rows of W are split over MindSpore's CPU thread pool
// (`pool.cc`) in blocks claimed one at a time, so a late worker costs no more than one block.
#include <algorithm>
#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#endif

#include <cstdint>
#include <cstring>
#include <functional>
#include <string>
#include <vector>

namespace mindbark {
void ForEachClaimed(int64_t count, const std::function<void(int64_t)> &body);
}

namespace {

constexpr int64_t kQ8Block = 32;  // int8 weights per scale
constexpr int64_t kRowsPerBlock = 32;  // rows of W per claimed block

// One vector of fp32 lanes and the loads that widen each weight format into it. Written with intrinsics: GCC 12
// turned generic vector conversions from int8 into scalar code, four times slower than the memory.
#if defined(__AVX2__) && defined(__FMA__)  // on AVX-512 CPUs too: widening int8 ran slower in 512-bit vectors
constexpr int64_t kLanes = 8;
using Vec = __m256;
inline Vec Zero() { return _mm256_setzero_ps(); }
inline Vec Set(float v) { return _mm256_set1_ps(v); }
inline Vec Load(const float *p) { return _mm256_loadu_ps(p); }
inline Vec Load(const uint16_t *p) {
  const __m256i h = _mm256_cvtepu16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i *>(p)));
  return _mm256_castsi256_ps(_mm256_slli_epi32(h, 16));
}
inline Vec Load(const int8_t *p) {
  return _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i *>(p))));
}
inline Vec Fma(Vec a, Vec b, Vec c) { return _mm256_fmadd_ps(a, b, c); }
inline Vec Mul(Vec a, Vec b) { return _mm256_mul_ps(a, b); }
inline float Sum(Vec v) {
  const __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  const __m128 t = _mm_add_ps(s, _mm_movehl_ps(s, s));
  return _mm_cvtss_f32(_mm_add_ss(t, _mm_shuffle_ps(t, t, 1)));
}
inline void Store(float *p, Vec v) { _mm256_storeu_ps(p, v); }
#else  // one lane: any other CPU
constexpr int64_t kLanes = 1;
using Vec = float;
inline Vec Zero() { return 0.f; }
inline Vec Set(float v) { return v; }
inline Vec Load(const float *p) { return *p; }
inline float Bf16(uint16_t h);
inline Vec Load(const uint16_t *p) { return Bf16(*p); }
inline Vec Load(const int8_t *p) { return float(*p); }
inline Vec Fma(Vec a, Vec b, Vec c) { return a * b + c; }
inline Vec Mul(Vec a, Vec b) { return a * b; }
inline float Sum(Vec v) { return v; }
inline void Store(float *p, Vec v) { *p = v; }
#endif

inline float Bf16(uint16_t h) {
  const uint32_t u = uint32_t(h) << 16;
  float v;
  std::memcpy(&v, &u, sizeof v);
  return v;
}

enum class Format { kF32, kBf16, kQ8 };

// Weight rows in one of the formats: `Dots` gives x . W[n] for R consecutive rows n0.. at once (R independent
// accumulators keep the FMA units busy while the rows stream in).
struct Weights {
  Format format;
  const uint8_t *data;
  int64_t k;

  int64_t RowBytes() const {
    switch (format) {
      case Format::kF32: return k * 4;
      case Format::kBf16: return k * 2;
      default: return k + k / kQ8Block * 4;
    }
  }

  // row r of bf16 or q8 weights as fp32
  void Row(int64_t r, float *out) const {
    const uint8_t *row = data + r * RowBytes();
    if (format == Format::kQ8) {
      const float *scales = reinterpret_cast<const float *>(row);
      const int8_t *q = reinterpret_cast<const int8_t *>(row + k / kQ8Block * 4);
      for (int64_t i = 0; i < k; i += kLanes) Store(out + i, Mul(Load(q + i), Set(scales[i / kQ8Block])));
    } else {
      const uint16_t *w = reinterpret_cast<const uint16_t *>(row);
      int64_t i = 0;
      for (; i + kLanes <= k; i += kLanes) Store(out + i, Load(w + i));
      for (; i < k; ++i) out[i] = Bf16(w[i]);
    }
  }

  // x . W[n], in independent sums (4 vectors of lanes in flight) so that the row streams in at the memory's
  // speed. One row at a time keeps the whole read one sequential stream: rows read side by side (several
  // streams) came in at half the bandwidth.
  float Dot(int64_t n, const float *x) const {
    const uint8_t *row = data + n * RowBytes();
    Vec acc[4] = {Zero(), Zero(), Zero(), Zero()};
    float tail = 0.f;
    if (format == Format::kQ8) {
      const float *scales = reinterpret_cast<const float *>(row);
      const int8_t *q = reinterpret_cast<const int8_t *>(row + k / kQ8Block * 4);
      for (int64_t b = 0; b < k / kQ8Block; ++b) {
        const int64_t i = b * kQ8Block;
        Vec block = Mul(Load(q + i), Load(x + i));
        for (int64_t j = kLanes; j < kQ8Block; j += kLanes) block = Fma(Load(q + i + j), Load(x + i + j), block);
        acc[b % 2] = Fma(block, Set(scales[b]), acc[b % 2]);
      }
    } else if (format == Format::kBf16) {
      const uint16_t *w = reinterpret_cast<const uint16_t *>(row);
      int64_t i = 0;
      for (; i + 4 * kLanes <= k; i += 4 * kLanes) {
        for (int64_t j = 0; j < 4; ++j) acc[j] = Fma(Load(w + i + j * kLanes), Load(x + i + j * kLanes), acc[j]);
      }
      for (; i < k; ++i) tail += Bf16(w[i]) * x[i];
    } else {
      const float *w = reinterpret_cast<const float *>(row);
      int64_t i = 0;
      for (; i + 4 * kLanes <= k; i += 4 * kLanes) {
        for (int64_t j = 0; j < 4; ++j) acc[j] = Fma(Load(w + i + j * kLanes), Load(x + i + j * kLanes), acc[j]);
      }
      for (; i < k; ++i) tail += w[i] * x[i];
    }
    return Sum(acc[0]) + Sum(acc[1]) + Sum(acc[2]) + Sum(acc[3]) + tail;
  }
};

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

bool ParseFormat(const char *dtype, Format *format) {
  const std::string name(dtype);
  if (name == "float32") *format = Format::kF32;
  else if (name == "uint16") *format = Format::kBf16;
  else if (name == "uint8") *format = Format::kQ8;
  else return false;
  return true;
}

// Runs body(lo, hi) over [0, n) in blocks of `block`, on the pool and the calling thread.
template <class Body>
void InBlocks(int64_t n, int64_t block, const Body &body) {
  mindbark::ForEachClaimed((n + block - 1) / block, [&](int64_t b) { body(b * block, std::min(n, (b + 1) * block)); });
}

}  // namespace

// params: x (M, K) fp32, w (N, K) fp32 | (N, K) uint16 bf16 | (N, K + K/32 * 4) uint8 q8, bias (N) fp32, y (M, N)
extern "C" int Gemv(int nparam, void **params, int *ndims, int64_t **shapes, const char **dtypes, void *stream,
                    void *extra) {
  Format format;
  if (!ParseFormat(dtypes[1], &format)) return 1;
  const int64_t k = shapes[0][1];
  if (format == Format::kQ8 && k % kQ8Block) return 1;
  const Weights w{format, static_cast<const uint8_t *>(params[1]), k};
  if (shapes[1][1] * (format == Format::kF32 ? 4 : format == Format::kBf16 ? 2 : 1) != w.RowBytes()) return 1;
  const Product work{w, static_cast<const float *>(params[0]), static_cast<const float *>(params[2]),
                  static_cast<float *>(params[3]), shapes[0][0], shapes[1][0]};
  InBlocks(work.n, kRowsPerBlock, [&work](int64_t lo, int64_t hi) { work.Columns(lo, hi); });
  return 0;
}

// The fp32 weights (N, K) of bf16 or q8 rows, for passes of many rows, which run as fp32 GEMMs.
// params: w (N, K) uint16 | (N, K + K/32 * 4) uint8, x (..., K) fp32 (the rows w will multiply: they give the
// output its K and its type), y (N, K) fp32
extern "C" int Dequantize(int nparam, void **params, int *ndims, int64_t **shapes, const char **dtypes,
                          void *stream, void *extra) {
  Format format;
  if (!ParseFormat(dtypes[0], &format) || format == Format::kF32) return 1;
  const int64_t n = shapes[0][0], k = shapes[1][ndims[1] - 1];
  const Weights w{format, static_cast<const uint8_t *>(params[0]), k};
  float *y = static_cast<float *>(params[2]);
  InBlocks(n, kRowsPerBlock, [&](int64_t lo, int64_t hi) {
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
