// main() of the GoogleTest suites run under mpirun (tests/parallel/): MPI around the tests, and the
// job fails if any rank failed. A failed check ends every rank at once (MPI_Abort), with the failure
// printed first: the other ranks would otherwise wait in a collective for the failed one until
// CTest's timeout. MPI with threads, which the CPU implementations of the CUDA stream and NCCL
// (tests/testing/cuda_runtime_on_cpu.h, nccl_on_cpu.h) need: their streams are threads that call MPI.
#include <mpi.h>

#include "gtest/gtest.h"

namespace {

class AbortOnFailure : public ::testing::EmptyTestEventListener {
  void OnTestPartResult(const ::testing::TestPartResult& result) override {
    if (result.failed()) MPI_Abort(MPI_COMM_WORLD, 1);
  }
};

}  // namespace

int main(int argc, char** argv) {
  int provided = 0;
  MPI_Init_thread(&argc, &argv, MPI_THREAD_MULTIPLE, &provided);
  ::testing::InitGoogleTest(&argc, argv);
  ::testing::UnitTest::GetInstance()->listeners().Append(new AbortOnFailure);
  const int result = RUN_ALL_TESTS();
  int worst = 0;
  MPI_Allreduce(&result, &worst, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
  MPI_Finalize();
  return worst;
}
