#include "audit/core/jsonl.hpp"

namespace enclave::audit::jsonl {

std::string LineError::describe() const {
  return "line " + std::to_string(line) + ": " + message;
}

Unexpected<LineError> line_error(std::size_t line, std::string message) {
  return {LineError{line, std::move(message)}};
}

Result<bool, LineError> read(ByteSpan text, const Visitor& visit) {
  std::string_view rest = as_chars(text);
  for (std::size_t line = 1; !rest.empty(); ++line) {
    auto end = rest.find('\n');
    if (end == std::string_view::npos) return true;
    if (end > kMaxLineSize) return line_error(line, "line longer than 1 MiB");
    auto record = nlohmann::json::parse(rest.substr(0, end), nullptr, false);
    rest.remove_prefix(end + 1);
    if (record.is_discarded() || !record.is_object()) return line_error(line, "not a JSON object");
    auto type = record.find("type");
    if (type == record.end() || !type->is_string())
      return line_error(line, "record without a type");
    if (auto visited = visit(line, record, type->get_ref<const std::string&>()); !visited) {
      return error_of(visited);
    }
  }
  return false;
}

}  // namespace enclave::audit::jsonl
