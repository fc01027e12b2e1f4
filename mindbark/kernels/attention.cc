// A decode step's attention for MindSpore's `ops.Custom(func_type="aot")`, fp32: one new query per sequence over
// the cached keys and values before it and its own. Done with MindSpore's ops, a step read every one of the
// cache's block_size slots (masked ones too), copied and tiled score rows between a dozen kernels per layer, and
// split and merged heads; this reads the allowed positions up to the last one, and nothing else, in one kernel.
// (sequence, head) pairs are claimed one at a time on MindSpore's CPU thread pool (`pool.cc`).
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <functional>
#include <vector>

namespace mindbark {
void ForEachClaimed(int64_t count, const std::function<void(int64_t)> &body);
}

namespace {

struct Step {
  const float *qkv, *k_past, *v_past, *allowed;
  float *y;
  int64_t heads, slots, size;  // size: a head's width

  // sequence b, head h: softmax(q . k / sqrt(size)) over the allowed past slots and the own key, times the values
  void Head(int64_t b, int64_t h) const {
    thread_local std::vector<float> scores;
    const int64_t width = heads * size;
    const float *q = qkv + b * 3 * width + h * size;
    const float *k_own = q + width, *v_own = q + 2 * width;
    const float *ks = k_past + (b * heads + h) * slots * size, *vs = v_past + (b * heads + h) * slots * size;
    const float *ok = allowed + b * (slots + 1);  // the past slots, then the own key
    float *out = y + b * width + h * size;
    const float scale = 1.f / std::sqrt(float(size));
    int64_t end = slots;
    while (end > 0 && ok[end - 1] == 0.f) --end;  // the slots past the last allowed one are never read
    scores.resize(end + 1);
    float top = -INFINITY;
    for (int64_t p = 0; p <= end; ++p) {
      if (p < end && ok[p] == 0.f) continue;
      if (p == end && ok[slots] == 0.f) continue;
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
      if ((p < end && ok[p] == 0.f) || (p == end && ok[slots] == 0.f)) continue;
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

// params: qkv (B, 1, 3C) (queries, keys, values of the new positions, heads side by side), k_past and v_past
// (B, nh, S, hs), allowed (B, S + 1) (1 where the query may look: the past slots, then its own key), y (B, 1, C)
extern "C" int DecodeAttention(int nparam, void **params, int *ndims, int64_t **shapes, const char **dtypes,
                               void *stream, void *extra) {
  const int64_t batch = shapes[1][0], heads = shapes[1][1], slots = shapes[1][2], size = shapes[1][3];
  if (shapes[0][2] != 3 * heads * size || shapes[3][1] != slots + 1) return 1;
  const Step step{static_cast<const float *>(params[0]), static_cast<const float *>(params[1]),
                  static_cast<const float *>(params[2]), static_cast<const float *>(params[3]),
                  static_cast<float *>(params[4]), heads, slots, size};
  mindbark::ForEachClaimed(batch * heads, [&step, heads](int64_t i) { step.Head(i / heads, i % heads); });
  return 0;
}

enum TypeId : int {};

extern "C" std::vector<int64_t> DecodeAttentionInferShape(int *ndims, int64_t **shapes, void *extra) {
  return {shapes[0][0], 1, shapes[0][2] / 3};
}

extern "C" TypeId DecodeAttentionInferType(std::vector<TypeId> types, void *extra) { return types[0]; }
