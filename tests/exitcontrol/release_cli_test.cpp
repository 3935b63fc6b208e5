// enclave-exitcheck release verify, the real executable on bundles the release library wrote:
// every file listed with its hash and "verified" (exit 0), a tampered bundle or another key
// named (exit 1), what cannot be checked at all (exit 2).
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <fstream>

#include <nlohmann/json.hpp>

#include "common/ed25519.hpp"
#include "exitcontrol/release/bundle.hpp"
#include "tests/support/process.hpp"

namespace enclave::exitcontrol::release {
namespace {

namespace fs = std::filesystem;
using enclave::testing::RunResult;
using enclave::testing::TempDir;
using ::testing::HasSubstr;

void put(const fs::path& path, std::string_view content) {
  std::ofstream(path, std::ios::binary).write(content.data(), static_cast<long>(content.size()));
}

struct ReleaseVerifyCli : ::testing::Test {
  TempDir dir;
  crypto::EvpPkeyPtr key{EVP_PKEY_Q_keygen(nullptr, nullptr, "ED25519")};
  std::string public_hex = hex_encode(crypto::ed25519_public_key(key.get()).value());
  const std::string table = "region,count\nnorth,120\nsouth,87\n";
  const std::string notes = "model: beta = 0.3 (se 0.1)\n";

  // A bundle of two files; `table_in_bundle` replaces the table's bytes after signing.
  fs::path write_bundle_file(const std::string& name, const std::string& table_in_bundle) {
    put(dir / "table.csv", table_in_bundle);
    put(dir / "notes.txt", notes);
    Manifest m;
    m.release = "REL-3";
    m.request = "R-17";
    m.project = "p-heart";
    m.requester = "alice";
    m.justification = "figures for the annual report";
    m.created_at = "2026-02-01T12:00:00Z";
    m.files.push_back({"table.csv",
                       table.size(),
                       sha256_hex(as_bytes(table)),
                       "safe",
                       {{"outcome", "pass"}},
                       {{"bob", "approve", "ok", "2026-02-01T11:00:00Z"}}});
    m.files.push_back({"notes.txt",
                       notes.size(),
                       sha256_hex(as_bytes(notes)),
                       "original",
                       {{"outcome", "review"}},
                       {{"bob", "approve", "", "2026-02-01T11:01:00Z"}}});
    auto signed_manifest = sign_manifest(m, key.get());
    EXPECT_TRUE(signed_manifest);
    std::ofstream out(dir / name, std::ios::binary);
    auto to_file = [&out](ByteSpan data) -> Status {
      out.write(reinterpret_cast<const char*>(data.data()), static_cast<long>(data.size()));
      return out ? Status{} : fail(Errc::kIo, "write");
    };
    if (table_in_bundle == table) {
      EXPECT_TRUE(write_bundle(*signed_manifest, {dir / "table.csv", dir / "notes.txt"}, 1769947200,
                               to_file));
    } else {
      // The writer refuses a source unlike its manifest; a forger writes the archive directly.
      TarWriter tar(to_file);
      const std::string sig = signed_manifest->signature_hex + "\n", pub = public_hex + "\n";
      EXPECT_TRUE(tar.add({"manifest.json", signed_manifest->json.size(), 0},
                          as_bytes(signed_manifest->json)));
      EXPECT_TRUE(tar.add({"manifest.sig", sig.size(), 0}, as_bytes(sig)));
      EXPECT_TRUE(tar.add({"export-signing.pub", pub.size(), 0}, as_bytes(pub)));
      EXPECT_TRUE(tar.add({"table.csv", table_in_bundle.size(), 0}, as_bytes(table_in_bundle)));
      EXPECT_TRUE(tar.add({"notes.txt", notes.size(), 0}, as_bytes(notes)));
      EXPECT_TRUE(tar.finish());
    }
    return dir / name;
  }
  RunResult exitcheck(std::vector<std::string> args) {
    std::vector<std::string> argv{
        enclave::testing::binary("enclave-exitcheck").string(), "--policies",
        (enclave::testing::source_dir() / "policies").string(), "--state-dir", dir.path().string()};
    argv.insert(argv.end(), args.begin(), args.end());
    return enclave::testing::run(argv);
  }
};

TEST_F(ReleaseVerifyCli, ListsEveryFileWithItsHashAsVerified) {
  const auto bundle = write_bundle_file("REL-3.tar", table);
  auto r = exitcheck({"release", "verify", bundle.string(), "--public-key", public_hex});
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_THAT(r.out, HasSubstr("release REL-3 of project p-heart (request R-17, requested by "
                               "alice, 2026-02-01T12:00:00Z)"));
  EXPECT_THAT(r.out, HasSubstr("manifest signed by " + public_hex));
  for (const auto& [name, content] :
       {std::pair{"table.csv", table}, std::pair{"notes.txt", notes}}) {
    EXPECT_THAT(r.out, ::testing::ContainsRegex(
                           std::string(name) + " +" + std::to_string(content.size()) + " +" +
                           sha256_hex(as_bytes(content)) + " +[a-z]+ +verified"));
  }
  EXPECT_THAT(r.out, HasSubstr("2 files verified"));

  // The key as the file the bundle's sender gave out (hex and a newline).
  put(dir / "export-signing.pub", public_hex + "\n");
  auto from_file = exitcheck({"release", "verify", bundle.string(), "--public-key",
                              (dir / "export-signing.pub").string()});
  EXPECT_EQ(from_file.exit_code, 0) << from_file.err;

  auto json =
      exitcheck({"--json", "release", "verify", bundle.string(), "--public-key", public_hex});
  ASSERT_EQ(json.exit_code, 0) << json.err;
  const auto doc = nlohmann::json::parse(json.out);
  EXPECT_EQ(doc["release"], "REL-3");
  ASSERT_EQ(doc["files"].size(), 2u);
  EXPECT_EQ(doc["files"][0]["sha256"], sha256_hex(as_bytes(table)));
  EXPECT_EQ(doc["files"][0]["status"], "verified");
}

TEST_F(ReleaseVerifyCli, ATamperedBundleOrAnotherKeyFailsNamingWhat) {
  std::string changed = table;
  changed.replace(changed.find("87"), 2, "78");
  const auto bundle = write_bundle_file("tampered.tar", changed);
  auto r = exitcheck({"release", "verify", bundle.string(), "--public-key", public_hex});
  EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
  EXPECT_EQ(r.err, "error: bundle " + bundle.string() + ": member table.csv: sha256 " +
                       sha256_hex(as_bytes(changed)) + " in the bundle, " +
                       sha256_hex(as_bytes(table)) + " in the manifest\n");
  EXPECT_THAT(r.out, ::testing::Not(HasSubstr("verified")));

  const auto good = write_bundle_file("good.tar", table);
  crypto::EvpPkeyPtr other(EVP_PKEY_Q_keygen(nullptr, nullptr, "ED25519"));
  const std::string other_hex = hex_encode(crypto::ed25519_public_key(other.get()).value());
  auto wrong_key = exitcheck({"release", "verify", good.string(), "--public-key", other_hex});
  EXPECT_EQ(wrong_key.exit_code, 1) << wrong_key.out;
  EXPECT_THAT(wrong_key.err,
              HasSubstr("names the signing key " + public_hex + ", not the expected " + other_hex));
}

TEST_F(ReleaseVerifyCli, WhatCannotBeCheckedExitsTwo) {
  const auto bundle = write_bundle_file("REL-3.tar", table);
  auto missing =
      exitcheck({"release", "verify", (dir / "none.tar").string(), "--public-key", public_hex});
  EXPECT_EQ(missing.exit_code, 2);
  EXPECT_THAT(missing.err, HasSubstr("none.tar"));
  auto bad_key = exitcheck({"release", "verify", bundle.string(), "--public-key", "abcd"});
  EXPECT_EQ(bad_key.exit_code, 2);
  EXPECT_THAT(bad_key.err, HasSubstr("--public-key"));
  put(dir / "not-a-key", "hello\n");
  auto not_hex = exitcheck(
      {"release", "verify", bundle.string(), "--public-key", (dir / "not-a-key").string()});
  EXPECT_EQ(not_hex.exit_code, 2);
  EXPECT_THAT(not_hex.err, HasSubstr("not-a-key: does not hold an Ed25519 public key"));
  auto no_key = exitcheck({"release", "verify", bundle.string()});
  EXPECT_NE(no_key.exit_code, 0) << "the key is required";
}

}  // namespace
}  // namespace enclave::exitcontrol::release
