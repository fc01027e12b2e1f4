// One LSTM layer's recurrence for MindSpore's `ops.Custom(func_type="aot")`, fp32, torch's gate order (i, f, g, o).
// The input projection (all steps at once) is a GEMM MindSpore runs well; what is left is one (4H, H) product per
// step, whose weights (4H x H floats) are read again every step. The hidden units are split in two
// parts, each with half the weights, which then stay in one core's L2; the parts of a step must all be done before
// the next step reads its h.
//
// The parts run on MindSpore's own CPU kernel thread pool (`pool.cc`); where it is missing (another MindSpore
// build) the second part gets a thread of its own.
#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstring>
#include <functional>
#include <memory>
#include <thread>
#include <vector>

#include "rows.h"

namespace mindbark {
bool LaunchOnPool(const std::function<int(void *, int, float, float)> &task, int count);
}

namespace {

constexpr int kParts = 2;

using mindbark::Exp;

inline float Sigmoid(float x) { return 1.f / (1.f + Exp(-x)); }

inline float Tanh(float x) { return 2.f / (1.f + Exp(-2.f * x)) - 1.f; }

struct Layer {
  const float *xp;  // (B, T, 4H): x W_ih^T + b_ih + b_hh
  const float *w;   // (4H, H): W_hh
  const float *h0;  // (B, H)
  const float *c0;  // (B, H)
  float *h;         // (B, T, H): out[0]
  float *c;         // (B, T, H): out[1]
  int64_t batch, steps, hidden;
};

// Step t of every item of the batch, for hidden units [lo, hi); `gates` holds 4 (hi - lo) floats.
void Step(const Layer &l, int64_t t, int64_t lo, int64_t hi, float *gates) {
  const int64_t H = l.hidden, n = hi - lo;
  for (int64_t b = 0; b < l.batch; ++b) {
    const float *h_prev = t ? l.h + (b * l.steps + t - 1) * H : l.h0 + b * H;
    const float *c_prev = t ? l.c + (b * l.steps + t - 1) * H : l.c0 + b * H;
    const float *xp = l.xp + (b * l.steps + t) * 4 * H;
    for (int64_t j = 0; j < n; ++j) {
      const float *r0 = l.w + (lo + j) * H, *r1 = r0 + H * H, *r2 = r1 + H * H, *r3 = r2 + H * H;
      float s0 = 0.f, s1 = 0.f, s2 = 0.f, s3 = 0.f;
#pragma omp simd reduction(+ : s0, s1, s2, s3)
      for (int64_t k = 0; k < H; ++k) {
        s0 += r0[k] * h_prev[k];
        s1 += r1[k] * h_prev[k];
        s2 += r2[k] * h_prev[k];
        s3 += r3[k] * h_prev[k];
      }
      gates[j] = xp[lo + j] + s0;
      gates[n + j] = xp[H + lo + j] + s1;
      gates[2 * n + j] = xp[2 * H + lo + j] + s2;
      gates[3 * n + j] = xp[3 * H + lo + j] + s3;
    }
    float *h = l.h + (b * l.steps + t) * H + lo;
    float *c = l.c + (b * l.steps + t) * H + lo;
#pragma omp simd
    for (int64_t j = 0; j < n; ++j) {
      const float cell = Sigmoid(gates[n + j]) * c_prev[lo + j] + Sigmoid(gates[j]) * Tanh(gates[2 * n + j]);
      c[j] = cell;
      h[j] = Sigmoid(gates[3 * n + j]) * Tanh(cell);
    }
  }
}

// The recurrence as kParts tasks that may run concurrently, one after another, or anything between: a pool may
// start a task late or run it on the thread that finished another. Each (step, part) is claimed by exactly one
// task; a task does its own part of each step, and also the other part while that part's task has not started.
class Recurrence {
 public:
  explicit Recurrence(const Layer &l)
      : l_(l), claimed_(new std::atomic<bool>[l.steps * kParts]), done_(new std::atomic<int>[l.steps]) {
    for (int64_t i = 0; i < l.steps * kParts; ++i) claimed_[i].store(false, std::memory_order_relaxed);
    for (int64_t t = 0; t < l.steps; ++t) done_[t].store(0, std::memory_order_relaxed);
    for (auto &s : started_) s.store(false, std::memory_order_relaxed);
  }

  void Run(int part) {
    started_[part].store(true, std::memory_order_release);
    const int64_t per = l_.hidden / kParts;
    std::vector<float> gates(4 * (l_.hidden - per * (kParts - 1)));
    for (int64_t t = 0; t < l_.steps; ++t) {
      for (int q = part, i = 0; i < kParts; ++i, q = (q + 1) % kParts) {
        if (q != part && started_[q].load(std::memory_order_acquire)) continue;  // its task does it
        if (claimed_[t * kParts + q].exchange(true, std::memory_order_acq_rel)) continue;
        Step(l_, t, q * per, q == kParts - 1 ? l_.hidden : (q + 1) * per, gates.data());
        done_[t].fetch_add(1, std::memory_order_release);
      }
      // step t's h is complete before any part of step t + 1 reads it; spins briefly (a step is tens of
      // microseconds), then yields so a descheduled partner gets the core
      for (int spins = 0; done_[t].load(std::memory_order_acquire) < kParts; ++spins)
        if (spins > 2000) std::this_thread::yield();
    }
  }

 private:
  const Layer &l_;
  std::unique_ptr<std::atomic<bool>[]> claimed_;
  std::unique_ptr<std::atomic<int>[]> done_;
  std::atomic<bool> started_[kParts];
};

}  // namespace

// params: xp (B, T, 4H), w_hh (4H, H), h0 (B, H), c0 (B, H); out (2, B, T, H): h and c after every step
extern "C" int LstmLayer(int nparam, void **params, int *ndims, int64_t **shapes, const char **dtypes, void *stream,
                         void *extra) {
  const Layer l{static_cast<const float *>(params[0]), static_cast<const float *>(params[1]),
                static_cast<const float *>(params[2]), static_cast<const float *>(params[3]),
                static_cast<float *>(params[4]),
                static_cast<float *>(params[4]) + shapes[0][0] * shapes[0][1] * (shapes[0][2] / 4),
                shapes[0][0], shapes[0][1], shapes[0][2] / 4};
  Recurrence recurrence(l);
  const auto task = [&recurrence](void *, int part, float, float) {
    recurrence.Run(part);
    return 0;
  };
  if (mindbark::LaunchOnPool(task, kParts)) {
    recurrence.Run(0);  // nothing left after a complete launch; finishes whatever a failed one did not run
  } else {
    std::thread other([&recurrence] { recurrence.Run(1); });
    recurrence.Run(0);
    other.join();
  }
  return 0;
}

enum TypeId : int {};

extern "C" std::vector<int64_t> LstmLayerInferShape(int *ndims, int64_t **shapes, void *extra) {
  return {2, shapes[0][0], shapes[0][1], shapes[0][2] / 4};
}

extern "C" TypeId LstmLayerInferType(std::vector<TypeId> types, void *extra) { return types[0]; }
