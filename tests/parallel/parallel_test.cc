// The process mesh, the MPI communicator and the data-parallel helpers, under mpirun with 8 ranks
// (tests/CMakeLists.txt). Every rank runs every test; failures on any rank fail the test.
#include <mpi.h>

#include <numeric>

#include "gtest/gtest.h"
#include "parallel/data_parallel.h"
#include "parallel/mesh.h"

namespace lrkv {
namespace {

MpiCommunicator& World() {
  static MpiCommunicator world(MPI_COMM_WORLD, "world");
  return world;
}

Tensor Filled(int64_t n, double start, double step) {
  Tensor t = Tensor::Empty({n}, DType::kF64).value();
  for (int64_t i = 0; i < n; ++i) t.data<double>()[i] = start + step * i;
  return t;
}

// The world ranks in `comm`, in the group's rank order.
std::vector<int> Members(Communicator& comm) {
  Tensor mine = Tensor::Empty({1}, DType::kI32).value();
  mine.data<int32_t>()[0] = World().rank();
  Tensor all = Tensor::Empty({comm.size()}, DType::kI32).value();
  EXPECT_TRUE(comm.AllGather(mine, all).ok());
  return std::vector<int>(all.data<int32_t>(), all.data<int32_t>() + comm.size());
}

TEST(Mesh, TensorParallelRanksAreNeighboursAndGroupsAreOrthogonal) {
  ASSERT_EQ(World().size(), 8) << "run under mpirun -np 8";
  auto mesh = ProcessMesh::Create(World(), {2, 2, 2}).value();
  const int r = World().rank();
  EXPECT_EQ(mesh->tp_index(), r % 2);
  EXPECT_EQ(mesh->pp_index(), r / 2 % 2);
  EXPECT_EQ(mesh->dp_index(), r / 4);
  const int base_tp = r - r % 2;
  EXPECT_EQ(Members(mesh->tp()), (std::vector<int>{base_tp, base_tp + 1}));
  const int base_pp = r / 4 * 4 + r % 2;
  EXPECT_EQ(Members(mesh->pp()), (std::vector<int>{base_pp, base_pp + 2}));
  EXPECT_EQ(Members(mesh->dp()), (std::vector<int>{r % 4, r % 4 + 4}));
}

TEST(Mesh, BadLayoutsAreRefusedWithTheNumbers) {
  const absl::Status s = ValidateLayout({1, 1, 3}, 8);
  EXPECT_NE(s.message().find("layout dp1 x pp1 x tp3 needs 3 ranks but the job has 8"), std::string::npos) << s;
  EXPECT_NE(CheckSplit(2, 4, "layers").message().find("cannot split 2 layers into 4 pipeline stages"),
            std::string::npos);
  int b = 0, e = 0;
  SplitRange(7, 3, 0, &b, &e);
  EXPECT_EQ(std::make_pair(b, e), std::make_pair(0, 3));
  SplitRange(7, 3, 2, &b, &e);
  EXPECT_EQ(std::make_pair(b, e), std::make_pair(5, 7));
}

TEST(Communicator, CollectivesComputeAndCountBytes) {
  MpiCommunicator& w = World();
  const int n = w.size(), r = w.rank();
  w.stats().Reset();
  Tensor t = Filled(3, r, 1.0);  // (r, r+1, r+2)
  ASSERT_TRUE(w.AllReduce(t).ok());
  const double sum_r = n * (n - 1) / 2.0;
  EXPECT_DOUBLE_EQ(t.data<double>()[2], sum_r + 2 * n);
  Tensor m = Filled(1, r, 0);
  ASSERT_TRUE(w.AllReduce(m, ReduceOp::kMax).ok());
  EXPECT_DOUBLE_EQ(m.data<double>()[0], n - 1);
  Tensor gathered = Tensor::Empty({2 * n}, DType::kF64).value();
  ASSERT_TRUE(w.AllGather(Filled(2, 10 * r, 1), gathered).ok());
  EXPECT_DOUBLE_EQ(gathered.data<double>()[2 * (n - 1) + 1], 10 * (n - 1) + 1);
  Tensor scattered = Tensor::Empty({2}, DType::kF64).value();
  ASSERT_TRUE(w.ReduceScatter(Filled(2 * n, 0, 1), scattered).ok());  // every rank sends 0..2n-1
  EXPECT_DOUBLE_EQ(scattered.data<double>()[1], n * (2.0 * r + 1));
  Tensor b = Filled(4, r, 0);
  ASSERT_TRUE(w.Broadcast(b, 3).ok());
  EXPECT_DOUBLE_EQ(b.data<double>()[3], 3);
  // A ring: send to the right, receive from the left (even ranks send first: no deadlock).
  Tensor out = Filled(5, r, 0), in = Tensor::Empty({5}, DType::kF64).value();
  const int right = (r + 1) % n, left = (r + n - 1) % n;
  if (r % 2 == 0) {
    ASSERT_TRUE(w.Send(out, right).ok());
    ASSERT_TRUE(w.Recv(in, left).ok());
  } else {
    ASSERT_TRUE(w.Recv(in, left).ok());
    ASSERT_TRUE(w.Send(out, right).ok());
  }
  EXPECT_DOUBLE_EQ(in.data<double>()[4], left);
  const CommStats& s = w.stats();
  EXPECT_EQ(s.bytes[int(CommKind::kAllReduce)], 3 * 8 + 8);
  EXPECT_EQ(s.bytes[int(CommKind::kAllGather)], 2 * n * 8);
  EXPECT_EQ(s.bytes[int(CommKind::kReduceScatter)], 2 * n * 8);
  EXPECT_EQ(s.bytes[int(CommKind::kBroadcast)], 4 * 8);
  EXPECT_EQ(s.bytes[int(CommKind::kSendRecv)], 5 * 8);
}

TEST(DataParallel, BucketedAllReduceAveragesAndZero1MatchesIt) {
  MpiCommunicator& w = World();
  const int r = w.rank(), n = w.size();
  // Three "gradients" of awkward sizes; buckets of 16 bytes force several all-reduces.
  std::vector<Tensor> a = {Filled(3, r, 1), Filled(5, 2 * r, 1), Filled(1, -r, 0)};
  std::vector<Tensor> b = {Filled(3, r, 1), Filled(5, 2 * r, 1), Filled(1, -r, 0)};
  std::vector<Tensor*> pa, pb;
  for (auto& t : a) pa.push_back(&t);
  for (auto& t : b) pb.push_back(&t);
  w.stats().Reset();
  ASSERT_TRUE(AllReduceInBuckets(w, pa, 16, 1.0 / w.size()).ok());
  EXPECT_EQ(w.stats().calls[int(CommKind::kAllReduce)], 3);
  EXPECT_EQ(w.stats().bytes[int(CommKind::kAllReduce)], 9 * 8);
  const double mean_r = (n - 1) / 2.0;
  EXPECT_DOUBLE_EQ(a[1].data<double>()[4], 2 * mean_r + 4);
  // ZeRO-1: this rank's shard after reduce-scatter equals the all-reduced values there; after the
  // all-gather every element equals them.
  auto z = Zero1Partition::Create(pb, n, r).value();
  ASSERT_TRUE(z.ReduceScatterGradients(w, pb).ok());
  for (const auto& piece : z.pieces())
    for (int64_t i = piece.begin; i < piece.end; ++i)
      EXPECT_DOUBLE_EQ(b[piece.index].data<double>()[i], a[piece.index].data<double>()[i]);
  ASSERT_TRUE(z.AllGatherParameters(w, pb).ok());
  for (int k = 0; k < 3; ++k)
    for (int64_t i = 0; i < a[k].numel(); ++i) EXPECT_DOUBLE_EQ(b[k].data<double>()[i], a[k].data<double>()[i]);
}

}  // namespace
}  // namespace lrkv
