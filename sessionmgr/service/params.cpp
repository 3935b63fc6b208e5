#include "sessionmgr/service/params.hpp"

namespace enclave::sessionmgr {

namespace {

std::string quoted(const char* key) {
  return std::string("\"") + key + "\"";
}

}  // namespace

Expected<std::string> text_param(const nlohmann::json& params, const char* key, std::size_t max,
                                 bool required) {
  auto it = params.find(key);
  if (it == params.end() || it->is_null()) {
    if (!required) return std::string();
    return fail(Errc::kInvalidArgument, "missing " + quoted(key));
  }
  if (!it->is_string()) return fail(Errc::kInvalidArgument, quoted(key) + " must be a string");
  const auto& s = it->get_ref<const std::string&>();
  if (s.size() > max) {
    return fail(Errc::kInvalidArgument,
                quoted(key) + " is longer than " + std::to_string(max) + " bytes");
  }
  return s;
}

Expected<std::vector<std::string>> strings_param(const nlohmann::json& params, const char* key,
                                                 std::size_t max_items, std::size_t max) {
  auto it = params.find(key);
  if (it == params.end() || it->is_null()) return std::vector<std::string>();
  if (!it->is_array()) return fail(Errc::kInvalidArgument, quoted(key) + " must be a list");
  if (it->size() > max_items) {
    return fail(Errc::kInvalidArgument,
                quoted(key) + " has more than " + std::to_string(max_items) + " entries");
  }
  std::vector<std::string> out;
  for (const auto& item : *it) {
    if (!item.is_string()) {
      return fail(Errc::kInvalidArgument, quoted(key) + " must be a list of strings");
    }
    const auto& s = item.get_ref<const std::string&>();
    if (s.size() > max) {
      return fail(Errc::kInvalidArgument,
                  quoted(key) + " has an entry longer than " + std::to_string(max) + " bytes");
    }
    out.push_back(s);
  }
  return out;
}

}  // namespace enclave::sessionmgr
