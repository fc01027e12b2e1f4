// One LSTM layer's recurrence for MindSpore's `ops.Custom(func_type="aot")`, fp32, torch's gate order (i, f, g, o).
// The input projection (all steps at once) is a GEMM MindSpore runs well; what is left is one (4H, H) product per
// step, whose weights (4 MB at EnCodec's H = 512) are read again every step. Two threads each own half the hidden
// units, so each reads half the weights, which then stay in its core's L2; they meet once a step, when the new h
// is complete. Threads are started per call and joined before it returns: nothing spins after the kernel.
#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstring>
#include <thread>
#include <vector>

namespace {

constexpr int kThreads = 2;

// exp(x) for |x| <= 87 to ~1 ulp, branch-free so loops over it vectorise: Cody-Waite reduction by ln 2 and a
// degree-6 polynomial (Cephes' expf coefficients), then 2^n through the exponent bits.
inline float Exp(float x) {
  x = std::min(87.f, std::max(-87.f, x));
  const float n = __builtin_floorf(x * 1.44269504088896341f + 0.5f);
  x = x - n * 0.693359375f + n * 2.12194440e-4f;
  float p = 1.9875691500e-4f;
  p = p * x + 1.3981999507e-3f;
  p = p * x + 8.3334519073e-3f;
  p = p * x + 4.1665795894e-2f;
  p = p * x + 1.6666665459e-1f;
  p = p * x + 5.0000001201e-1f;
  p = p * x * x + x + 1.f;
  const uint32_t bits = static_cast<uint32_t>(static_cast<int32_t>(n) + 127) << 23;
  float scale;
  std::memcpy(&scale, &bits, sizeof scale);
  return p * scale;
}

inline float Sigmoid(float x) { return 1.f / (1.f + Exp(-x)); }

inline float Tanh(float x) { return 2.f / (1.f + Exp(-2.f * x)) - 1.f; }

// A barrier for the kernel's own threads: spins briefly (a step's work is tens of microseconds), then yields so a
// descheduled partner gets the core.
class Barrier {
 public:
  explicit Barrier(int n) : n_(n) {}
  void Wait() {
    const int gen = gen_.load(std::memory_order_acquire);
    if (count_.fetch_add(1, std::memory_order_acq_rel) + 1 == n_) {
      count_.store(0, std::memory_order_relaxed);
      gen_.fetch_add(1, std::memory_order_release);
      return;
    }
    for (int spins = 0; gen_.load(std::memory_order_acquire) == gen; ++spins)
      if (spins > 2000) std::this_thread::yield();
  }

 private:
  const int n_;
  std::atomic<int> count_{0};
  std::atomic<int> gen_{0};
};

struct Layer {
  const float *xp;  // (B, T, 4H): x W_ih^T + b_ih + b_hh
  const float *w;   // (4H, H): W_hh
  const float *h0;  // (B, H)
  const float *c0;  // (B, H)
  float *h;         // (B, T, H): out[0]
  float *c;         // (B, T, H): out[1]
  int64_t batch, steps, hidden;
};

// Steps every item of the batch through hidden units [lo, hi).
void Run(const Layer &l, int64_t lo, int64_t hi, Barrier &barrier) {
  const int64_t H = l.hidden, n = hi - lo;
  std::vector<float> gates(4 * n);
  for (int64_t t = 0; t < l.steps; ++t) {
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
    barrier.Wait();  // step t's h is complete before any thread reads it
  }
}

}  // namespace

// params: xp (B, T, 4H), w_hh (4H, H), h0 (B, H), c0 (B, H); out (2, B, T, H): h and c after every step
extern "C" int LstmLayer(int nparam, void **params, int *ndims, int64_t **shapes, const char **dtypes, void *stream,
                         void *extra) {
  const Layer l{static_cast<const float *>(params[0]), static_cast<const float *>(params[1]),
                static_cast<const float *>(params[2]), static_cast<const float *>(params[3]),
                static_cast<float *>(params[4]),
                static_cast<float *>(params[4]) + shapes[0][0] * shapes[0][1] * (shapes[0][2] / 4),
                shapes[0][0], shapes[0][1], shapes[0][2] / 4};
  const int64_t half = l.hidden / kThreads;
  Barrier barrier(kThreads);
  std::thread other([&] { Run(l, half, l.hidden, barrier); });
  Run(l, 0, half, barrier);
  other.join();
  return 0;
}

enum TypeId : int {};

extern "C" std::vector<int64_t> LstmLayerInferShape(int *ndims, int64_t **shapes, void *extra) {
  return {2, shapes[0][0], shapes[0][1], shapes[0][2] / 4};
}

extern "C" TypeId LstmLayerInferType(std::vector<TypeId> types, void *extra) { return types[0]; }
