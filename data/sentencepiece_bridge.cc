#include "data/sentencepiece_bridge.h"

#include <sentencepiece_processor.h>
#include <sentencepiece_trainer.h>

#include <unordered_map>

namespace lrkv::data::internal {

std::string SpTrain(const std::map<std::string, std::string>& args) {
  const std::unordered_map<std::string, std::string> kwargs(args.begin(), args.end());
  const sentencepiece::util::Status status = sentencepiece::SentencePieceTrainer::Train(kwargs);
  return status.ok() ? std::string() : status.ToString();
}

struct SpModel::Impl {
  sentencepiece::SentencePieceProcessor processor;
};

SpModel::SpModel(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
SpModel::~SpModel() = default;

std::unique_ptr<SpModel> SpModel::Load(const std::string& model_file, std::string* error) {
  auto impl = std::make_unique<Impl>();
  const sentencepiece::util::Status status = impl->processor.Load(model_file);
  if (!status.ok()) {
    *error = status.ToString();
    return nullptr;
  }
  return std::unique_ptr<SpModel>(new SpModel(std::move(impl)));
}

bool SpModel::Encode(std::string_view text, std::vector<int32_t>* ids, std::string* error) const {
  std::vector<int> out;
  const sentencepiece::util::Status status = impl_->processor.Encode(text, &out);
  if (!status.ok()) {
    *error = status.ToString();
    return false;
  }
  ids->assign(out.begin(), out.end());
  return true;
}

bool SpModel::Decode(const std::vector<int32_t>& ids, std::string* text, std::string* error) const {
  const std::vector<int> in(ids.begin(), ids.end());
  const sentencepiece::util::Status status = impl_->processor.Decode(in, text);
  if (!status.ok()) {
    *error = status.ToString();
    return false;
  }
  return true;
}

int SpModel::vocab_size() const { return impl_->processor.GetPieceSize(); }
int SpModel::bos_id() const { return impl_->processor.bos_id(); }
int SpModel::eos_id() const { return impl_->processor.eos_id(); }
int SpModel::unk_id() const { return impl_->processor.unk_id(); }
int SpModel::pad_id() const { return impl_->processor.pad_id(); }

}  // namespace lrkv::data::internal
