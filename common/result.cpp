#include "common/result.hpp"

namespace enclave {

const char* errc_name(Errc c) {
  switch (c) {
    case Errc::kInvalidArgument: return "invalid argument";
    case Errc::kNotFound: return "not found";
    case Errc::kAlreadyExists: return "already exists";
    case Errc::kCorrupt: return "corrupt";
    case Errc::kIo: return "I/O error";
    case Errc::kNoSpace: return "no space left";
    case Errc::kPermission: return "permission denied";
    case Errc::kUnavailable: return "unavailable";
    case Errc::kTimeout: return "timed out";
    case Errc::kConflict: return "conflict";
    case Errc::kInternal: return "internal error";
  }
  return "unknown";
}

}  // namespace enclave
