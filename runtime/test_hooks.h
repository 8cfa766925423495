// Fault injection for the tests, all in one place. A hook acts only when LRKV_TEST_HOOKS=1 is in the
// environment and its own variable is set too, so no run triggers one by accident:
//   LRKV_CHECKPOINT_PAUSE_AT=STAGE   a checkpoint save stops at STAGE (shards_written,
//   [LRKV_CHECKPOINT_PAUSE_S=60]     manifest_written, renamed) for that many seconds, saying so on
//                                    stderr: a test can kill -9 a rank at a known moment, or make a
//                                    save outlast a launcher's grace period
//   LRKV_TEST_NAN_GRAD=K (or K+)     world rank 0's first gradient becomes NaN at step K (or from
//                                    step K on): the non-finite-step handling (launch/)
//   LRKV_TEST_MEMORY_AVAILABLE=BYTES the memory the start-up check sees as available on the node
//                                    (launch/train/memory_check.h), whatever the machine has
//   LRKV_TEST_CPU_LACKS=FEATURE|all  the start-up CPU check (cpu_target.h) sees the CPU without that
//                                    feature of the build's (e.g. avx2), or without any
#pragma once

#include <cstdint>

namespace lrkv {

// The hook variable's value, or nullptr when it is unset or hooks are off.
const char* TestHook(const char* name);

// LRKV_CHECKPOINT_PAUSE_AT: sleeps when `stage` is the one named.
void PauseAtForTests(const char* stage);

// LRKV_TEST_NAN_GRAD: true when step `step` (1-based) gets a NaN gradient.
bool NanGradientStepForTests(int64_t step);

}  // namespace lrkv
