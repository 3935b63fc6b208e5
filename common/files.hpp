// Whole-file reads and writes for state and reports: a write lands whole or not at all, so a
// crash or a full disk never leaves a half-written file where a reader expects a good one.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>

#include "common/result.hpp"

namespace enclave {

// kNotFound when missing, kInvalidArgument when larger than max_bytes (checked before reading).
Expected<std::string> read_file(const std::filesystem::path& path,
                                std::uint64_t max_bytes = UINT64_MAX);

// Temp file, fsync, rename, fsync of the directory. kNoSpace when the disk is full (the old
// file, if any, is left as it was).
Status write_file_atomically(const std::filesystem::path& path, std::string_view content,
                             mode_t mode = 0644);

// A path from policy: absolute as written, otherwise under the state directory.
std::filesystem::path under_state_dir(const std::filesystem::path& state_dir,
                                      const std::string& path);

}  // namespace enclave
