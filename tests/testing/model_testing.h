// The unit tests' tiny configs name only the fields a test is about; a real config must also state
// its activation and norm (unspecified enums are refused), which this fills in for them.
#pragma once

#include "model/config.pb.h"

namespace lrkv::testing {

inline void SetTestModelChoices(ModelConfig& m) {
  if (m.activation() == ACTIVATION_UNSPECIFIED) m.set_activation(GELU);
  if (m.norm() == NORM_UNSPECIFIED) m.set_norm(RMSNORM);
}

}  // namespace lrkv::testing
