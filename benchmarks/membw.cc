// Memory read bandwidth: T threads each sum their share of a large buffer; best of R rounds, GB/s on stdout.
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <thread>
#include <vector>
int main(int argc, char **argv) {
  const int threads = argc > 1 ? atoi(argv[1]) : 2;
  const size_t mb = argc > 2 ? atol(argv[2]) : 1024;
  const int rounds = argc > 3 ? atoi(argv[3]) : 7;
  const size_t n = mb * 1024 * 1024 / sizeof(float);
  std::vector<float> buf(n, 1.0f);
  std::vector<float> sums(threads * 16);
  double best = 1e30;
  for (int r = 0; r < rounds; ++r) {
    auto t0 = std::chrono::steady_clock::now();
    std::vector<std::thread> pool;
    for (int t = 0; t < threads; ++t)
      pool.emplace_back([&, t] {
        const float *p = buf.data() + n / threads * t;
        const size_t len = n / threads;
        float acc[16] = {};
        for (size_t i = 0; i < len; i += 16)
#pragma omp simd
          for (int j = 0; j < 16; ++j) acc[j] += p[i + j];
        for (int j = 0; j < 16; ++j) sums[t * 16 + j] = acc[j];
      });
    for (auto &th : pool) th.join();
    double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (s < best) best = s;
  }
  float total = 0; for (float s : sums) total += s;
  printf("%.2f GB/s (%d threads, %zu MiB, best of %d; check %.0f)\n", n * sizeof(float) / best / 1e9, threads, mb, rounds, total);
}
