// Which part of the model this process holds in a DP x PP x TP layout:
//  - tensor parallelism: attention heads, MLP columns and vocabulary rows are split over the `tp`
//    group (Megatron-LM style; see parallel/tensor_parallel.h and each layer's header);
//  - pipeline parallelism: the stage's contiguous layers [first_layer, end_layer); the first stage
//    holds the embedding, the last the final norm, LM head and loss.
// Data parallelism does not change what a process holds. The default places the whole model in
// one process.
#pragma once

#include "model/parameter.h"
#include "parallel/communicator.h"

namespace lrkv {

struct ModelPlacement {
  TpRank tp_rank;              // this rank's place in its TP group: which blocks of each parameter it holds
  Communicator* tp = nullptr;  // the group the TP all-reduces run over (its rank and size are tp_rank);
                               // null: none (one rank, or building a rank's part without running it)
  int first_layer = 0;
  int end_layer = -1;  // -1: model.n_layers
  bool first_stage = true;
  bool last_stage = true;
};

}  // namespace lrkv
