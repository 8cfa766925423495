// The CUDA backend's host code run under mpirun without GPUs: the test executable carries NCCL's calls
// (tests/testing/nccl_on_cpu.h, over MPI) and the CUDA runtime's (tests/testing/cuda_runtime_on_cpu.h:
// streams as threads, host memory as device memory), which it takes before libnccl's and
// libcudart's. Checked:
//   - the training device's set-up (launch/train/training_device.h): a node with fewer GPUs than
//     ranks refused with the counts; with enough, each rank on the GPU of its node-local rank;
//   - the NCCL communicator (parallel/nccl_communicator.cc) against the MPI communicator on the same
//     ranks and values: every collective of every group of a tp2 x pp2 mesh (f32, f64, bf16, i32;
//     sum and max), point-to-point with the deferred sends of the pipeline, and the byte
//     accounting; a peer that never calls (DeadlineExceeded naming the group within the timeout,
//     the communicator refusing further calls), an error NCCL reports asynchronously (named);
//   - the caching allocator (runtime/cuda/device.cc): reuse, and out-of-memory recovery;
//   - the start-up memory check on a GPU (launch/train/memory_check.h) against the device's free
//     memory.
// Run by CTest as `mpirun -np 4`.
#include <mpi.h>

#include <chrono>
#include <cmath>
#include <memory>
#include <string>

#include "gtest/gtest.h"
#include "launch/train/memory_check.h"
#include "launch/train/training_device.h"
#include "model/config.h"
#include "parallel/mesh.h"
#include "parallel/mpi_communicator.h"
#include "parallel/nccl_communicator.h"
#include "runtime/allocator.h"
#include "runtime/cuda/device.h"
#include "tests/testing/cuda_runtime_on_cpu.h"
#include "tests/testing/nccl_on_cpu.h"
#include "tests/testing/tensor_testing.h"

namespace lrkv {
namespace {

namespace fake_cuda = testing::cuda_runtime_on_cpu;

MpiCommunicator& World() {
  static MpiCommunicator world(MPI_COMM_WORLD, "world");
  return world;
}

// Host values in `dtype`: uniform in [-1, 1) (integers in [-50, 50) for i32), from `seed`.
Tensor Values(int64_t n, DType dtype, uint64_t seed) {
  if (dtype == DType::kI32) {
    Tensor t = testing::Tokens({n}, 100, seed);
    for (int64_t i = 0; i < n; ++i) t.data<int32_t>()[i] -= 50;
    return t;
  }
  const Tensor t = testing::Random({n}, seed, DType::kF64);
  return t.To(Device::kCpu, dtype).value();
}

Tensor OnDevice(const Tensor& host) { return host.To(Device::kCuda, host.dtype()).value(); }

// The elements as doubles, read back from any device.
std::vector<double> Elements(const Tensor& t) {
  const Tensor h = t.To(Device::kCpu, t.dtype()).value();
  std::vector<double> out(h.numel());
  for (int64_t i = 0; i < h.numel(); ++i) {
    switch (h.dtype()) {
      case DType::kI32:
        out[i] = h.data<int32_t>()[i];
        break;
      case DType::kBF16:
        out[i] = BF16BitsToFloat(static_cast<const uint16_t*>(h.raw())[i]);
        break;
      default:
        out[i] = testing::At(h, i);
    }
  }
  return out;
}

void ExpectSame(const Tensor& device, const Tensor& cpu, const std::string& what) {
  const std::vector<double> d = Elements(device), c = Elements(cpu);
  ASSERT_EQ(d.size(), c.size()) << what;
  const double tol = cpu.dtype() == DType::kBF16 ? 1e-2 : 1e-6;
  for (size_t i = 0; i < d.size(); ++i) EXPECT_NEAR(d[i], c[i], tol * (1 + std::abs(c[i]))) << what << " [" << i << "]";
}

#define ASSERT_OK(expr)                          \
  do {                                           \
    const absl::Status s_ = (expr);              \
    ASSERT_TRUE(s_.ok()) << #expr << ": " << s_; \
  } while (0)

// Every call of the Communicator interface on `cpu` (MPI) and `dev` (NCCL on CUDA tensors), the same
// values on the same ranks: the same results, and the same bytes counted.
void ExpectSameCollectives(Communicator& cpu, Communicator& dev, uint64_t seed, const std::string& group) {
  ASSERT_EQ(cpu.rank(), dev.rank()) << group;
  ASSERT_EQ(cpu.size(), dev.size()) << group;
  const int r = cpu.rank(), n = cpu.size();
  cpu.stats().Reset(), dev.stats().Reset();
  for (DType dtype : {DType::kF32, DType::kF64, DType::kBF16, DType::kI32}) {
    for (ReduceOp op : {ReduceOp::kSum, ReduceOp::kMax}) {
      Tensor c = Values(5, dtype, seed + 10 * r + int(op));
      Tensor d = OnDevice(c);
      ASSERT_OK(cpu.AllReduce(c, op));
      ASSERT_OK(dev.AllReduce(d, op));
      ExpectSame(d, c, group + " AllReduce " + DTypeName(dtype) + (op == ReduceOp::kSum ? " sum" : " max"));
    }
  }
  const Tensor in = Values(3, DType::kF32, seed + 100 + r);
  Tensor gathered_c = Tensor::Zeros({3 * n}, DType::kF32).value(), gathered_d = OnDevice(gathered_c);
  ASSERT_OK(cpu.AllGather(in, gathered_c));
  ASSERT_OK(dev.AllGather(OnDevice(in), gathered_d));
  ExpectSame(gathered_d, gathered_c, group + " AllGather");

  const Tensor whole = Values(2 * n, DType::kF32, seed + 200 + r);
  Tensor part_c = Tensor::Zeros({2}, DType::kF32).value(), part_d = OnDevice(part_c);
  ASSERT_OK(cpu.ReduceScatter(whole, part_c));
  ASSERT_OK(dev.ReduceScatter(OnDevice(whole), part_d));
  ExpectSame(part_d, part_c, group + " ReduceScatter");

  Tensor b_c = Values(4, DType::kBF16, seed + 300 + r), b_d = OnDevice(b_c);
  ASSERT_OK(cpu.Broadcast(b_c, n - 1));
  ASSERT_OK(dev.Broadcast(b_d, n - 1));
  ExpectSame(b_d, b_c, group + " Broadcast");

  if (n > 1) {
    // The pipeline's pattern: every rank sends to the next and then receives from the one before,
    // the send deferred until the receive (both in one NCCL group, or the two would wait forever).
    const int next = (r + 1) % n, prev = (r + n - 1) % n;
    const Tensor mine = Values(6, DType::kF32, seed + 400 + r);
    Tensor got_c = Tensor::Zeros({6}, DType::kF32).value(), got_d = OnDevice(got_c);
    ASSERT_OK(cpu.SendAsync(mine, next));
    ASSERT_OK(cpu.Recv(got_c, prev));
    ASSERT_OK(cpu.WaitSends());
    const Tensor mine_d = OnDevice(mine);
    ASSERT_OK(dev.SendAsync(mine_d, next));
    ASSERT_OK(dev.Recv(got_d, prev));
    ASSERT_OK(dev.WaitSends());
    ExpectSame(got_d, got_c, group + " SendAsync + Recv ring");
    ExpectSame(got_d, Values(6, DType::kF32, seed + 400 + prev), group + " ring: the previous rank's values");

    // A blocking send from rank 0 to rank 1, and a deferred one that WaitSends issues alone.
    Tensor one_c = Values(2, DType::kF64, seed + 500), one_d = OnDevice(one_c);
    if (r == 0) {
      ASSERT_OK(cpu.Send(one_c, 1));
      ASSERT_OK(dev.Send(one_d, 1));
    }
    if (r == 1) {
      Tensor into_c = Tensor::Zeros({2}, DType::kF64).value(), into_d = OnDevice(into_c);
      ASSERT_OK(cpu.Recv(into_c, 0));
      ASSERT_OK(dev.Recv(into_d, 0));
      ExpectSame(into_d, into_c, group + " Send + Recv");
    }
  }
  ASSERT_OK(cpu.Barrier());
  ASSERT_OK(dev.Barrier());
  for (int k = 0; k < static_cast<int>(CommKind::kCount); ++k) {
    EXPECT_EQ(dev.stats().bytes[k], cpu.stats().bytes[k]) << group << " bytes of " << CommKindName(CommKind(k));
  }
}

// First, since it chooses each rank's device before the backend starts.
TEST(CudaHostOnCpu, TrainingDeviceIsTheGpuOfTheNodeLocalRank) {
  fake_cuda::SetDeviceCount(2);
  const absl::Status refused = PrepareTrainingDevice(Device::kCuda, MPI_COMM_WORLD);
  EXPECT_EQ(refused.code(), absl::StatusCode::kFailedPrecondition) << refused;
  EXPECT_NE(refused.message().find("4 ranks on this node but it has 2 GPU(s)"), std::string::npos) << refused;
  fake_cuda::SetDeviceCount(4);
  ASSERT_OK(PrepareTrainingDevice(Device::kCuda, MPI_COMM_WORLD));
  EXPECT_EQ(fake_cuda::CurrentDevice(), World().rank());  // one node: the local rank is the rank
}

TEST(CudaHostOnCpu, EveryGroupOfACudaMeshAgreesWithMpi) {
  ASSERT_EQ(World().size(), 4) << "run under mpirun -np 4";
  const Layout layout{/*dp=*/1, /*pp=*/2, /*tp=*/2};
  auto cpu = ProcessMesh::Create(World(), layout, Device::kCpu).value();
  auto dev = ProcessMesh::Create(World(), layout, Device::kCuda, /*timeout_s=*/60).value();
  ExpectSameCollectives(cpu->tp(), dev->tp(), 1000, "tp");
  ExpectSameCollectives(cpu->pp(), dev->pp(), 2000, "pp");
  ExpectSameCollectives(cpu->dp(), dev->dp(), 3000, "dp");
  ASSERT_EQ(cpu->pp_ends() == nullptr, dev->pp_ends() == nullptr);
  if (cpu->pp_ends() != nullptr) ExpectSameCollectives(*cpu->pp_ends(), *dev->pp_ends(), 4000, "pp_ends");
}

// Rank 0 calls an all-reduce that no other rank joins until rank 0 has timed out.
TEST(CudaHostOnCpu, APeerThatNeverCallsEndsTheCallWithinTheTimeout) {
  auto comm = NcclCommunicator::Create(MPI_COMM_WORLD, "hung_peer_group", /*timeout_s=*/0.5).value();
  Tensor t = OnDevice(Values(8, DType::kF32, 1));
  const int r = World().rank();
  int token = 0;
  if (r == 0) {
    const auto start = std::chrono::steady_clock::now();
    const absl::Status s = comm->AllReduce(t);
    const double waited = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    EXPECT_EQ(s.code(), absl::StatusCode::kDeadlineExceeded) << s;
    EXPECT_NE(s.message().find("hung_peer_group"), std::string::npos) << s;
    EXPECT_GE(waited, 0.5);
    EXPECT_LT(waited, 10.0);
    const absl::Status again = comm->Barrier();
    EXPECT_EQ(again.code(), absl::StatusCode::kFailedPrecondition) << again;
    EXPECT_NE(again.message().find("aborted"), std::string::npos) << again;
    for (int q = 1; q < World().size(); ++q) MPI_Send(&token, 1, MPI_INT, q, 99, MPI_COMM_WORLD);
  } else {
    // Then the others make the matching call, which rank 0's abandoned one completes.
    MPI_Recv(&token, 1, MPI_INT, 0, 99, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
    ASSERT_OK(comm->AllReduce(t));
  }
  MPI_Barrier(MPI_COMM_WORLD);
}

// An error NCCL reports asynchronously (what a lost peer causes), injected on every rank.
TEST(CudaHostOnCpu, AnAsynchronousNcclErrorIsReportedNamingTheCallAndGroup) {
  auto comm = NcclCommunicator::Create(MPI_COMM_WORLD, "lost_peer_group", /*timeout_s=*/60).value();
  Tensor t = OnDevice(Values(8, DType::kF32, 2));
  testing::nccl_on_cpu::FailNextCall(comm->comm());
  const auto start = std::chrono::steady_clock::now();
  const absl::Status s = comm->AllReduce(t);
  EXPECT_LT(std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count(), 10.0);
  EXPECT_EQ(s.code(), absl::StatusCode::kUnavailable) << s;
  EXPECT_NE(s.message().find("ncclAllReduce on the lost_peer_group group failed"), std::string::npos) << s;
  EXPECT_NE(s.message().find("peer was lost"), std::string::npos) << s;
  EXPECT_EQ(comm->AllReduce(t).code(), absl::StatusCode::kFailedPrecondition);
  MPI_Barrier(MPI_COMM_WORLD);
}

// The CUDA backend's caching allocator over the CPU's cudaMalloc: a freed block serves the next
// request of its rounded size; on out-of-memory the cache goes back to the device and the
// allocation is retried; past that, ResourceExhausted naming cudaMalloc.
TEST(CudaHostOnCpu, CachingAllocatorReusesBlocksAndRecoversFromOutOfMemory) {
  ASSERT_OK(cuda::EnsureInitialized());
  const int64_t mib = int64_t(1) << 20;
  void* first = nullptr;
  {
    Tensor a = Tensor::Empty({3 * mib / 4}, DType::kF32, Device::kCuda).value();  // 3 MiB, rounded to 4
    first = a.raw();
  }
  const fake_cuda::MemoryCounts before = fake_cuda::GetMemoryCounts();
  {
    Tensor b = Tensor::Empty({3 * mib / 4 - 100}, DType::kF32, Device::kCuda).value();
    EXPECT_EQ(b.raw(), first) << "the freed 4 MiB block again";
    EXPECT_EQ(fake_cuda::GetMemoryCounts().mallocs, before.mallocs);
  }
  // 2 MiB left on the device besides the cached block: a 6 MiB tensor fits only once that is freed.
  fake_cuda::SetCapacity(before.in_use + 2 * mib);
  {
    absl::StatusOr<Tensor> c = Tensor::Empty({6 * mib / 4}, DType::kF32, Device::kCuda);
    ASSERT_TRUE(c.ok()) << c.status();
    const fake_cuda::MemoryCounts after = fake_cuda::GetMemoryCounts();
    EXPECT_EQ(after.failed_mallocs, before.failed_mallocs + 1);
    EXPECT_GT(after.frees, before.frees);
    const cuda::MemoryInfo info = cuda::DeviceMemory().value();
    EXPECT_EQ(info.total_bytes, int64_t(before.in_use + 2 * mib));
    absl::StatusOr<Tensor> d = Tensor::Empty({6 * mib / 4}, DType::kF32, Device::kCuda);
    EXPECT_EQ(d.status().code(), absl::StatusCode::kResourceExhausted) << d.status();
    EXPECT_NE(d.status().message().find("cudaMalloc"), std::string::npos) << d.status();
  }
  fake_cuda::SetCapacity(size_t(1) << 30);
}

// The start-up check on a GPU: the stage's predicted peak against the device's free memory.
TEST(CudaHostOnCpu, MemoryCheckComparesThePredictionWithTheGpusFreeMemory) {
  RunConfig config = LoadRunConfig(std::string(LRKV_SOURCE_DIR) + "/configs/brown-tiny-lrkv.textproto").value();
  FillDefaults(config);
  config.mutable_train()->set_device(CUDA);
  fake_cuda::SetCapacity(size_t(256) << 20);  // less than the 1 GiB the model assumes for CUDA's own use
  const absl::Status refused = CheckMemoryFits(config, 0, MPI_COMM_WORLD);
  EXPECT_EQ(refused.code(), absl::StatusCode::kResourceExhausted) << refused;
  EXPECT_NE(refused.message().find("does not fit on its GPUs: pipeline stage 0 needs"), std::string::npos) << refused;
  config.mutable_train()->set_ignore_memory_check(true);
  EXPECT_TRUE(CheckMemoryFits(config, 0, MPI_COMM_WORLD).ok());
  config.mutable_train()->set_ignore_memory_check(false);
  fake_cuda::SetCapacity(size_t(64) << 30);
  const absl::Status fits = CheckMemoryFits(config, 0, MPI_COMM_WORLD);
  EXPECT_TRUE(fits.ok()) << fits;
  fake_cuda::SetCapacity(size_t(1) << 30);
}

}  // namespace
}  // namespace lrkv
