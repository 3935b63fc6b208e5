// Signed notes (C2SP signed-note) and transparency-log checkpoints (C2SP tlog-checkpoint),
// signed with Ed25519 through OpenSSL.
//
// A signed note is UTF-8 text: the note body (non-empty lines, each ending in '\n'), a blank
// line, then one or more signature lines "— <key name> <base64(key id || signature)>\n",
// where the key id is the first 4 bytes (big-endian) of SHA-256(key name || '\n' || 0x01 ||
// 32-byte Ed25519 public key) and the signature covers the body bytes exactly.
// A verifier key is written "<name>+<8 hex digits key id>+<base64(0x01 || public key)>".
//
// A checkpoint body is: origin line, tree size in decimal, base64 root hash (32 bytes), then
// optional non-empty extension lines.
//
// Parsers take untrusted bytes, enforce sizes before allocating, and return typed errors.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "audit/core/merkle.hpp"
#include "common/bytes.hpp"
#include "common/result.hpp"

namespace enclave::audit::note {

inline constexpr std::size_t kMaxNoteSize = 64 * 1024;
inline constexpr std::size_t kMaxSignatures = 100;

struct NoteError {
  enum class Kind {
    kTooLarge,
    kMalformed,  // structure: missing blank line, bad signature line, bad base64...
    kNotUtf8,
    kBadKey,         // a verifier key or private key that cannot be used
    kUnknownKey,     // no signature by the verifier's key name and id
    kBadSignature,   // a signature by the right key that does not verify
    kBadCheckpoint,  // the body is not a checkpoint
  };
  Kind kind;
  std::string message;

  std::string describe() const;
};

struct Signature {
  std::string key_name;
  std::uint32_t key_id = 0;
  Bytes signature;  // 64 bytes for Ed25519

  bool operator==(const Signature&) const = default;
};

struct Note {
  std::string body;  // ends with '\n'
  std::vector<Signature> signatures;

  bool operator==(const Note&) const = default;
};

Result<Note, NoteError> parse_note(ByteSpan text);
std::string format_note(const Note& note);

std::uint32_t ed25519_key_id(std::string_view key_name, ByteSpan public_key);

class Verifier {
 public:
  // Parses "<name>+<hex id>+<base64(0x01 || key)>" and checks the id matches.
  static Result<Verifier, NoteError> parse(std::string_view verifier_key);

  const std::string& name() const { return name_; }
  std::uint32_t key_id() const { return key_id_; }
  const Bytes& public_key() const { return public_key_; }
  std::string verifier_key() const;

  // Succeeds when the note carries a signature by this key (name and id) that verifies.
  Result<void, NoteError> verify(const Note& note) const;

 private:
  std::string name_;
  std::uint32_t key_id_ = 0;
  Bytes public_key_;
};

class Signer {
 public:
  // A fresh Ed25519 key.
  static Expected<Signer> generate(std::string key_name);
  // A PKCS#8 PEM Ed25519 private key; errors name the file (never its content).
  static Expected<Signer> load_pem(const std::filesystem::path& path, std::string key_name);
  // Writes the private key as PKCS#8 PEM, created with mode 0600 (refuses to overwrite).
  Status save_pem(const std::filesystem::path& path) const;

  Signer(Signer&&) noexcept;
  Signer& operator=(Signer&&) noexcept;
  ~Signer();

  const std::string& name() const { return name_; }
  std::uint32_t key_id() const { return key_id_; }
  const Bytes& public_key() const { return public_key_; }
  Verifier verifier() const;
  std::string verifier_key() const;

  Signature sign(std::string_view body) const;
  Note sign_note(std::string body) const;  // body must end with '\n'

 private:
  struct Impl;
  Signer(std::unique_ptr<Impl> impl, std::string name);
  std::unique_ptr<Impl> impl_;
  std::string name_;
  std::uint32_t key_id_ = 0;
  Bytes public_key_;
};

struct Checkpoint {
  std::string origin;
  std::uint64_t size = 0;
  merkle::Hash root{};
  std::vector<std::string> extensions;

  bool operator==(const Checkpoint&) const = default;
};

Result<Checkpoint, NoteError> parse_checkpoint(std::string_view body);
std::string format_checkpoint(const Checkpoint& checkpoint);

// Parses a signed note, verifies it with the verifier, and parses its body as a checkpoint
// whose origin must equal expected_origin.
Result<Checkpoint, NoteError> open_checkpoint(ByteSpan signed_note, const Verifier& verifier,
                                              std::string_view expected_origin);

}  // namespace enclave::audit::note
