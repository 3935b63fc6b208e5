// policies/exports.toml: the shipped file loads with its documented values; mistakes are
// refused naming file, line and key.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "exitcontrol/service/export_policy.hpp"
#include "tests/support/process.hpp"

namespace enclave::exitcontrol {
namespace {

using ::testing::HasSubstr;

Expected<ExportPolicy> load(const std::string& text) {
  auto doc = policy::Document::parse(text, "/p/exports.toml");
  if (!doc) return error_of(doc);
  return load_export_policy(*doc, "/state");
}

TEST(ExportPolicy, TheShippedFileLoads) {
  auto doc = policy::Document::load_file(testing::source_dir() / "policies" / "exports.toml");
  ASSERT_TRUE(doc) << doc.error().describe();
  auto p = load_export_policy(*doc, "/state");
  ASSERT_TRUE(p) << p.error().describe();
  EXPECT_EQ(p->socket, "/state/run/exportd.sock");
  EXPECT_EQ(p->outbox_root, "/state/exitcontrol/outbox");
  EXPECT_EQ(p->limits.max_file_bytes, 1024ull << 20);
  EXPECT_EQ(p->link_ttl, std::chrono::hours(168));
  EXPECT_EQ(p->retention_days, 90);
  EXPECT_TRUE(p->download.enabled);
  EXPECT_EQ(p->download.url, "https://127.0.0.1:8443");
  EXPECT_EQ(p->download.certificate, "/state/keys/download.crt");
}

TEST(ExportPolicy, AnEmptyFileIsEveryDefault) {
  auto p = load("");
  ASSERT_TRUE(p) << p.error().describe();
  EXPECT_EQ(p->database, "/state/exitcontrol/exports.db");
  EXPECT_EQ(p->check_workers, 2);
}

TEST(ExportPolicy, MistakesAreNamed) {
  struct Case {
    std::string text, says;
  };
  for (const auto& c : std::vector<Case>{
           {"[exportd]\nretention = 3\n", "retention"},
           {"[exportd]\nmax_file_mb = 10\nmax_request_mb = 5\n",
            "exportd.max_request_mb: must be at least max_file_mb"},
           {"[exportd]\nlink_ttl_h = 100\nmax_link_ttl_h = 10\n", "exportd.max_link_ttl_h"},
           {"[exportd]\ncheck_workers = 0\n", "exportd.check_workers"},
           {"[exportd.download]\nurl = \"http://x\"\n", "links must be https://"},
           {"[exportd.download]\nlisten = \"8443\"\n", "expected HOST:PORT"},
           {"[other]\n", "other"},
       }) {
    auto p = load(c.text);
    ASSERT_FALSE(p) << c.text;
    EXPECT_THAT(p.error().message, HasSubstr(c.says)) << c.text;
    EXPECT_THAT(p.error().message, HasSubstr("/p/exports.toml:")) << c.text;
  }
}

}  // namespace
}  // namespace enclave::exitcontrol
