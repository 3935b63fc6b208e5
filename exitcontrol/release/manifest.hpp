// The manifest of a release: what was released (each file's name, size, SHA-256 and version),
// why (the justification), what the engine found and who decided, signed with the export
// signing key (Ed25519) so the receiving organisation can check a bundle on its own.
//
// manifest.json is canonical JSON: object keys sorted, no whitespace, UTF-8. The signature is
// over its exact bytes; the verifier never re-serialises before checking.
//
//   {"created_at":RFC 3339,"files":[{"decisions":[{"at","comment","decision":"approve"|"reject",
//    "steward"}],"engine":{...},"name","sha256":64 hex,"size","version":"original"|"safe"}],
//    "format":"enclave-release-1","justification","organisation"?,"project","release",
//    "request","requester","signer":64 hex (the Ed25519 public key)}
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include <openssl/evp.h>
#include <nlohmann/json.hpp>

#include "common/bytes.hpp"
#include "common/result.hpp"

namespace enclave::exitcontrol::release {

inline constexpr std::string_view kManifestFormat = "enclave-release-1";
// The bundle's own members, next to the released files (which may not take these names).
inline constexpr std::string_view kManifestMember = "manifest.json";
inline constexpr std::string_view kSignatureMember = "manifest.sig";  // hex signature, newline
inline constexpr std::string_view kPublicKeyMember = "export-signing.pub";  // hex key, newline

struct ManifestDecision {
  std::string steward;
  std::string decision;  // "approve" | "reject"
  std::string comment;
  std::string at;  // RFC 3339

  bool operator==(const ManifestDecision&) const = default;
};

struct ManifestFile {
  std::string name;  // the bundle member
  std::uint64_t size = 0;
  std::string sha256;                                // 64 lowercase hex digits
  std::string version;                               // "original" | "safe"
  nlohmann::json engine = nlohmann::json::object();  // the engine's results for this file
  std::vector<ManifestDecision> decisions;

  bool operator==(const ManifestFile&) const = default;
};

struct Manifest {
  std::string release, request, project, requester, organisation;  // organisation may be empty
  std::string justification;
  std::string created_at;  // RFC 3339
  std::string signer;      // hex Ed25519 public key; set by sign_manifest
  std::vector<ManifestFile> files;

  bool operator==(const Manifest&) const = default;
};

// Checks what a manifest must satisfy: the identifiers and created_at present, every string
// UTF-8, at least one file, each file a valid member name (check_member_name) that is not one of
// the bundle's own members, named once, a 64-hex sha256, a known version and decision, an
// engine object. kInvalidArgument naming the field (files[2].sha256) otherwise.
Status validate_manifest(const Manifest& manifest);

// The canonical bytes of manifest.json; validate_manifest's errors.
Expected<std::string> manifest_json(const Manifest& manifest);

// The manifest in manifest.json's bytes, validated as above; kCorrupt naming the field.
Expected<Manifest> parse_manifest(ByteSpan json);

struct SignedManifest {
  Manifest manifest;  // with signer set
  std::string json;   // manifest.json's bytes
  std::string signature_hex;
};

// Sets manifest.signer to the key's public key, serialises and signs it. kInvalidArgument for
// an invalid manifest or a key that is not an Ed25519 private key.
Expected<SignedManifest> sign_manifest(Manifest manifest, EVP_PKEY* signing_key);

}  // namespace enclave::exitcontrol::release
