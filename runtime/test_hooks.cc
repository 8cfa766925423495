#include "runtime/test_hooks.h"

#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace lrkv {

const char* TestHook(const char* name) {
  const char* on = std::getenv("LRKV_TEST_HOOKS");
  if (on == nullptr || std::strcmp(on, "1") != 0) return nullptr;
  return std::getenv(name);
}

void PauseAtForTests(const char* stage) {
  const char* at = TestHook("LRKV_CHECKPOINT_PAUSE_AT");
  if (at == nullptr || std::strcmp(at, stage) != 0) return;
  const char* seconds = TestHook("LRKV_CHECKPOINT_PAUSE_S");
  const int s = seconds != nullptr ? std::atoi(seconds) : 60;
  std::fprintf(stderr, "lrkv: test hook: checkpoint save paused at %s (pid %d) for %d s\n", stage,
               static_cast<int>(::getpid()), s);
  std::fflush(stderr);
  // sleep() returns early when a signal arrives; the pause is meant to last.
  for (unsigned left = static_cast<unsigned>(s); left > 0;) left = ::sleep(left);
}

bool NanGradientStepForTests(int64_t step) {
  const char* v = TestHook("LRKV_TEST_NAN_GRAD");
  if (v == nullptr) return false;
  const int64_t at = std::atoll(v);
  return step == at || (std::strchr(v, '+') != nullptr && step >= at);
}

}  // namespace lrkv
