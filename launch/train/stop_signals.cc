#include "launch/train/stop_signals.h"

#include <omp.h>
#include <unistd.h>

#include <csignal>
#include <initializer_list>

namespace lrkv {
namespace {

volatile std::sig_atomic_t g_stop_signal = 0;

void OnStopSignal(int signal) {
  if (signal == SIGINT && g_stop_signal == SIGINT) {
    // Only async-signal-safe calls here.
    constexpr char kMessage[] = "\nlrkv: second interrupt: aborting now, without the checkpoint of this step\n";
    [[maybe_unused]] const ssize_t n = ::write(STDERR_FILENO, kMessage, sizeof(kMessage) - 1);
    ::_exit(130);
  }
  if (g_stop_signal == 0) g_stop_signal = signal;
}

// The handler runs on an alternate stack. oneDNN's JIT GEMM kernels (runtime/ops/cpu/blas.cc) point
// the stack pointer into a heap buffer while they run (oneDNN issue #4845, fixed after the 2.6.3 that
// Debian 12 ships): a handler run on the interrupted stack writes its signal frame into the heap, and
// the process dies later in free() or computes with garbage. The alternate stack is per thread, so
// every thread that runs those kernels gets one: this thread and each OpenMP worker. Kept for the
// thread's life (a thread cannot give back the stack a signal may be using).
void UseAlternateSignalStack() {
  thread_local bool done = false;
  if (done) return;
  stack_t stack{};
  stack.ss_size = 64 * 1024;
  stack.ss_sp = new char[stack.ss_size];
  if (sigaltstack(&stack, nullptr) == 0) done = true;
}

}  // namespace

void InstallStopSignalHandlers() {
#pragma omp parallel
  UseAlternateSignalStack();
  UseAlternateSignalStack();  // the caller, whether or not it takes part in the OpenMP team
  struct sigaction action {};
  action.sa_handler = OnStopSignal;
  sigemptyset(&action.sa_mask);
  action.sa_flags = SA_RESTART | SA_ONSTACK;  // MPI and file calls in progress carry on
  for (int s : {SIGTERM, SIGINT, SIGUSR1}) sigaction(s, &action, nullptr);
}

int StopSignal() { return g_stop_signal; }
void ClearStopSignal() { g_stop_signal = 0; }

}  // namespace lrkv
