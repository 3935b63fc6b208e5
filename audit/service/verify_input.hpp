// Gathers what the verifier judges (audit/core/verify.hpp) from the database and the off-box
// copies on disk. Used by `enclave-audit verify` and by the verification benchmark.
#pragma once

#include <filesystem>
#include <span>
#include <string>
#include <vector>

#include "audit/core/verify.hpp"
#include "audit/service/log_store.hpp"

namespace enclave::audit {

struct VerifyMaterial {
  verify::Input input;
  std::vector<verify::Finding> unreadable;  // off-box copies that could not be read
  std::vector<std::pair<std::string, std::uint64_t>> copies;  // each copy read: path, leaves
};

// input.key points at `key`, and input.describe reads rows from `store`: both must outlive the
// result. now_us and seal_interval_us are left for the caller.
Expected<VerifyMaterial> load_verify_material(LogStore& store, const note::Verifier& key,
                                              std::span<const std::filesystem::path> offbox);

}  // namespace enclave::audit
