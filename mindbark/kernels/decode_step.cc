// A whole decode step of a causal GPT (one new position per sequence: its embeddings, every block, the final
// LayerNorm and the LM head) for MindSpore's `ops.Custom(func_type="aot")`, fp32 arithmetic over fp32, bf16 or
// int8 projection and head weights (`vector.h`). Each block:
//   h = LN1(x); qkv = h Wa^T + ba; a = attention(q; cached keys and values, k, v)
//   x1 = x + (a Wp^T + bp); y = x1 + (GELU(LN2(x1) Wf^T + bf) Wo^T + bo)
// in the order and with the arithmetic of the layers it replaces (Gemv, LayerNorm, GELU, then the residual add),
// so that its output equals theirs; then logits = LN_f(y) H^T. As separate ops, a step launched a dozen kernels per
// block, each product waking MindSpore's pool, and attention read all of the cache's block_size slots (masked ones
// too), copying and tiling score rows; a kernel per block still left a gap between one block's end and the next
// one's start, and the embedding gathers and mask ops before the first block cost as much again. Here one launch
// runs every phase of the step on the pool (`RunPhases`), and attention reads the keys up to the last allowed
// position and the values of the allowed ones, nothing else.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <vector>

#include "rows.h"
#include "vector.h"

namespace mindbark {
namespace {

// scores[p] = query . keys[p] for R consecutive keys (rows of `size`), each in a chain of FMAs of its own, so that
// the keys' additions overlap instead of each key waiting on its own (a key is only 8 vectors at Bark's widths)
template <int R>
void ScoreKeys(const float *query, const float *keys, int64_t size, float *scores) {
  const int64_t whole = size - size % kLanes;
  Vec acc[R];
  for (int r = 0; r < R; ++r) acc[r] = Zero();
  for (int64_t i = 0; i < whole; i += kLanes) {
    const Vec x = Load(query + i);
    for (int r = 0; r < R; ++r) acc[r] = Fma(Load(keys + r * size + i), x, acc[r]);
  }
  for (int r = 0; r < R; ++r) {
    float s = Sum(acc[r]);
    for (int64_t i = whole; i < size; ++i) s += query[i] * keys[r * size + i];
    scores[r] = s;
  }
}

void Scores(const float *query, const float *keys, int64_t n, int64_t size, float *scores) {
  int64_t p = 0;
  for (; p + 4 <= n; p += 4) ScoreKeys<4>(query, keys + p * size, size, scores + p);
  for (; p < n; ++p) ScoreKeys<1>(query, keys + p * size, size, scores + p);
}

// out[i, i + H lanes) += sum over p of weights[p] values[p] there (n rows of `size`), each value summed in order of
// p, H vectors of the output held in registers across the rows; rows that weigh 0 (masked) are not read
template <int H>
void MixColumns(const float *weights, const float *values, int64_t n, int64_t size, int64_t i, float *out) {
  Vec acc[H];
  for (int j = 0; j < H; ++j) acc[j] = Load(out + i + j * kLanes);
  for (int64_t p = 0; p < n; ++p) {
    if (weights[p] == 0.f) continue;
    const Vec e = Set(weights[p]);
    for (int j = 0; j < H; ++j) acc[j] = Fma(e, Load(values + p * size + i + j * kLanes), acc[j]);
  }
  for (int j = 0; j < H; ++j) Store(out + i + j * kLanes, acc[j]);
}

void Mix(const float *weights, const float *values, int64_t n, int64_t size, float *out) {
  int64_t i = 0;
  for (; i + 8 * kLanes <= size; i += 8 * kLanes) MixColumns<8>(weights, values, n, size, i, out);
  for (; i + kLanes <= size; i += kLanes) MixColumns<1>(weights, values, n, size, i, out);
  for (; i < size; ++i) {
    for (int64_t p = 0; p < n; ++p) {
      if (weights[p] != 0.f) out[i] += weights[p] * values[p * size + i];
    }
  }
}

// Softmax attention of one query over the allowed cached positions and its own key.
struct Attention {
  const float *k_past, *v_past, *allowed;  // (B, nh, S, hs) each; (B, S + 1): the past slots, then the own key
  const int64_t *ends;  // (B): one past each sequence's last allowed past slot; the slots after it are never read
  int64_t heads, slots, size;  // size: a head's width

  // sequence b, head h: q, k_own, v_own point at the head's slices of the new position's projections
  void Head(int64_t b, int64_t h, const float *q, const float *k_own, const float *v_own, float *out) const {
    thread_local std::vector<float> scores, query;
    const float *ks = k_past + (b * heads + h) * slots * size, *vs = v_past + (b * heads + h) * slots * size;
    const float *ok = allowed + b * (slots + 1);
    const float scale = 1.f / std::sqrt(float(size));
    const int64_t end = ends[b];
    query.resize(size);
    for (int64_t i = 0; i < size; ++i) query[i] = q[i] * scale;
    scores.resize(end + 1);  // the past slots [0, end), then the own key
    Scores(query.data(), ks, end, size, scores.data());
    Scores(query.data(), k_own, 1, size, scores.data() + end);
    const float top = std::max(Largest(scores.data(), ok, end), Largest(scores.data() + end, ok + slots, 1));
    std::fill(out, out + size, 0.f);
    if (top == -INFINITY) return;  // nothing allowed: a padding row, whose output nothing reads
    const float total = Exponentiate(scores.data(), ok, end, top) + Exponentiate(scores.data() + end, ok + slots,
                                                                                  1, top);
    Mix(scores.data(), vs, end, size, out);
    Mix(scores.data() + end, v_own, 1, size, out);
    const float inv = 1.f / total;
#pragma omp simd
    for (int64_t i = 0; i < size; ++i) out[i] *= inv;
  }
};

constexpr int kFirstBlock = 9;  // where the blocks' inputs start (`DecodeStep`)
constexpr int kBlockParams = 12;  // and how many each block has

// The step's input rows x (B, C): each sequence's token embedding (or the embedding given) plus its position's.
bool Embed(void **params, int64_t **shapes, const char **dtypes, int64_t batch, int64_t c, int64_t start,
           float *x) {
  const float *wte = static_cast<const float *>(params[1]);
  const float *position = static_cast<const float *>(params[2]) + start * c;
  const bool ids = std::strcmp(dtypes[0], "int32") == 0;
  for (int64_t b = 0; b < batch; ++b) {
    const float *token = static_cast<const float *>(params[0]) + b * c;
    if (ids) {
      const int32_t id = static_cast<const int32_t *>(params[0])[b];
      if (id < 0 || id >= shapes[1][0]) return false;
      token = wte + id * c;
    }
    for (int64_t i = 0; i < c; ++i) x[b * c + i] = token[i] + position[i];
  }
  return true;
}

}  // namespace
}  // namespace mindbark

using mindbark::Phase;
using mindbark::Weights;

// params: 0 the new positions' ids (B, 1) int32, or their embeddings (B, 1, C); 1 the token embeddings (V_in, C)
// (read for ids only); 2 the position embeddings (S, C); 3 start, the new positions' index (int64 scalar);
// 4 key_mask (B, S) bool (false: a padding slot; the past slots before `start` it allows are attended to, and the
// own key if its slot is allowed); 5, 6 the final LayerNorm's weight and bias (C); 7 the LM head's rows H (V, C);
// 8 one value per block (only its length is read: shape inference sees no parameter count); then per block, from
// 9 + 12 l: LN1 weight, bias (C); Wa (3C, C), ba (3C); Wp (C, C), bp (C); LN2 weight, bias (C); Wf (F, C), bf (F);
// Wo (C, F), bo (C); then the cache (2 L, B, nh, S, hs), each block's keys then values. Last, the output
// (B, 1, V + 2 L C): the logits, then each block's new key and value (C each). Weights in one format each
// (`vector.h`).
extern "C" int DecodeStep(int nparam, void **params, int *ndims, int64_t **shapes, const char **dtypes,
                          void *stream, void *extra) {
  using mindbark::kBlockParams;
  using mindbark::kFirstBlock;
  const auto in = [&](int i) { return static_cast<const float *>(params[i]); };
  const int64_t layers = shapes[8][0];
  const int cache = static_cast<int>(kFirstBlock + layers * kBlockParams);
  if (layers < 1 || nparam != cache + 2 || ndims[cache] != 5) return 1;
  const int64_t batch = shapes[4][0], c = shapes[2][1], f = shapes[kFirstBlock + 8][0], vocab = shapes[7][0];
  const int64_t heads = shapes[cache][2], slots = shapes[cache][3], size = shapes[cache][4];
  const int64_t start = *static_cast<const int64_t *>(params[3]);
  if (heads * size != c || shapes[cache][0] != 2 * layers || shapes[cache][1] != batch || shapes[4][1] != slots ||
      shapes[2][0] < slots || start < 0 || start >= slots) {
    return 1;
  }
  Weights head;
  if (!mindbark::ReadWeights(7, c, params, shapes, dtypes, &head)) return 1;
  std::vector<Weights> w(4 * layers);
  for (int64_t l = 0; l < layers; ++l) {
    const int first = static_cast<int>(kFirstBlock + l * kBlockParams);
    const int index[4] = {first + 2, first + 4, first + 8, first + 10};
    const int64_t widths[4] = {c, c, c, f};
    for (int i = 0; i < 4; ++i) {
      if (!mindbark::ReadWeights(index[i], widths[i], params, shapes, dtypes, &w[4 * l + i])) return 1;
    }
  }
  float *out = static_cast<float *>(params[nparam - 1]);
  const int64_t row = vocab + 2 * layers * c;  // one sequence's output
  // x: a block's input, then its output; q and the attention's output; x1: x after attention; hidden: the MLP's
  std::vector<float> x(batch * c), h(batch * c), q(batch * c), attended(batch * c), x1(batch * c), hidden(batch * f);
  if (!mindbark::Embed(params, shapes, dtypes, batch, c, start, x.data())) return 1;
  // where each query may look: the past slots before `start` that key_mask allows, then its own key
  std::vector<float> allowed(batch * (slots + 1));
  std::vector<int64_t> ends(batch, 0);  // once per sequence here, not per head and block
  const bool *keys = static_cast<const bool *>(params[4]);
  for (int64_t b = 0; b < batch; ++b) {
    for (int64_t p = 0; p < slots; ++p) {
      allowed[b * (slots + 1) + p] = p < start && keys[b * slots + p];
      if (allowed[b * (slots + 1) + p] != 0.f) ends[b] = p + 1;
    }
    allowed[b * (slots + 1) + slots] = keys[b * slots + start];
  }
  const int64_t kv_size = batch * heads * slots * size;  // one block's cached keys, or values
  std::vector<mindbark::Attention> attention;
  std::vector<Phase> phases;
  for (int64_t l = 0; l < layers; ++l) {
    const int first = static_cast<int>(kFirstBlock + l * kBlockParams);
    const float *ba = in(first + 3), *bp = in(first + 5), *bf = in(first + 9), *bo = in(first + 11);
    const int64_t kv = vocab + 2 * l * c;  // this block's new key, then value, in each sequence's output row
    attention.push_back({in(cache) + 2 * l * kv_size, in(cache) + (2 * l + 1) * kv_size, allowed.data(),
                         ends.data(), heads, slots, size});
    phases.push_back({batch, [&, first](int64_t b) {
      mindbark::LayerNormRow(x.data() + b * c, in(first), in(first + 1), h.data() + b * c, c);
    }});
    phases.push_back(mindbark::ProductPhase(w[4 * l], 3 * c, batch, h.data(), c, [&, ba, kv](int64_t b, int64_t j,
                                                                                               float v) {
      const float value = v + ba[j];
      if (j < c) q[b * c + j] = value; else out[b * row + kv + j - c] = value;
    }));
    phases.push_back({batch * heads, [&, l, kv](int64_t i) {
      const int64_t b = i / heads, hd = i % heads;
      const float *own = out + b * row + kv + hd * size;  // the new key's head; its value's is C further
      attention[l].Head(b, hd, q.data() + b * c + hd * size, own, own + c, attended.data() + b * c + hd * size);
    }});
    phases.push_back(mindbark::ProductPhase(w[4 * l + 1], c, batch, attended.data(), c,
                                            [&, bp](int64_t b, int64_t j, float v) {
                                              x1[b * c + j] = x[b * c + j] + (v + bp[j]);
                                            }));
    phases.push_back({batch, [&, first](int64_t b) {
      mindbark::LayerNormRow(x1.data() + b * c, in(first + 6), in(first + 7), h.data() + b * c, c);
    }});
    phases.push_back(mindbark::ProductPhase(w[4 * l + 2], f, batch, h.data(), c,
                                            [&, bf](int64_t b, int64_t j, float v) {
                                              hidden[b * f + j] = mindbark::Gelu(v + bf[j]);
                                            }));
    phases.push_back(mindbark::ProductPhase(w[4 * l + 3], c, batch, hidden.data(), f,
                                            [&, bo](int64_t b, int64_t j, float v) {
                                              x[b * c + j] = x1[b * c + j] + (v + bo[j]);
                                            }));
  }
  phases.push_back({batch, [&](int64_t b) {
    mindbark::LayerNormRow(x.data() + b * c, in(5), in(6), h.data() + b * c, c);
  }});
  phases.push_back(mindbark::ProductPhase(head, vocab, batch, h.data(), c, [&](int64_t b, int64_t j, float v) {
    out[b * row + j] = v;
  }));
  mindbark::RunPhases(phases);
  return 0;
}

enum TypeId : int {};

extern "C" std::vector<int64_t> DecodeStepInferShape(int *ndims, int64_t **shapes, void *extra) {
  return {shapes[4][0], 1, shapes[7][0] + 2 * shapes[8][0] * shapes[2][1]};
}

extern "C" TypeId DecodeStepInferType(std::vector<TypeId> types, void *extra) { return types[2]; }
