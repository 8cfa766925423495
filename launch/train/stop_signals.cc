#include "launch/train/stop_signals.h"

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

}  // namespace

void InstallStopSignalHandlers() {
  struct sigaction action {};
  action.sa_handler = OnStopSignal;
  sigemptyset(&action.sa_mask);
  action.sa_flags = SA_RESTART;  // MPI and file calls in progress carry on
  for (int s : {SIGTERM, SIGINT, SIGUSR1}) sigaction(s, &action, nullptr);
}

int StopSignal() { return g_stop_signal; }
void ClearStopSignal() { g_stop_signal = 0; }

}  // namespace lrkv
