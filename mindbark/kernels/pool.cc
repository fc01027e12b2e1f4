// MindSpore's own CPU kernel thread pool, for mindbark's kernels that split their work: the launching thread and
// the pool's idle worker, which would otherwise spin beside the kernel. A thread of a kernel's own made three busy
// threads on two cores, and the kernel slower inside a graph than alone.
//
// The pool is found by symbol in the libraries the running process already loaded:
// mindspore::kernel::GetActorMgrInnerThreadPool() and mindspore::ThreadPool::ParallelLaunch(const Func &, Content,
// int). Another MindSpore build may lack them.
#include <dlfcn.h>

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <thread>
#include <vector>

#include "vector.h"

namespace mindbark {

using PoolTask = std::function<int(void *, int, float, float)>;

namespace {

// A thread waiting at a phase's end spins this many pauses (tens of microseconds), then yields: with the
// launching thread computing too there are more busy threads than cores, and the piece it waits for may belong to
// a thread that has no core until a waiter gives its own up.
constexpr int kSpinsBeforeYield = 2000;

inline void Pause() {
#if defined(__x86_64__) || defined(__i386__)
  _mm_pause();
#endif
}

struct Pool {
  void *(*get)() = nullptr;
  int (*launch)(void *pool, const PoolTask &task, void *content, int count) = nullptr;
};

const Pool &MindSporePool() {
  static const Pool pool = [] {
    Pool p;
    void *ops = dlopen("libmindspore_ops_cpu.so", RTLD_NOW | RTLD_NOLOAD);
    void *core = dlopen("libmindspore_core.so", RTLD_NOW | RTLD_NOLOAD);
    if (ops && core) {
      p.get = reinterpret_cast<void *(*)()>(dlsym(ops, "_ZN9mindspore6kernel26GetActorMgrInnerThreadPoolEv"));
      p.launch = reinterpret_cast<decltype(p.launch)>(
          dlsym(core, "_ZN9mindspore10ThreadPool14ParallelLaunchERKSt8functionIFiPviffEES2_i"));
    }
    return p;
  }();
  return pool;
}

}  // namespace

// Runs task(nullptr, i, 0, 0) for i in [0, count) on the pool and returns true, or returns false, having run
// nothing, where there is no pool. A launch that fails may leave tasks unrun (its status says little about which):
// callers claim their work so that the launching thread can finish what is left.
bool LaunchOnPool(const PoolTask &task, int count) {
  const Pool &pool = MindSporePool();
  void *threads = pool.get && pool.launch ? pool.get() : nullptr;
  if (!threads) return false;
  pool.launch(threads, task, nullptr, count);
  return true;
}

// Runs the phases in order, each phase's pieces claimed once by the pool's workers and the calling thread; a
// phase starts when every piece of the one before is done. One launch for all of them, where a launch per phase
// woke the pool's worker for each. A thread waits only for pieces another has claimed and is running, so a worker
// that never comes costs nothing but its share.
//
// The launch asks for one task more than the pool can have workers: ParallelLaunch runs the tasks no idle worker
// took on the calling thread, which otherwise (not being one of the pool's) only waited for the workers in a
// yield loop of its own: a third busy thread on two cores, which made decode steps now fast, now slow.
void RunPhases(const std::vector<Phase> &phases) {
  const size_t n = phases.size();
  std::unique_ptr<std::atomic<int64_t>[]> next(new std::atomic<int64_t>[n]), done(new std::atomic<int64_t>[n]);
  for (size_t p = 0; p < n; ++p) next[p] = done[p] = 0;
  const auto run = [&] {
    for (size_t p = 0; p < n; ++p) {
      for (int64_t i; (i = next[p].fetch_add(1)) < phases[p].count;) {
        phases[p].body(i);
        done[p].fetch_add(1);
      }
      for (int spins = 0; done[p].load() < phases[p].count; ++spins) {
        if (spins < kSpinsBeforeYield) {
          Pause();
        } else {
          std::this_thread::yield();
        }
      }
    }
  };
  static const int tasks = static_cast<int>(std::thread::hardware_concurrency()) + 1;  // once: glibc reads /sys for it
  LaunchOnPool([&run](void *, int, float, float) { run(); return 0; }, tasks);
  run();  // nothing left, or all of it without a pool
}

}  // namespace mindbark
