// The signed manifest and the release bundle: canonical JSON, every invalid manifest refused
// naming its field, bundles GNU tar reads and OpenSSL's own tool verifies, and every change to
// a bundle (a file's bytes, a missing or extra member, the manifest, the signature, the key)
// caught with a message naming it.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <openssl/pem.h>

#include <fstream>

#include "common/ed25519.hpp"
#include "exitcontrol/release/bundle.hpp"
#include "exitcontrol/release/sealed.hpp"
#include "tests/support/process.hpp"

namespace enclave::exitcontrol::release {
namespace {

namespace fs = std::filesystem;
using enclave::testing::TempDir;
using ::testing::HasSubstr;

crypto::EvpPkeyPtr new_key() {
  crypto::EvpPkeyPtr key(EVP_PKEY_Q_keygen(nullptr, nullptr, "ED25519"));
  EXPECT_NE(key, nullptr);
  return key;
}

Bytes public_key_of(EVP_PKEY* key) {
  return crypto::ed25519_public_key(key).value();
}

void put(const fs::path& path, std::string_view content) {
  std::ofstream(path, std::ios::binary).write(content.data(), static_cast<long>(content.size()));
}

std::string read(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

ByteSink append_to(Bytes& out) {
  return [&out](ByteSpan data) -> Status {
    out.insert(out.end(), data.begin(), data.end());
    return {};
  };
}

Manifest sample_manifest() {
  Manifest m;
  m.release = "REL-7";
  m.request = "R-42";
  m.project = "p-cancer-2024";
  m.requester = "alice";
  m.justification = "Table 2 of the paper";
  m.created_at = "2026-03-01T10:00:00Z";
  m.files.push_back({"counts.csv",
                     11,
                     sha256_hex(as_bytes("a,b\n1,200\n\n")),
                     "safe",
                     {{"outcome", "fail"}, {"safe_outcome", "pass"}},
                     {{"bob", "approve", "suppressed cells checked", "2026-03-01T09:00:00Z"},
                      {"carol", "approve", "", "2026-03-01T09:30:00Z"}}});
  m.files.push_back({"model.txt",
                     7,
                     sha256_hex(as_bytes("beta=1\n")),
                     "original",
                     {{"outcome", "review"}},
                     {{"bob", "approve", "dof 120", "2026-03-01T09:01:00Z"}}});
  return m;
}

struct BundleFixture : ::testing::Test {
  TempDir dir;
  crypto::EvpPkeyPtr key = new_key();
  Bytes public_key = public_key_of(key.get());
  std::vector<fs::path> sources{dir / "counts.csv", dir / "model.txt"};

  void SetUp() override {
    put(sources[0], "a,b\n1,200\n\n");
    put(sources[1], "beta=1\n");
  }
  SignedManifest signed_manifest(const Manifest& m = sample_manifest()) {
    auto s = sign_manifest(m, key.get());
    EXPECT_TRUE(s) << s.error().describe();
    return s.value();
  }
  Bytes bundle() {
    Bytes out;
    Status written = write_bundle(signed_manifest(), sources, 1772359200, append_to(out));
    EXPECT_TRUE(written) << written.error().describe();
    return out;
  }
  // A bundle put together by hand, to tamper with: the signed manifest's three members with
  // the given manifest bytes, then the given files.
  Bytes forged(const SignedManifest& s, std::string_view manifest_bytes,
               const std::vector<std::pair<std::string, std::string>>& files) {
    Bytes out;
    TarWriter tar(append_to(out));
    const std::string sig = s.signature_hex + "\n", pub = s.manifest.signer + "\n";
    EXPECT_TRUE(tar.add({"manifest.json", manifest_bytes.size(), 0}, as_bytes(manifest_bytes)));
    EXPECT_TRUE(tar.add({"manifest.sig", sig.size(), 0}, as_bytes(sig)));
    EXPECT_TRUE(tar.add({"export-signing.pub", pub.size(), 0}, as_bytes(pub)));
    for (const auto& [name, content] : files) {
      EXPECT_TRUE(tar.add({name, content.size(), 0}, as_bytes(content)));
    }
    EXPECT_TRUE(tar.finish());
    return out;
  }
  std::string refusal(const Bytes& bundle_bytes, ByteSpan with_key) {
    auto v = verify_bundle(bundle_bytes, with_key);
    EXPECT_FALSE(v) << "accepted";
    if (v) return "";
    EXPECT_EQ(v.error().code, Errc::kCorrupt) << v.error().describe();
    return v.error().message;
  }
};

TEST(Manifest, IsCanonicalJsonWithSortedKeysAndNoWhitespace) {
  Manifest m;
  m.release = "REL-1";
  m.request = "R-1";
  m.project = "p1";
  m.requester = "alice";
  m.justification = "für Tabelle 1";
  m.created_at = "2026-01-02T03:04:05Z";
  m.files.push_back({"t.csv", 3, std::string(64, 'a'), "original", {{"z", 1}, {"a", "x"}}, {}});
  auto json = manifest_json(m);
  ASSERT_TRUE(json) << json.error().describe();
  EXPECT_EQ(*json,
            "{\"created_at\":\"2026-01-02T03:04:05Z\",\"files\":[{\"decisions\":[],\"engine\":{"
            "\"a\":\"x\",\"z\":1},\"name\":\"t.csv\",\"sha256\":\"" +
                std::string(64, 'a') +
                "\",\"size\":3,\"version\":\"original\"}],\"format\":\"enclave-release-1\","
                "\"justification\":\"für Tabelle 1\",\"project\":\"p1\",\"release\":\"REL-1\","
                "\"request\":\"R-1\",\"requester\":\"alice\",\"signer\":\"\"}");
  m.organisation = "Univ. of X";
  EXPECT_THAT(manifest_json(m).value(), HasSubstr("\"organisation\":\"Univ. of X\",\"project\""));
  auto back = parse_manifest(as_bytes(manifest_json(m).value()));
  ASSERT_TRUE(back) << back.error().describe();
  EXPECT_EQ(*back, m);
  EXPECT_EQ(parse_manifest(as_bytes(manifest_json(sample_manifest()).value())).value(),
            sample_manifest());
}

TEST(Manifest, RefusesWhatABundleCannotCarryNamingTheField) {
  auto refused = [](const std::function<void(Manifest&)>& change) {
    Manifest m = sample_manifest();
    change(m);
    auto json = manifest_json(m);
    EXPECT_FALSE(json) << "accepted";
    if (json) return std::string();
    EXPECT_EQ(json.error().code, Errc::kInvalidArgument);
    return json.error().message;
  };
  EXPECT_THAT(refused([](Manifest& m) { m.files[1].name = "manifest.json"; }),
              HasSubstr("files[1].name"));
  EXPECT_THAT(refused([](Manifest& m) { m.files[1].name = "counts.csv"; }),
              HasSubstr("counts.csv is named twice"));
  EXPECT_THAT(refused([](Manifest& m) { m.files[0].name = "out/t.csv"; }),
              HasSubstr("files[0].name"));
  EXPECT_THAT(refused([](Manifest& m) { m.files[0].name = std::string(101, 'a'); }),
              HasSubstr("longer than 100 bytes"));
  EXPECT_THAT(refused([](Manifest& m) { m.files[0].sha256 = std::string(64, 'A'); }),
              HasSubstr("files[0].sha256"));
  EXPECT_THAT(refused([](Manifest& m) { m.files[1].version = "draft"; }),
              HasSubstr("files[1].version: \"draft\", not original or safe"));
  EXPECT_THAT(refused([](Manifest& m) { m.files[0].decisions[1].decision = "maybe"; }),
              HasSubstr("files[0].decisions[1].decision"));
  EXPECT_THAT(refused([](Manifest& m) { m.files[0].decisions[0].steward = ""; }),
              HasSubstr("files[0].decisions[0].steward: missing"));
  EXPECT_THAT(refused([](Manifest& m) { m.files[0].engine = nlohmann::json::array(); }),
              HasSubstr("files[0].engine: not an object"));
  EXPECT_THAT(refused([](Manifest& m) { m.files[0].engine["note"] = "\xff"; }),
              HasSubstr("files[0].engine"));
  EXPECT_THAT(refused([](Manifest& m) { m.justification = "bad \xc3"; }),
              HasSubstr("justification: not UTF-8"));
  EXPECT_THAT(refused([](Manifest& m) { m.release.clear(); }), HasSubstr("release: missing"));
  EXPECT_THAT(refused([](Manifest& m) { m.files.clear(); }), HasSubstr("at least one file"));
}

TEST(Manifest, ParseRefusesWhatIsNotAManifest) {
  const std::string good = manifest_json(sample_manifest()).value();
  for (const std::string& bad :
       {std::string("[]"), std::string("{"), std::string("{\"format\":\"enclave-release-2\"}"),
        std::string("\xff"), good.substr(0, good.size() - 1)}) {
    auto m = parse_manifest(as_bytes(bad));
    ASSERT_FALSE(m) << bad;
    EXPECT_EQ(m.error().code, Errc::kCorrupt);
  }
  // Nesting an attacker could use to exhaust the stack when the manifest is serialised again.
  const std::string deep = std::string(100000, '[') + std::string(100000, ']');
  EXPECT_THAT(parse_manifest(as_bytes(deep)).error().message, HasSubstr("nested deeper than 64"));
  auto nested = nlohmann::json::parse(good);
  nlohmann::json* at = &nested["files"][0]["engine"];
  for (int i = 0; i < 70; ++i) at = &((*at)["n"] = nlohmann::json::object());
  EXPECT_THAT(parse_manifest(as_bytes(nested.dump())).error().message,
              HasSubstr("nested deeper than 64"));

  auto without = nlohmann::json::parse(good);
  without["files"][1].erase("size");
  auto m = parse_manifest(as_bytes(without.dump()));
  ASSERT_FALSE(m);
  EXPECT_THAT(m.error().message, HasSubstr("files[1].size"));
  auto negative = nlohmann::json::parse(good);
  negative["files"][0]["size"] = -1;
  EXPECT_THAT(parse_manifest(as_bytes(negative.dump())).error().message,
              HasSubstr("files[0].size"));
}

TEST_F(BundleFixture, GnuTarListsItAndOpenSslVerifiesItsSignature) {
  const Bytes b = bundle();
  put(dir / "bundle.tar", as_chars(b));
  auto list = enclave::testing::run({"tar", "-tf", (dir / "bundle.tar").string()});
  ASSERT_EQ(list.exit_code, 0) << list.err;
  EXPECT_EQ(list.out, "manifest.json\nmanifest.sig\nexport-signing.pub\ncounts.csv\nmodel.txt\n");
  fs::create_directories(dir / "out");
  ASSERT_EQ(enclave::testing::run(
                {"tar", "-xf", (dir / "bundle.tar").string(), "-C", (dir / "out").string()})
                .exit_code,
            0);
  EXPECT_EQ(read(dir / "out/counts.csv"), read(sources[0]));
  EXPECT_EQ(read(dir / "out/export-signing.pub"), hex_encode(public_key) + "\n");

  // The signature is plain Ed25519 over manifest.json's bytes: openssl pkeyutl agrees.
  const auto signature = hex_decode(read(dir / "out/manifest.sig").substr(0, 128));
  ASSERT_TRUE(signature);
  put(dir / "sig.bin", as_chars(*signature));
  BIO* bio = BIO_new_file((dir / "pub.pem").c_str(), "w");
  ASSERT_NE(bio, nullptr);
  ASSERT_EQ(PEM_write_bio_PUBKEY(bio, key.get()), 1);
  BIO_free(bio);
  auto checked = enclave::testing::run(
      {"openssl", "pkeyutl", "-verify", "-pubin", "-inkey", (dir / "pub.pem").string(), "-rawin",
       "-in", (dir / "out/manifest.json").string(), "-sigfile", (dir / "sig.bin").string()});
  EXPECT_EQ(checked.exit_code, 0) << checked.out << checked.err;
  EXPECT_THAT(checked.out, HasSubstr("Signature Verified Successfully"));

  auto verified = verify_bundle(b, public_key);
  ASSERT_TRUE(verified) << verified.error().describe();
  Manifest expected = sample_manifest();
  expected.signer = hex_encode(public_key);
  EXPECT_EQ(*verified, expected);
  auto from_file = verify_bundle_file(dir / "bundle.tar", public_key);
  ASSERT_TRUE(from_file) << from_file.error().describe();
  EXPECT_EQ(*from_file, expected);
}

TEST_F(BundleFixture, EveryChangeIsCaughtAndNamed) {
  const SignedManifest s = signed_manifest();
  const std::string counts = read(sources[0]), model = read(sources[1]);
  ASSERT_TRUE(
      verify_bundle(forged(s, s.json, {{"counts.csv", counts}, {"model.txt", model}}), public_key))
      << "the forger itself makes good bundles";

  std::string changed = counts;
  changed[2] = '9';
  EXPECT_EQ(refusal(forged(s, s.json, {{"counts.csv", changed}, {"model.txt", model}}), public_key),
            "member counts.csv: sha256 " + sha256_hex(as_bytes(changed)) + " in the bundle, " +
                s.manifest.files[0].sha256 + " in the manifest");
  EXPECT_EQ(
      refusal(forged(s, s.json, {{"counts.csv", counts + "x"}, {"model.txt", model}}), public_key),
      "member counts.csv: 12 bytes in the bundle, 11 in the manifest");
  EXPECT_EQ(refusal(forged(s, s.json, {{"counts.csv", counts}}), public_key),
            "member model.txt is in the manifest but not the bundle");
  EXPECT_EQ(
      refusal(forged(s, s.json, {{"counts.csv", counts}, {"model.txt", model}, {"extra.csv", "1"}}),
              public_key),
      "member extra.csv is not in the manifest");

  std::string manifest = s.json;
  manifest[manifest.find("REL-7") + 4] = '8';
  EXPECT_THAT(
      refusal(forged(s, manifest, {{"counts.csv", counts}, {"model.txt", model}}), public_key),
      HasSubstr("manifest.json: the signature in manifest.sig does not verify under " +
                hex_encode(public_key)));

  // Someone else's key: their own signature and public key inside the bundle do not help.
  auto other = new_key();
  const SignedManifest theirs = sign_manifest(sample_manifest(), other.get()).value();
  const Bytes by_other =
      forged(theirs, theirs.json, {{"counts.csv", counts}, {"model.txt", model}});
  EXPECT_THAT(refusal(by_other, public_key),
              HasSubstr("export-signing.pub names the signing key " +
                        hex_encode(public_key_of(other.get())) + ", not the expected " +
                        hex_encode(public_key)));
  // The right key's file in a bundle signed by another.
  SignedManifest mixed = theirs;
  mixed.manifest.signer = hex_encode(public_key);
  EXPECT_THAT(refusal(forged(mixed, theirs.json, {{"counts.csv", counts}, {"model.txt", model}}),
                      public_key),
              HasSubstr("does not verify"));

  Bytes truncated = bundle();
  truncated.resize(truncated.size() - 1500);
  EXPECT_THAT(refusal(truncated, public_key), HasSubstr("not a readable bundle: offset"));
  Bytes flipped = bundle();
  flipped[512 + 30] ^= 0x20;  // inside manifest.json
  EXPECT_THAT(refusal(flipped, public_key), HasSubstr("does not verify"));

  auto short_key = verify_bundle(bundle(), ByteSpan(public_key).first(31));
  ASSERT_FALSE(short_key);
  EXPECT_EQ(short_key.error().code, Errc::kInvalidArgument);
}

TEST_F(BundleFixture, WritingRefusesASourceThatIsNotWhatTheManifestSays) {
  Bytes out;
  put(sources[1], "beta=2\n");  // same size, other bytes
  auto changed = write_bundle(signed_manifest(), sources, 0, append_to(out));
  ASSERT_FALSE(changed);
  EXPECT_EQ(changed.error().code, Errc::kCorrupt);
  EXPECT_EQ(changed.error().message, "release file model.txt (" + sources[1].string() +
                                         "): sha256 " + sha256_hex(as_bytes("beta=2\n")) +
                                         ", the manifest says " + sha256_hex(as_bytes("beta=1\n")));

  put(sources[1], "beta=10\n");
  auto longer = write_bundle(signed_manifest(), sources, 0, append_to(out));
  ASSERT_FALSE(longer);
  EXPECT_THAT(longer.error().message, HasSubstr("8 bytes, the manifest says 7"));

  fs::remove(sources[1]);
  fs::create_symlink(sources[0], sources[1]);
  auto link = write_bundle(signed_manifest(), sources, 0, append_to(out));
  ASSERT_FALSE(link) << "a symbolic link is not followed";
  EXPECT_THAT(link.error().message, HasSubstr("model.txt"));

  auto count = write_bundle(signed_manifest(), {sources[0]}, 0, append_to(out));
  ASSERT_FALSE(count);
  EXPECT_EQ(count.error().code, Errc::kInvalidArgument);

  auto missing = verify_bundle_file(dir / "nothing.tar", public_key);
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().code, Errc::kNotFound);
  EXPECT_THAT(missing.error().message, HasSubstr("nothing.tar"));
  put(dir / "empty.tar", "");
  auto empty = verify_bundle_file(dir / "empty.tar", public_key);
  ASSERT_FALSE(empty);
  EXPECT_EQ(empty.error().code, Errc::kCorrupt);
  EXPECT_THAT(empty.error().message, HasSubstr("empty.tar"));
}

// The path a release takes: bundle written straight into sealed storage, read back, verified.
TEST_F(BundleFixture, SealedAndReadBackItStillVerifies) {
  Bytes data_key(kSealedDataKeyBytes, 0x42);
  auto writer = SealedWriter::create(dir / "REL-7.sealed", data_key, "p-cancer-2024/REL-7");
  ASSERT_TRUE(writer) << writer.error().describe();
  ASSERT_TRUE(write_bundle(signed_manifest(), sources, 0, writer->sink()));
  ASSERT_TRUE(writer->finish());
  auto reader = SealedReader::open(dir / "REL-7.sealed", data_key, "p-cancer-2024/REL-7");
  ASSERT_TRUE(reader) << reader.error().describe();
  Bytes plain;
  ASSERT_TRUE(reader->read_all(append_to(plain)));
  EXPECT_EQ(plain.size(), reader->plaintext_size());
  auto verified = verify_bundle(plain, public_key);
  EXPECT_TRUE(verified) << verified.error().describe();
}

}  // namespace
}  // namespace enclave::exitcontrol::release
