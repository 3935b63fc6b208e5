// Times in the session manager's SQLite files: milliseconds since the epoch
// (to_unix_ms/from_unix_ms), NULL for a time that has not happened.
#pragma once

#include <optional>

#include "common/store.hpp"
#include "sessionmgr/core/lifecycle.hpp"

namespace enclave::sessionmgr {

inline std::optional<TimePoint> optional_time(const store::Statement& s, int col) {
  if (s.column_is_null(col)) return std::nullopt;
  return from_unix_ms(s.column_int64(col));
}

inline void bind_optional(store::Statement& s, int index, const std::optional<TimePoint>& t) {
  if (t) {
    s.bind(index, to_unix_ms(*t));
  } else {
    s.bind_null(index);
  }
}

}  // namespace enclave::sessionmgr
