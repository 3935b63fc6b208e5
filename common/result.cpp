#include "common/result.hpp"

namespace enclave {

const char* errc_name(Errc c) {
  switch (c) {
    case Errc::kInvalidArgument:
      return "invalid argument";
    case Errc::kNotFound:
      return "not found";
    case Errc::kAlreadyExists:
      return "already exists";
    case Errc::kCorrupt:
      return "corrupt";
    case Errc::kIo:
      return "I/O error";
    case Errc::kNoSpace:
      return "no space left";
    case Errc::kPermission:
      return "permission denied";
    case Errc::kUnavailable:
      return "unavailable";
    case Errc::kTimeout:
      return "timed out";
    case Errc::kConflict:
      return "conflict";
    case Errc::kInternal:
      return "internal error";
  }
  return "unknown";
}

namespace {
constexpr Errc kAllErrc[] = {Errc::kInvalidArgument, Errc::kNotFound,    Errc::kAlreadyExists,
                             Errc::kCorrupt,         Errc::kIo,          Errc::kNoSpace,
                             Errc::kPermission,      Errc::kUnavailable, Errc::kTimeout,
                             Errc::kConflict,        Errc::kInternal};
}  // namespace

const char* errc_id(Errc c) {
  switch (c) {
    case Errc::kInvalidArgument:
      return "invalid_argument";
    case Errc::kNotFound:
      return "not_found";
    case Errc::kAlreadyExists:
      return "already_exists";
    case Errc::kCorrupt:
      return "corrupt";
    case Errc::kIo:
      return "io";
    case Errc::kNoSpace:
      return "no_space";
    case Errc::kPermission:
      return "permission";
    case Errc::kUnavailable:
      return "unavailable";
    case Errc::kTimeout:
      return "timeout";
    case Errc::kConflict:
      return "conflict";
    case Errc::kInternal:
      return "internal";
  }
  return "internal";
}

std::optional<Errc> errc_from_id(std::string_view id) {
  for (Errc c : kAllErrc) {
    if (id == errc_id(c)) return c;
  }
  return std::nullopt;
}

}  // namespace enclave
