// Signed notes (c2sp.org/signed-note) and checkpoints (c2sp.org/tlog-checkpoint). The note
// parser follows golang.org/x/mod/sumdb/note (Open): the text is split at the last "\n\n",
// every line after it is a signature line, and anything else is malformed. It is stricter in
// two places: base64 must be canonical (so format_note(parse_note(x)) == x), and every
// signature by the verifier's key must verify, not only the first.
#include "audit/core/note.hpp"

#include "common/ed25519.hpp"

#include <fcntl.h>
#include <limits.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/buffer.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include <algorithm>
#include <array>
#include <cassert>
#include <cerrno>
#include <charconv>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <utility>

namespace enclave::audit::note {
namespace {

using Kind = NoteError::Kind;

constexpr std::string_view kSignaturePrefix = "\xe2\x80\x94 ";  // U+2014 em dash, space
constexpr std::uint8_t kAlgEd25519 = 0x01;
constexpr std::size_t kEd25519KeySize = 32;
constexpr std::size_t kEd25519SignatureSize = 64;
constexpr std::size_t kKeyIdSize = 4;
// A PKCS#8 PEM Ed25519 key is about 120 bytes; anything much larger is not one.

Unexpected<NoteError> note_error(Kind kind, std::string message) {
  return {NoteError{kind, std::move(message)}};
}

struct PkeyFree {
  void operator()(EVP_PKEY* p) const { EVP_PKEY_free(p); }
};
struct MdCtxFree {
  void operator()(EVP_MD_CTX* p) const { EVP_MD_CTX_free(p); }
};
struct BioFree {
  void operator()(BIO* p) const { BIO_free(p); }
};
using PkeyPtr = std::unique_ptr<EVP_PKEY, PkeyFree>;
using MdCtxPtr = std::unique_ptr<EVP_MD_CTX, MdCtxFree>;
using BioPtr = std::unique_ptr<BIO, BioFree>;

class UniqueFd {
 public:
  explicit UniqueFd(int fd) : fd_(fd) {}
  UniqueFd(const UniqueFd&) = delete;
  UniqueFd& operator=(const UniqueFd&) = delete;
  ~UniqueFd() {
    if (fd_ >= 0) ::close(fd_);
  }
  int get() const { return fd_; }
  // Closes now so that the caller sees the error close() reports.
  int close() { return ::close(std::exchange(fd_, -1)); }

 private:
  int fd_;
};

// OpenSSL calls that only fail when memory runs out; a signer that cannot sign has no
// useful way to go on.
void require(bool ok, const char* what) {
  if (!ok) {
    std::fprintf(stderr, "fatal: OpenSSL %s failed\n", what);
    std::abort();
  }
}

// Untrusted text for an error message: bounded, with bytes outside printable ASCII escaped
// so that a crafted note cannot forge log lines.
std::string printable(std::string_view s, std::size_t max_shown = 64) {
  std::string out = "\"";
  for (std::size_t i = 0; i < s.size() && i < max_shown; ++i) {
    auto c = static_cast<unsigned char>(s[i]);
    if (c < 0x20 || c >= 0x7f || c == '"' || c == '\\') {
      char buf[5];
      std::snprintf(buf, sizeof buf, "\\x%02x", c);
      out += buf;
    } else {
      out.push_back(static_cast<char>(c));
    }
  }
  if (s.size() > max_shown) out += "...";
  out.push_back('"');
  return out;
}

std::string printable_path(const std::filesystem::path& path) {
  return printable(path.native(), PATH_MAX);
}

std::string hex32(std::uint32_t v) {
  char buf[9];
  std::snprintf(buf, sizeof buf, "%08x", v);
  return buf;
}

// Unicode White_Space, as Go's unicode.IsSpace (the reference implementation's test).
bool is_unicode_space(char32_t cp) {
  return (cp >= 0x09 && cp <= 0x0d) || cp == 0x20 || cp == 0x85 || cp == 0xa0 || cp == 0x1680 ||
         (cp >= 0x2000 && cp <= 0x200a) || cp == 0x2028 || cp == 0x2029 || cp == 0x202f ||
         cp == 0x205f || cp == 0x3000;
}

// Key names are non-empty UTF-8 without Unicode spaces or '+' (signed-note); control
// characters are refused too, since a note may not contain them.
bool is_valid_key_name(std::string_view name) {
  if (name.empty()) return false;
  for (std::size_t i = 0; i < name.size();) {
    auto cp = utf8_next(name, i);
    if (!cp || *cp < 0x20 || *cp == '+' || is_unicode_space(*cp)) return false;
  }
  return true;
}

std::string format_verifier_key(std::string_view name, std::uint32_t key_id, ByteSpan public_key) {
  Bytes encoded{kAlgEd25519};
  encoded.insert(encoded.end(), public_key.begin(), public_key.end());
  return std::string(name) + "+" + hex32(key_id) + "+" + base64_encode(encoded);
}

bool ed25519_verify(ByteSpan public_key, std::string_view message, ByteSpan signature) {
  if (public_key.size() != kEd25519KeySize || signature.size() != kEd25519SignatureSize) {
    return false;
  }
  PkeyPtr key(
      EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, nullptr, public_key.data(), public_key.size()));
  MdCtxPtr ctx(EVP_MD_CTX_new());
  bool ok =
      key && ctx && EVP_DigestVerifyInit(ctx.get(), nullptr, nullptr, nullptr, key.get()) == 1 &&
      EVP_DigestVerify(ctx.get(), signature.data(), signature.size(),
                       reinterpret_cast<const unsigned char*>(message.data()), message.size()) == 1;
  // A failed verification leaves entries on the thread's error queue; they are not errors
  // anyone else should see.
  if (!ok) ERR_clear_error();
  return ok;
}

Result<Signature, NoteError> parse_signature_line(std::string_view line, std::size_t line_no) {
  auto where = "line " + std::to_string(line_no) + ": ";
  if (!line.starts_with(kSignaturePrefix)) {
    return note_error(Kind::kMalformed,
                      where + "expected a signature line starting with an em dash and a space");
  }
  line.remove_prefix(kSignaturePrefix.size());
  auto space = line.find(' ');
  if (space == std::string_view::npos) {
    return note_error(Kind::kMalformed, where + "no space between key name and signature");
  }
  auto name = line.substr(0, space);
  auto encoded = line.substr(space + 1);
  if (!is_valid_key_name(name)) {
    return note_error(Kind::kMalformed,
                      where + "key name " + printable(name) +
                          " is empty or contains a space, '+' or a control character");
  }
  auto raw = base64_decode(encoded);
  if (!raw) return note_error(Kind::kMalformed, where + "signature is not canonical base64");
  if (raw->size() <= kKeyIdSize) {
    return note_error(Kind::kMalformed, where + "signature is " + std::to_string(raw->size()) +
                                            " bytes, shorter than a key id and a signature");
  }
  ReadCursor cursor(*raw);
  Signature sig;
  sig.key_name = std::string(name);
  sig.key_id = *cursor.u32be();
  auto rest = *cursor.take(cursor.remaining());
  sig.signature.assign(rest.begin(), rest.end());
  return sig;
}

bool is_decimal(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

Unexpected<NoteError> checkpoint_error(std::size_t line_no, const char* what,
                                       const std::string& detail) {
  return note_error(Kind::kBadCheckpoint,
                    "checkpoint line " + std::to_string(line_no) + " (" + what + "): " + detail);
}

// Maps errno from open() of a key file to the driver error codes.
Error file_error(int err, const std::filesystem::path& path, std::string_view action) {
  std::string where = "private key file " + printable_path(path) + ": ";
  switch (err) {
    case ENOENT:
      return {Errc::kNotFound, where + "does not exist"};
    case EEXIST:
      return {Errc::kAlreadyExists, where + "already exists; refusing to overwrite a key"};
    case EACCES:
    case EPERM:
      return {Errc::kPermission, where + "permission denied to " + std::string(action)};
    case ENOSPC:
    case EDQUOT:
      return {Errc::kNoSpace, where + "no space left to " + std::string(action)};
    default:
      return {Errc::kIo, where + "cannot " + std::string(action) + ": " + std::strerror(err)};
  }
}

}  // namespace

std::string NoteError::describe() const {
  const char* what = "note error";
  switch (kind) {
    case Kind::kTooLarge:
      what = "note too large";
      break;
    case Kind::kMalformed:
      what = "malformed note";
      break;
    case Kind::kNotUtf8:
      what = "note is not UTF-8";
      break;
    case Kind::kBadKey:
      what = "bad key";
      break;
    case Kind::kUnknownKey:
      what = "unknown key";
      break;
    case Kind::kBadSignature:
      what = "bad signature";
      break;
    case Kind::kBadCheckpoint:
      what = "bad checkpoint";
      break;
  }
  return std::string(what) + ": " + message;
}

Result<Note, NoteError> parse_note(ByteSpan bytes) {
  if (bytes.size() > kMaxNoteSize) {
    return note_error(Kind::kTooLarge, "note is " + std::to_string(bytes.size()) +
                                           " bytes, the limit is " + std::to_string(kMaxNoteSize));
  }
  std::string_view text = as_chars(bytes);
  std::size_t line_no = 1;
  for (std::size_t i = 0; i < text.size();) {
    std::size_t at = i;
    auto cp = utf8_next(text, i);
    if (!cp) {
      return note_error(Kind::kNotUtf8, "line " + std::to_string(line_no) +
                                            ": invalid UTF-8 at byte " + std::to_string(at));
    }
    if (*cp == '\n') {
      ++line_no;
    } else if (*cp < 0x20) {
      return note_error(Kind::kMalformed,
                        "line " + std::to_string(line_no) + ": control character " +
                            printable(text.substr(at, 1)) + " at byte " + std::to_string(at));
    }
  }

  auto split = text.rfind("\n\n");
  if (split == std::string_view::npos) {
    return note_error(Kind::kMalformed, "no blank line between the text and the signatures");
  }
  Note note;
  note.body = std::string(text.substr(0, split + 1));
  auto signatures = text.substr(split + 2);
  if (signatures.empty()) {
    return note_error(Kind::kMalformed, "no signature lines after the last blank line");
  }
  // The blank line follows the body's lines; the first signature line follows it.
  line_no = static_cast<std::size_t>(std::count(note.body.begin(), note.body.end(), '\n')) + 2;
  if (signatures.back() != '\n') {
    auto last =
        line_no + static_cast<std::size_t>(std::count(signatures.begin(), signatures.end(), '\n'));
    return note_error(Kind::kMalformed,
                      "line " + std::to_string(last) + ": signature line does not end in newline");
  }
  while (!signatures.empty()) {
    if (note.signatures.size() == kMaxSignatures) {
      return note_error(Kind::kMalformed,
                        "more than " + std::to_string(kMaxSignatures) + " signatures");
    }
    auto end = signatures.find('\n');
    auto sig = parse_signature_line(signatures.substr(0, end), line_no);
    if (!sig) return fail(sig.error());
    note.signatures.push_back(std::move(*sig));
    signatures.remove_prefix(end + 1);
    ++line_no;
  }
  return note;
}

std::string format_note(const Note& note) {
  std::string out = note.body;
  out.push_back('\n');
  for (const auto& sig : note.signatures) {
    Bytes raw;
    WriteCursor w(raw);
    w.u32be(sig.key_id);
    w.put(sig.signature);
    out += kSignaturePrefix;
    out += sig.key_name;
    out.push_back(' ');
    out += base64_encode(raw);
    out.push_back('\n');
  }
  return out;
}

std::uint32_t ed25519_key_id(std::string_view key_name, ByteSpan public_key) {
  Bytes input(key_name.begin(), key_name.end());
  input.push_back('\n');
  input.push_back(kAlgEd25519);
  input.insert(input.end(), public_key.begin(), public_key.end());
  std::array<std::uint8_t, EVP_MAX_MD_SIZE> digest{};
  unsigned int digest_size = 0;
  require(EVP_Digest(input.data(), input.size(), digest.data(), &digest_size, EVP_sha256(),
                     nullptr) == 1,
          "SHA-256");
  ReadCursor cursor(ByteSpan(digest.data(), digest_size));
  return *cursor.u32be();
}

Result<Verifier, NoteError> Verifier::parse(std::string_view verifier_key) {
  auto name_end = verifier_key.find('+');
  if (name_end == std::string_view::npos) {
    return note_error(Kind::kBadKey, "verifier key has no '+' after the key name");
  }
  auto name = verifier_key.substr(0, name_end);
  auto rest = verifier_key.substr(name_end + 1);
  auto id_end = rest.find('+');
  if (id_end == std::string_view::npos) {
    return note_error(Kind::kBadKey, "verifier key has no '+' after the key id");
  }
  auto id_hex = rest.substr(0, id_end);
  auto key_b64 = rest.substr(id_end + 1);
  if (!is_valid_key_name(name)) {
    return note_error(Kind::kBadKey,
                      "verifier key name " + printable(name) +
                          " is empty or contains a space, '+' or a control character");
  }
  auto id_bytes = id_hex.size() == 2 * kKeyIdSize ? hex_decode(id_hex) : std::nullopt;
  if (!id_bytes) {
    return note_error(Kind::kBadKey,
                      "verifier key id " + printable(id_hex) + " is not 8 hexadecimal digits");
  }
  auto key = base64_decode(key_b64);
  if (!key || key->empty()) {
    return note_error(Kind::kBadKey, "verifier public key is not canonical base64");
  }
  if ((*key)[0] != kAlgEd25519) {
    return note_error(Kind::kBadKey, "verifier key algorithm 0x" +
                                         hex_encode(ByteSpan(*key).first(1)) +
                                         " is not Ed25519 (0x01)");
  }
  if (key->size() != 1 + kEd25519KeySize) {
    return note_error(Kind::kBadKey, "Ed25519 public key is " + std::to_string(key->size() - 1) +
                                         " bytes, not 32");
  }
  Verifier v;
  v.name_ = std::string(name);
  v.key_id_ = *ReadCursor(*id_bytes).u32be();
  v.public_key_.assign(key->begin() + 1, key->end());
  auto computed = ed25519_key_id(v.name_, v.public_key_);
  if (computed != v.key_id_) {
    return note_error(Kind::kBadKey, "verifier key id " + hex32(v.key_id_) +
                                         " does not match the key's id " + hex32(computed));
  }
  return v;
}

std::string Verifier::verifier_key() const {
  return format_verifier_key(name_, key_id_, public_key_);
}

Result<void, NoteError> Verifier::verify(const Note& note) const {
  bool found = false;
  for (const auto& sig : note.signatures) {
    if (sig.key_name != name_ || sig.key_id != key_id_) continue;
    found = true;
    if (!ed25519_verify(public_key_, note.body, sig.signature)) {
      return note_error(Kind::kBadSignature,
                        "signature by " + name_ + "+" + hex32(key_id_) + " does not verify");
    }
  }
  if (!found) {
    return note_error(Kind::kUnknownKey, "none of the note's " +
                                             std::to_string(note.signatures.size()) +
                                             " signatures is by " + name_ + "+" + hex32(key_id_));
  }
  return {};
}

struct Signer::Impl {
  PkeyPtr key;
};

Signer::Signer(std::unique_ptr<Impl> impl, std::string name)
    : impl_(std::move(impl)), name_(std::move(name)) {
  std::size_t size = kEd25519KeySize;
  public_key_.resize(kEd25519KeySize);
  require(EVP_PKEY_get_raw_public_key(impl_->key.get(), public_key_.data(), &size) == 1 &&
              size == kEd25519KeySize,
          "Ed25519 public key export");
  key_id_ = ed25519_key_id(name_, public_key_);
}

Signer::Signer(Signer&&) noexcept = default;
Signer& Signer::operator=(Signer&&) noexcept = default;
Signer::~Signer() = default;  // EVP_PKEY_free wipes the private key

Expected<Signer> Signer::generate(std::string key_name) {
  if (!is_valid_key_name(key_name)) {
    return fail(Errc::kInvalidArgument,
                "key name " + printable(key_name) +
                    " must be non-empty without spaces, '+' or control characters");
  }
  PkeyPtr key(EVP_PKEY_Q_keygen(nullptr, nullptr, "ED25519"));
  if (!key) {
    ERR_clear_error();
    return fail(Errc::kInternal, "Ed25519 key generation failed");
  }
  return Signer(std::make_unique<Impl>(Impl{std::move(key)}), std::move(key_name));
}

Expected<Signer> Signer::load_pem(const std::filesystem::path& path, std::string key_name) {
  if (!is_valid_key_name(key_name)) {
    return fail(Errc::kInvalidArgument,
                "key name " + printable(key_name) +
                    " must be non-empty without spaces, '+' or control characters");
  }
  // The checks every Ed25519 key file the project reads gets: owner-only, bounded, wiped.
  auto key = crypto::load_ed25519_private_key(path);
  if (!key) return error_of(key);
  return Signer(std::make_unique<Impl>(Impl{PkeyPtr(key->release())}), std::move(key_name));
}

Status Signer::save_pem(const std::filesystem::path& path) const {
  BioPtr bio(BIO_new(BIO_s_mem()));
  require(bio != nullptr, "BIO allocation");
  // No cipher: PKCS#8 PrivateKeyInfo, "BEGIN PRIVATE KEY".
  require(PEM_write_bio_PrivateKey(bio.get(), impl_->key.get(), nullptr, nullptr, 0, nullptr,
                                   nullptr) == 1,
          "PEM encoding");
  BUF_MEM* pem = nullptr;
  BIO_get_mem_ptr(bio.get(), &pem);
  struct WipeOnExit {
    BUF_MEM* buf;
    ~WipeOnExit() { secure_wipe(buf->data, buf->max); }
  } wipe{pem};

  UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600));
  if (fd.get() < 0) return fail(file_error(errno, path, "create it"));
  // The umask may have narrowed the mode; the contract is exactly owner read-write.
  auto failed = [&](int err, std::string_view action) {
    fd.close();
    ::unlink(path.c_str());
    return fail(file_error(err, path, action));
  };
  if (::fchmod(fd.get(), 0600) != 0) return failed(errno, "set its mode");
  std::size_t written = 0;
  while (written < pem->length) {
    ssize_t n = ::write(fd.get(), pem->data + written, pem->length - written);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return failed(errno, "write it");
    written += static_cast<std::size_t>(n);
  }
  if (::fsync(fd.get()) != 0) return failed(errno, "sync it");
  if (fd.close() != 0) {
    int err = errno;
    ::unlink(path.c_str());
    return fail(file_error(err, path, "close it"));
  }
  // The new directory entry must be durable too.
  auto dir = path.parent_path().empty() ? std::filesystem::path(".") : path.parent_path();
  UniqueFd dir_fd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (dir_fd.get() < 0 || ::fsync(dir_fd.get()) != 0) {
    return fail(file_error(errno, path, "sync its directory"));
  }
  return {};
}

Verifier Signer::verifier() const {
  auto v = Verifier::parse(verifier_key());
  assert(v.has_value());  // the key and id come from this signer
  return std::move(v).value();
}

std::string Signer::verifier_key() const {
  return format_verifier_key(name_, key_id_, public_key_);
}

Signature Signer::sign(std::string_view body) const {
  MdCtxPtr ctx(EVP_MD_CTX_new());
  require(ctx != nullptr, "EVP_MD_CTX allocation");
  require(EVP_DigestSignInit(ctx.get(), nullptr, nullptr, nullptr, impl_->key.get()) == 1,
          "Ed25519 sign init");
  Signature sig;
  sig.key_name = name_;
  sig.key_id = key_id_;
  sig.signature.resize(kEd25519SignatureSize);
  std::size_t size = sig.signature.size();
  require(EVP_DigestSign(ctx.get(), sig.signature.data(), &size,
                         reinterpret_cast<const unsigned char*>(body.data()), body.size()) == 1 &&
              size == kEd25519SignatureSize,
          "Ed25519 sign");
  return sig;
}

Note Signer::sign_note(std::string body) const {
  assert(!body.empty() && body.back() == '\n');
  Note note;
  note.signatures.push_back(sign(body));
  note.body = std::move(body);
  return note;
}

Result<Checkpoint, NoteError> parse_checkpoint(std::string_view body) {
  if (body.size() > kMaxNoteSize) {
    return note_error(Kind::kTooLarge, "checkpoint is " + std::to_string(body.size()) +
                                           " bytes, the limit is " + std::to_string(kMaxNoteSize));
  }
  if (body.empty() || body.back() != '\n') {
    return note_error(Kind::kBadCheckpoint, "checkpoint does not end in a newline");
  }
  Checkpoint cp;
  std::size_t line_no = 0;
  while (!body.empty()) {
    auto end = body.find('\n');
    auto line = body.substr(0, end);
    body.remove_prefix(end + 1);
    ++line_no;
    if (line_no == 1) {
      if (line.empty()) return checkpoint_error(line_no, "origin", "empty");
      cp.origin = std::string(line);
    } else if (line_no == 2) {
      if (!is_decimal(line)) {
        return checkpoint_error(line_no, "tree size", printable(line) + " is not decimal digits");
      }
      if (line.size() > 1 && line[0] == '0') {
        return checkpoint_error(line_no, "tree size", printable(line) + " has a leading zero");
      }
      auto [ptr, ec] = std::from_chars(line.data(), line.data() + line.size(), cp.size);
      if (ec != std::errc() || ptr != line.data() + line.size()) {
        return checkpoint_error(line_no, "tree size", printable(line) + " does not fit 64 bits");
      }
    } else if (line_no == 3) {
      auto root = base64_decode(line);
      if (!root) return checkpoint_error(line_no, "root hash", "not canonical base64");
      if (root->size() != cp.root.size()) {
        return checkpoint_error(line_no, "root hash",
                                std::to_string(root->size()) + " bytes, not 32");
      }
      std::copy(root->begin(), root->end(), cp.root.begin());
    } else {
      if (line.empty()) return checkpoint_error(line_no, "extension", "empty");
      cp.extensions.emplace_back(line);
    }
  }
  if (line_no < 3) {
    return note_error(Kind::kBadCheckpoint,
                      "checkpoint has " + std::to_string(line_no) +
                          " lines; it needs an origin, a tree size and a root hash");
  }
  return cp;
}

std::string format_checkpoint(const Checkpoint& checkpoint) {
  std::string out = checkpoint.origin + "\n" + std::to_string(checkpoint.size) + "\n" +
                    base64_encode(checkpoint.root) + "\n";
  for (const auto& ext : checkpoint.extensions) out += ext + "\n";
  return out;
}

Result<Checkpoint, NoteError> open_checkpoint(ByteSpan signed_note, const Verifier& verifier,
                                              std::string_view expected_origin) {
  auto note = parse_note(signed_note);
  if (!note) return fail(note.error());
  auto verified = verifier.verify(*note);
  if (!verified) return fail(verified.error());
  auto checkpoint = parse_checkpoint(note->body);
  if (!checkpoint) return fail(checkpoint.error());
  if (checkpoint->origin != expected_origin) {
    return note_error(Kind::kBadCheckpoint, "checkpoint origin " + printable(checkpoint->origin) +
                                                " is not the expected origin " +
                                                printable(expected_origin));
  }
  return checkpoint;
}

}  // namespace enclave::audit::note
