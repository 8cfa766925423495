// Graceful stop on SIGTERM or SIGUSR1 (Slurm preemption: `sbatch --signal=USR1@120`, `scancel
// --signal=USR1`; mpirun forwards SIGUSR1 to the ranks): the handler only records the signal; the
// trainer agrees on it across ranks at the next step boundary (any rank's signal stops every rank),
// saves a checkpoint and exits with status 0, so a resubmitted job resumes from it.
#pragma once

namespace lrkv {

void InstallStopSignalHandlers();
// 0, or the number of the last stop signal received.
int StopSignal();

}  // namespace lrkv
