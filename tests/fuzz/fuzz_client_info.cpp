// Client Info PDU decoder, encoder and credential rewrite. Oracles: whatever decodes encodes
// back to exactly the input (the string lengths, terminators and extra info are all kept);
// a Unicode PDU rewrites, and the rewrite decodes with the injected credentials,
// INFO_AUTOLOGON set and every other field unchanged.
#include <cstdint>
#include <cstdlib>

#include "gateway/core/client_info.hpp"

using namespace enclave;
using namespace enclave::gateway;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const ByteSpan in(data, size);
  auto info = decode_client_info(in);
  if (!info) {
    (void)info.error().describe();
    if (rewrite_client_info(in, "D", "u", "p")) __builtin_trap();
    return 0;
  }
  auto encoded = encode_client_info(*info);
  if (!encoded || *encoded != Bytes(in.begin(), in.end())) __builtin_trap();

  auto rewritten = rewrite_client_info(in, "DESKTOPS", "svc-user", "pässwörd");
  if ((info->flags & kInfoUnicode) == 0) {
    if (rewritten) __builtin_trap();
    return 0;
  }
  if (!rewritten) __builtin_trap();
  auto again = decode_client_info(*rewritten);
  if (!again) __builtin_trap();
  if (again->domain != "DESKTOPS" || again->user_name != "svc-user" ||
      again->password != "pässwörd") {
    __builtin_trap();
  }
  if (again->flags != ((info->flags | kInfoAutologon) & ~kInfoPasswordIsScPin) ||
      again->code_page != info->code_page || again->security_flags != info->security_flags ||
      again->security_flags_hi != info->security_flags_hi ||
      again->alternate_shell != info->alternate_shell || again->working_dir != info->working_dir ||
      again->extra_info != info->extra_info) {
    __builtin_trap();
  }
  return 0;
}
