// Softmax attention of many queries at once (prompt chunks of the causal GPTs, the fine model's passes) for
// MindSpore's `ops.Custom(func_type="aot")`, reading the heads straight out of the qkv projection (B, T, 3C) and
// writing them merged (B, T, C). As MindSpore ops the heads were split and merged by copies, the scores took a
// bias add per mask, a concat of past and new scores, a softmax and two slices: passes over the (B, nh, T, L + T)
// scores that cost prompt chunks and fine passes more than attention's products (README, Performance). Here each
// (sequence, head, block of query rows) is a piece on MindSpore's pool (`pool.cc`): its scores in a buffer of its
// own, by oneDNN's sgemm (which MindSpore's CPU backend ships and loads), masked and normalised in place, then
// multiplied by the values. Taking maps instead of (T, T) masks also lets a prompt chunk be of any length.
//
// The arithmetic is the ops', in fp32: scores q.k / sqrt(hs), masked keys weigh 0, a softmax shifted by the
// row's largest score.
#include <dlfcn.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

#include "rows.h"
#include "vector.h"

namespace mindbark {
namespace {

// dnnl_threadpool_interop_sgemm: row-major C = alpha op(A) op(B) + beta C; a null threadpool runs it on the
// calling thread alone (the pieces are this kernel's parallelism)
using Sgemm = int (*)(char transa, char transb, int64_t m, int64_t n, int64_t k, float alpha, const float *a,
                      int64_t lda, const float *b, int64_t ldb, float beta, float *c, int64_t ldc, void *threadpool);

Sgemm OneDnnSgemm() {
  static const Sgemm sgemm = [] {
    void *dnnl = dlopen("libdnnl.so.3", RTLD_NOW | RTLD_NOLOAD);
    return dnnl ? reinterpret_cast<Sgemm>(dlsym(dnnl, "dnnl_threadpool_interop_sgemm")) : nullptr;
  }();
  return sgemm;
}

constexpr int64_t kQueryRows = 128;  // query rows per piece: a piece's scores stay in L2

struct Problem {
  const float *qkv;  // (B, T, 3C): q, k, v, head h at columns h * hs of each
  const float *k_past = nullptr, *v_past = nullptr;  // (B, nh, L, hs) each
  const float *past_allowed = nullptr;  // (B, L): 1 where a query may look
  const float *own_allowed = nullptr;  // (B, T): 1 where the new key may be looked at (causally)
  float *y;  // (B, T, C)
  int64_t batch, t, heads, size, past = 0;
  bool causal = false;

  int64_t Blocks() const { return (t + kQueryRows - 1) / kQueryRows; }

  // sequence b, head h, query rows [r0, r0 + rows); nonzero if an sgemm call failed
  int Piece(Sgemm sgemm, int64_t b, int64_t h, int64_t r0) const {
    thread_local std::vector<float> scores;
    const int64_t c = heads * size, rows = std::min(kQueryRows, t - r0);
    // past slots after the last allowed one, and new keys after the last query (causal), are never read
    int64_t seen_past = past;
    while (seen_past > 0 && past_allowed[b * past + seen_past - 1] == 0.f) --seen_past;
    const int64_t seen_new = causal ? r0 + rows : t, width = seen_past + seen_new;
    scores.resize(rows * width);
    float *s = scores.data();
    const float scale = 1.f / std::sqrt(float(size));
    const float *q = qkv + (b * t + r0) * 3 * c + h * size, *keys = qkv + b * t * 3 * c + c + h * size;
    const int64_t head = (b * heads + h) * past * size;
    int status = 0;
    if (seen_past) {
      status |= sgemm('N', 'T', rows, seen_past, size, scale, q, 3 * c, k_past + head, size, 0.f, s, width, nullptr);
    }
    status |= sgemm('N', 'T', rows, seen_new, size, scale, q, 3 * c, keys, 3 * c, 0.f, s + seen_past, width, nullptr);
    std::vector<int64_t> blind;  // rows that may see nothing
    for (int64_t i = 0; i < rows; ++i) {
      if (!Normalise(b, r0 + i, s + i * width, seen_past, seen_new)) blind.push_back(i);
    }
    float *out = y + (b * t + r0) * c + h * size;
    if (seen_past) {
      status |= sgemm('N', 'N', rows, size, seen_past, 1.f, s, width, v_past + head, size, 0.f, out, c, nullptr);
    }
    status |= sgemm('N', 'N', rows, size, seen_new, 1.f, s + seen_past, width, keys + c, 3 * c,
                    seen_past ? 1.f : 0.f, out, c, nullptr);
    for (int64_t i : blind) Uniform(b, h, out + i * c);
    return status;
  }

  // a query that may see nothing: every one of the past + T values weighs the same, as the ops' additive
  // float32-min bias made it (such a query is padding, which nothing reads)
  void Uniform(int64_t b, int64_t h, float *out) const {
    const int64_t c = heads * size;
    std::fill(out, out + size, 0.f);
    for (int64_t p = 0; p < past; ++p) {
      const float *v = v_past + ((b * heads + h) * past + p) * size;
      for (int64_t i = 0; i < size; ++i) out[i] += v[i];
    }
    for (int64_t j = 0; j < t; ++j) {
      const float *v = qkv + (b * t + j) * 3 * c + 2 * c + h * size;
      for (int64_t i = 0; i < size; ++i) out[i] += v[i];
    }
    const float inv = 1.f / float(past + t);
    for (int64_t i = 0; i < size; ++i) out[i] *= inv;
  }

  // row i's scores over the seen past slots and new keys -> probabilities, masked keys 0; false (and all 0) if
  // the row may see nothing
  bool Normalise(int64_t b, int64_t i, float *row, int64_t seen_past, int64_t seen_new) const {
    const float *ok_past = past_allowed + b * past, *ok_own = own_allowed ? own_allowed + b * t : nullptr;
    const int64_t visible = causal ? std::min(seen_new, i + 1) : seen_new;  // new keys j <= i
    float *fresh = row + seen_past;
    std::fill(fresh + visible, fresh + seen_new, 0.f);
    const float top = std::max(Largest(row, ok_past, seen_past), Largest(fresh, ok_own, visible));
    if (top == -INFINITY) {
      std::fill(row, row + seen_past + visible, 0.f);
      return false;
    }
    const float inv = 1.f / (Exponentiate(row, ok_past, seen_past, top) + Exponentiate(fresh, ok_own, visible, top));
#pragma omp simd
    for (int64_t p = 0; p < seen_past + visible; ++p) row[p] *= inv;
    return true;
  }

  int Run() const {
    const Sgemm sgemm = OneDnnSgemm();
    if (!sgemm) return 1;
    const int64_t blocks = Blocks();
    std::vector<int> failed(batch * heads * blocks, 0);
    RunPhases({{batch * heads * blocks, [&](int64_t i) {
      failed[i] = Piece(sgemm, i / (heads * blocks), i / blocks % heads, i % blocks * kQueryRows);
    }}});
    return std::any_of(failed.begin(), failed.end(), [](int f) { return f != 0; }) ? 1 : 0;
  }
};

}  // namespace
}  // namespace mindbark

// params: qkv (B, T, 3C), k_past, v_past (B, nh, L, hs), past_allowed (B, L), own_allowed (B, T), y (B, T, C).
// Query i sees the allowed past slots and the allowed new keys j <= i.
extern "C" int CausalAttention(int nparam, void **params, int *ndims, int64_t **shapes, const char **dtypes,
                               void *stream, void *extra) {
  mindbark::Problem p;
  p.qkv = static_cast<const float *>(params[0]);
  p.k_past = static_cast<const float *>(params[1]);
  p.v_past = static_cast<const float *>(params[2]);
  p.past_allowed = static_cast<const float *>(params[3]);
  p.own_allowed = static_cast<const float *>(params[4]);
  p.y = static_cast<float *>(params[5]);
  p.batch = shapes[0][0], p.t = shapes[0][1], p.heads = shapes[1][1], p.past = shapes[1][2], p.size = shapes[1][3];
  p.causal = true;
  if (p.heads * p.size * 3 != shapes[0][2] || shapes[3][1] != p.past || shapes[4][1] != p.t) return 1;
  return p.Run();
}

// params: qkv (B, T, 3C), heads (nh,) (only its length is read), y (B, T, C): every query sees every key.
extern "C" int FullAttention(int nparam, void **params, int *ndims, int64_t **shapes, const char **dtypes,
                             void *stream, void *extra) {
  mindbark::Problem p;
  p.qkv = static_cast<const float *>(params[0]);
  p.y = static_cast<float *>(params[2]);
  p.batch = shapes[0][0], p.t = shapes[0][1], p.heads = shapes[1][0], p.size = shapes[0][2] / 3 / p.heads;
  if (p.heads * p.size * 3 != shapes[0][2]) return 1;
  return p.Run();
}

enum TypeId : int {};

extern "C" std::vector<int64_t> CausalAttentionInferShape(int *ndims, int64_t **shapes, void *extra) {
  return {shapes[0][0], shapes[0][1], shapes[0][2] / 3};
}

extern "C" TypeId CausalAttentionInferType(std::vector<TypeId> types, void *extra) { return types[0]; }

extern "C" std::vector<int64_t> FullAttentionInferShape(int *ndims, int64_t **shapes, void *extra) {
  return {shapes[0][0], shapes[0][1], shapes[0][2] / 3};
}

extern "C" TypeId FullAttentionInferType(std::vector<TypeId> types, void *extra) { return types[0]; }
