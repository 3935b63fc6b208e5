#include "gateway/core/client_info.hpp"

#include <array>
#include <utility>

namespace enclave::gateway {

namespace {

constexpr std::string_view kPdu = "Client Info PDU";

// TS_SECURITY_HEADER: flags (2) + flagsHi (2).
constexpr std::size_t kSecurityHeaderSize = 2 + 2;
// CodePage (4) + flags (4) + cbDomain, cbUserName, cbPassword, cbAlternateShell,
// cbWorkingDir (2 each).
constexpr std::size_t kInfoFixedSize = 4 + 4 + 5 * 2;

constexpr std::array<std::string_view, 5> kFieldNames = {"Domain", "UserName", "Password",
                                                         "AlternateShell", "WorkingDir"};
constexpr std::array<std::string_view, 5> kLengthNames = {"cbDomain", "cbUserName", "cbPassword",
                                                          "cbAlternateShell", "cbWorkingDir"};

// Wipes a byte buffer's whole allocation and leaves it empty.
void wipe_bytes(Bytes& b) {
  b.resize(b.capacity());
  if (!b.empty()) secure_wipe(b.data(), b.size());
  b.clear();
}

PduResult<std::string> read_string(PduReader& r, std::size_t cb, bool unicode,
                                   std::string_view field) {
  if (cb > kMaxInfoStringBytes) return fail(too_large(kPdu, field, cb, kMaxInfoStringBytes));
  if (unicode && cb % 2 != 0) return fail(invalid_field(kPdu, field, "odd UTF-16 length"));
  auto chars = r.take(cb, field);
  if (!chars) return error_of(chars);
  const std::size_t terminator_size = unicode ? 2 : 1;
  auto terminator = r.take(terminator_size, field);
  if (!terminator) return error_of(terminator);
  for (std::uint8_t b : *terminator) {
    if (b != 0) return fail(invalid_field(kPdu, field, "not null-terminated"));
  }
  if (!unicode) return std::string(as_chars(*chars));
  return utf16le_to_utf8(*chars, kPdu, field);
}

}  // namespace

void wipe_string(std::string& s) {
  s.resize(s.capacity());
  if (!s.empty()) secure_wipe(s.data(), s.size());
  s.clear();
}

ClientInfo::~ClientInfo() {
  wipe_string(password);
}

PduResult<ClientInfo> decode_client_info(ByteSpan user_data) {
  PduReader r(user_data, kPdu);
  if (auto ok = r.ensure(kSecurityHeaderSize + kInfoFixedSize, "TS_INFO_PACKET"); !ok) {
    return error_of(ok);
  }
  ClientInfo info;
  info.security_flags = r.u16le("flags").value();
  info.security_flags_hi = r.u16le("flagsHi").value();
  if ((info.security_flags & kSecEncrypt) != 0) {
    return fail(
        invalid_field(kPdu, "flags", "legacy RDP encryption (SEC_ENCRYPT) refused: TLS only"));
  }
  if ((info.security_flags & kSecInfoPkt) == 0) {
    return fail(invalid_field(kPdu, "flags", "SEC_INFO_PKT not set"));
  }
  info.code_page = r.u32le("CodePage").value();
  info.flags = r.u32le("flags").value();
  std::array<std::size_t, 5> cb{};
  for (std::size_t i = 0; i < cb.size(); ++i) {
    cb[i] = r.u16le(kLengthNames[i]).value();
  }
  const bool unicode = (info.flags & kInfoUnicode) != 0;
  std::array<std::string*, 5> out = {&info.domain, &info.user_name, &info.password,
                                     &info.alternate_shell, &info.working_dir};
  for (std::size_t i = 0; i < cb.size(); ++i) {
    auto s = read_string(r, cb[i], unicode, kFieldNames[i]);
    if (!s) return error_of(s);
    // Reserve first so that the password is never copied through a buffer that is freed
    // unwiped.
    out[i]->reserve(s->size());
    out[i]->assign(*s);
    wipe_string(*s);
  }
  const ByteSpan extra = r.rest();
  info.extra_info.assign(extra.begin(), extra.end());
  return info;
}

PduResult<Bytes> encode_client_info(const ClientInfo& info) {
  const bool unicode = (info.flags & kInfoUnicode) != 0;
  const std::array<const std::string*, 5> strings = {&info.domain, &info.user_name, &info.password,
                                                     &info.alternate_shell, &info.working_dir};
  std::array<Bytes, 5> encoded;
  struct Wiper {
    std::array<Bytes, 5>& e;
    ~Wiper() {
      for (auto& b : e) wipe_bytes(b);
    }
  } wiper{encoded};
  for (std::size_t i = 0; i < strings.size(); ++i) {
    if (unicode) {
      encoded[i] = utf8_to_utf16le(*strings[i]);
    } else {
      const ByteSpan raw = as_bytes(*strings[i]);
      encoded[i].assign(raw.begin(), raw.end());
    }
    if (encoded[i].size() > kMaxInfoStringBytes) {
      return fail(too_large(kPdu, kFieldNames[i], encoded[i].size(), kMaxInfoStringBytes));
    }
  }
  std::size_t total = kSecurityHeaderSize + kInfoFixedSize + info.extra_info.size();
  for (const auto& e : encoded) total += e.size() + (unicode ? 2 : 1);

  Bytes out;
  out.reserve(total);  // one allocation: the password is never left behind in a freed buffer
  PduWriter w(out);
  w.u16le(info.security_flags);
  w.u16le(info.security_flags_hi);
  w.u32le(info.code_page);
  w.u32le(info.flags);
  for (const auto& e : encoded) w.u16le(static_cast<std::uint16_t>(e.size()));
  for (const auto& e : encoded) {
    w.put(e);
    w.u8(0);
    if (unicode) w.u8(0);
  }
  w.put(info.extra_info);
  return out;
}

PduResult<Bytes> rewrite_client_info(ByteSpan user_data, std::string_view domain,
                                     std::string_view user_name, std::string_view password) {
  auto decoded = decode_client_info(user_data);
  if (!decoded) return error_of(decoded);
  ClientInfo& info = *decoded;
  if ((info.flags & kInfoUnicode) == 0) {
    return fail(invalid_field(kPdu, "flags", "INFO_UNICODE required to inject credentials"));
  }
  info.domain.assign(domain);
  info.user_name.assign(user_name);
  wipe_string(info.password);
  info.password.reserve(password.size());
  info.password.assign(password);
  info.flags |= kInfoAutologon;
  info.flags &= ~kInfoPasswordIsScPin;
  return encode_client_info(info);
}

}  // namespace enclave::gateway
