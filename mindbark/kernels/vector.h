// Shared by mindbark's projection kernels (gemv.cc, decode_step.cc): vectors of fp32 lanes, and weight rows in fp32,
// bf16 (the upper half of fp32's bits) or int8 in blocks of 32 with one fp32 scale each (ggml's q8_0 layout,
// scales first in each row), read as fp32.
#pragma once

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#endif

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <functional>
#include <string>
#include <vector>

namespace mindbark {

// pieces [0, count) of one step of work (`RunPhases`)
struct Phase {
  int64_t count;
  std::function<void(int64_t)> body;
};

void RunPhases(const std::vector<Phase> &phases);

constexpr int64_t kQ8Block = 32;  // int8 weights per scale

// Bytes of weight rows per claimed piece of a product. Each claim costs two atomic updates of counters that every
// thread writes; pieces of 32 rows (27 KB of bark-small's int8 rows) made int8 decode steps a fifth slower.
constexpr int64_t kPieceBytes = 128 << 10;

inline float Bf16(uint16_t h) {
  const uint32_t u = uint32_t(h) << 16;
  float v;
  std::memcpy(&v, &u, sizeof v);
  return v;
}

// One vector of fp32 lanes and the loads that widen each weight format into it. Written with intrinsics: GCC 12
// turned generic vector conversions from int8 into scalar code.
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
inline Vec Load(const uint16_t *p) { return Bf16(*p); }
inline Vec Load(const int8_t *p) { return float(*p); }
inline Vec Fma(Vec a, Vec b, Vec c) { return a * b + c; }
inline Vec Mul(Vec a, Vec b) { return a * b; }
inline float Sum(Vec v) { return v; }
inline void Store(float *p, Vec v) { *p = v; }
#endif

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

  // rows per claimed piece of work over these weights (`kPieceBytes`)
  int64_t RowsPerPiece() const { return std::max<int64_t>(1, kPieceBytes / RowBytes()); }

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

inline bool ParseFormat(const char *dtype, Format *format) {
  const std::string name(dtype);
  if (name == "float32") *format = Format::kF32;
  else if (name == "uint16") *format = Format::kBf16;
  else if (name == "uint8") *format = Format::kQ8;
  else return false;
  return true;
}

inline int64_t ElementBytes(Format format) {
  return format == Format::kF32 ? 4 : format == Format::kBf16 ? 2 : 1;
}

// a kernel's weights at params[i], rows of `width` values, in the format its dtype names; false if unreadable
inline bool ReadWeights(int i, int64_t width, void **params, int64_t **shapes, const char **dtypes, Weights *w) {
  Format format;
  if (!ParseFormat(dtypes[i], &format)) return false;
  if (format == Format::kQ8 && width % kQ8Block) return false;
  *w = Weights{format, static_cast<const uint8_t *>(params[i]), width};
  return shapes[i][1] * ElementBytes(format) == w->RowBytes();
}

// A phase of a product over rows [0, n) of w for each of the batch's rows x_b: f(b, j, x_b . w[j]) for each j. Each
// weight row is read from memory once; the other rows of x read it again from cache.
template <class F>
Phase ProductPhase(const Weights &w, int64_t n, int64_t batch, const float *x, int64_t x_stride, const F &f) {
  const int64_t rows = w.RowsPerPiece();
  return {(n + rows - 1) / rows, [=](int64_t piece) {
            for (int64_t j = piece * rows; j < std::min(n, (piece + 1) * rows); ++j) {
              for (int64_t b = 0; b < batch; ++b) f(b, j, w.Dot(j, x + b * x_stride));
            }
          }};
}

}  // namespace mindbark
