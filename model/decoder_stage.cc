#include "model/decoder_stage.h"

#include "runtime/status.h"

namespace lrkv {

StageBoundary DecoderStage::Boundary(int micro) const {
  const ModelConfig& c = model_.config();
  return {{rows_(micro), c.seq_len(), c.d_model()}, model_.params().dtype(), model_.params().device()};
}

absl::Status DecoderStage::Forward(int micro, const Tensor& input, Tensor& output) {
  const int64_t rows = rows_(micro), seq = model_.config().seq_len();
  // Token ids stay on the host on every device: the ops check them there and copy them over.
  LRKV_TRY_ASSIGN(Tensor tokens, Tensor::Empty({rows, seq}, DType::kI32));
  LRKV_TRY_ASSIGN(Tensor targets, Tensor::Empty({rows, seq}, DType::kI32));
  batch_(micro, tokens.data<int32_t>(), targets.data<int32_t>());
  DecoderActivations a;
  LRKV_TRY_ASSIGN(const double loss_sum, model_.ForwardStage(tokens, input, targets, a, output));
  loss_sum_ += loss_sum;
  if (backward_) saved_[micro] = std::move(a);
  return absl::OkStatus();
}

absl::Status DecoderStage::Backward(int micro, const Tensor& doutput, Tensor& dinput) {
  auto it = saved_.find(micro);
  LRKV_REQUIRE(it != saved_.end(), "pipeline stage: backward of micro-batch ", micro, " before its forward");
  LRKV_TRY(model_.BackwardStage(it->second, doutput, loss_scale_, dinput));
  saved_.erase(it);
  return absl::OkStatus();
}

}  // namespace lrkv
