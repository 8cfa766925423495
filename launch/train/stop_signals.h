// Graceful stop on SIGTERM, SIGINT or SIGUSR1 (Ctrl-C, `kill`, Slurm's scancel and time limit,
// `sbatch --signal=USR1@120`; launch/mpirun.sh turns a TERM or INT to mpirun into a USR1 for the
// ranks, since mpirun itself would kill them after a second): the handler only records the signal;
// the trainer agrees on it across ranks at the next step boundary (any rank's signal stops every
// rank), saves a checkpoint and exits with status 0, so a resubmitted job resumes from it. A second
// SIGINT while the first is pending aborts at once (exit 130), saying that nothing more is saved.
#pragma once

namespace lrkv {

void InstallStopSignalHandlers();
// 0, or the number of the first stop signal received and not yet acted on.
int StopSignal();
// The run has stopped for it (checkpoint written): a later run in this process starts afresh.
void ClearStopSignal();

}  // namespace lrkv
