// JSON Lines records in files that others may have touched (the off-box copy, archive files):
// one place for splitting lines, the line-size limit, the "type" every record carries, and
// errors that name their line.
#pragma once

#include <cstddef>
#include <functional>
#include <string>

#include <nlohmann/json.hpp>

#include "common/bytes.hpp"
#include "common/result.hpp"

namespace enclave::audit::jsonl {

inline constexpr std::size_t kMaxLineSize = 1 << 20;

struct LineError {
  std::size_t line = 0;  // 1-based
  std::string message;

  std::string describe() const;  // "line 12: ..."
};

Unexpected<LineError> line_error(std::size_t line, std::string message);

using Visitor = std::function<Result<void, LineError>(
    std::size_t line, const nlohmann::json& record, const std::string& type)>;

// Calls visit for each complete line, which must be a JSON object with a string "type" and at
// most kMaxLineSize bytes. Returns whether a last line was cut short (no '\n': a write that
// died half-way); that line is not visited, and the caller decides whether it is acceptable.
Result<bool, LineError> read(ByteSpan text, const Visitor& visit);

}  // namespace enclave::audit::jsonl
