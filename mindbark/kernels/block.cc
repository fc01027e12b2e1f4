// One transformer block of a decode step (one new position per sequence) for MindSpore's
// `ops.Custom(func_type="aot")`, fp32 arithmetic over fp32, bf16 or int8 projection weights (`vector.h`):
//   h = LN1(x); qkv = h Wa^T + ba; a = attention(q; cached keys and values, k, v)
//   x1 = x + (a Wp^T + bp); y = x1 + (GELU(LN2(x1) Wf^T + bf) Wo^T + bo)
// in the order and with the arithmetic of the layers it replaces (Gemv, LayerNorm, GELU, then the residual add),
// so that its output equals theirs. As separate ops, a step launched a dozen kernels per layer, each product
// waking MindSpore's pool, and attention read all of the cache's block_size slots (masked ones too), copying and
// tiling score rows; here one launch runs the block's phases on the pool (`RunPhases`), and attention reads the
// allowed positions up to the last one, nothing else.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

#include "rows.h"
#include "vector.h"

namespace mindbark {
namespace {

// Softmax attention of one query over the allowed cached positions and its own key.
struct Attention {
  const float *k_past, *v_past, *allowed;  // (B, nh, S, hs) each; (B, S + 1): the past slots, then the own key
  int64_t heads, slots, size;  // size: a head's width

  // sequence b, head h: q, k_own, v_own point at the head's slices of the new position's projections
  void Head(int64_t b, int64_t h, const float *q, const float *k_own, const float *v_own, float *out) const {
    thread_local std::vector<float> scores;
    const float *ks = k_past + (b * heads + h) * slots * size, *vs = v_past + (b * heads + h) * slots * size;
    const float *ok = allowed + b * (slots + 1);
    const float scale = 1.f / std::sqrt(float(size));
    int64_t end = slots;
    while (end > 0 && ok[end - 1] == 0.f) --end;  // the slots past the last allowed one are never read
    const auto used = [&](int64_t p) { return p < end ? ok[p] != 0.f : ok[slots] != 0.f; };  // p == end: own key
    scores.resize(end + 1);
    float top = -INFINITY;
    for (int64_t p = 0; p <= end; ++p) {
      if (!used(p)) continue;
      const float *key = p < end ? ks + p * size : k_own;
      float s = 0.f;
#pragma omp simd reduction(+ : s)
      for (int64_t i = 0; i < size; ++i) s += q[i] * scale * key[i];
      scores[p] = s;
      top = std::max(top, s);
    }
    std::fill(out, out + size, 0.f);
    if (top == -INFINITY) return;  // nothing allowed: a padding row, whose output nothing reads
    float total = 0.f;
    for (int64_t p = 0; p <= end; ++p) {
      if (!used(p)) continue;
      const float e = std::exp(scores[p] - top);
      total += e;
      const float *value = p < end ? vs + p * size : v_own;
#pragma omp simd
      for (int64_t i = 0; i < size; ++i) out[i] += e * value[i];
    }
    const float inv = 1.f / total;
#pragma omp simd
    for (int64_t i = 0; i < size; ++i) out[i] *= inv;
  }
};

}  // namespace
}  // namespace mindbark

using mindbark::Format;
using mindbark::Weights;

// params: 0 x (B, 1, C); 1, 2 LN1 weight, bias (C); 3 Wa (3C, C), 4 ba (3C); 5 k_past, 6 v_past (B, nh, S, hs);
// 7 allowed (B, S + 1) (1 where the query may look: the past slots, then its own key); 8 Wp (C, C), 9 bp (C);
// 10, 11 LN2 weight, bias (C); 12 Wf (F, C), 13 bf (F); 14 Wo (C, F), 15 bo (C); 16 y (B, 1, 4C): the block's
// output, then the new position's qkv (the cache's new keys and values). Weights in one format each (`vector.h`).
extern "C" int DecodeBlock(int nparam, void **params, int *ndims, int64_t **shapes, const char **dtypes,
                           void *stream, void *extra) {
  using mindbark::Phase;
  const auto in = [&](int i) { return static_cast<const float *>(params[i]); };
  const int64_t batch = shapes[0][0], c = shapes[0][2], f = shapes[13][0];
  const int64_t heads = shapes[5][1], slots = shapes[5][2], size = shapes[5][3];
  if (heads * size != c || shapes[7][1] != slots + 1) return 1;
  Weights w[4];
  const int index[4] = {3, 8, 12, 14};
  const int64_t widths[4] = {c, c, c, f};
  for (int i = 0; i < 4; ++i) {
    Format format;
    if (!mindbark::ParseFormat(dtypes[index[i]], &format)) return 1;
    if (format == Format::kQ8 && widths[i] % mindbark::kQ8Block) return 1;
    w[i] = Weights{format, static_cast<const uint8_t *>(params[index[i]]), widths[i]};
    if (shapes[index[i]][1] * mindbark::ElementBytes(format) != w[i].RowBytes()) return 1;
  }
  const float *x = in(0), *ba = in(4), *bp = in(9), *bf = in(13), *bo = in(15);
  float *y = static_cast<float *>(params[16]);
  const float *qkv = y + c;  // row b at y + b * 4C + C
  std::vector<float> h(batch * c), attended(batch * c), x1(batch * c), h2(batch * c), hidden(batch * f);
  const mindbark::Attention attention{in(5), in(6), in(7), heads, slots, size};
  mindbark::RunPhases({
      {batch, [&](int64_t b) { mindbark::LayerNormRow(x + b * c, in(1), in(2), h.data() + b * c, c); }},
      mindbark::ProductPhase(w[0], 3 * c, batch, h.data(), c,
                        [=](int64_t b, int64_t j, float v) { y[b * 4 * c + c + j] = v + ba[j]; }),
      {batch * heads, [&](int64_t i) {
         const int64_t b = i / heads, hd = i % heads;
         const float *q = qkv + b * 4 * c + hd * size;
         attention.Head(b, hd, q, q + c, q + 2 * c, attended.data() + b * c + hd * size);
       }},
      mindbark::ProductPhase(w[1], c, batch, attended.data(), c,
                        [&](int64_t b, int64_t j, float v) { x1[b * c + j] = x[b * c + j] + (v + bp[j]); }),
      {batch, [&](int64_t b) { mindbark::LayerNormRow(x1.data() + b * c, in(10), in(11), h2.data() + b * c, c); }},
      mindbark::ProductPhase(w[2], f, batch, h2.data(), c,
                        [&](int64_t b, int64_t j, float v) { hidden[b * f + j] = mindbark::Gelu(v + bf[j]); }),
      mindbark::ProductPhase(w[3], c, batch, hidden.data(), f,
                        [&](int64_t b, int64_t j, float v) { y[b * 4 * c + j] = x1[b * c + j] + (v + bo[j]); }),
  });
  return 0;
}

enum TypeId : int {};

extern "C" std::vector<int64_t> DecodeBlockInferShape(int *ndims, int64_t **shapes, void *extra) {
  return {shapes[0][0], 1, 4 * shapes[0][2]};
}

extern "C" TypeId DecodeBlockInferType(std::vector<TypeId> types, void *extra) { return types[0]; }
