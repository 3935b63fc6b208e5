// Reading a request's params (a JSON object from the socket) into checked values: a missing
// or mistyped field is kInvalidArgument naming the field, and every size is capped before
// anything else looks at it.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/result.hpp"

namespace enclave::sessionmgr {

// A string of at most max bytes; absent or null: "" when not required, else an error.
Expected<std::string> text_param(const nlohmann::json& params, const char* key,
                                 std::size_t max = 256, bool required = true);

// A list of at most max_items strings of at most max bytes each; absent or null: empty.
Expected<std::vector<std::string>> strings_param(const nlohmann::json& params, const char* key,
                                                 std::size_t max_items, std::size_t max = 256);

}  // namespace enclave::sessionmgr
