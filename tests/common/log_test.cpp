#include "common/log.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <ctime>
#include <fstream>
#include <regex>
#include <sstream>

namespace enclave::log {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

struct RedactCase {
  std::string_view input;
  std::string_view expected;
};

// Each row is one decision of redact(); a row whose expected equals its input is a thing that
// must be left alone.
constexpr RedactCase kCases[] = {
    // key=value and key: value, bare values end at whitespace , ; }
    {"password=hunter2", "password=[redacted]"},
    {"user=bob password=hunter2 site=s1", "user=bob password=[redacted] site=s1"},
    {"Password: hunter2", "Password: [redacted]"},
    {"PASSWORD=X", "PASSWORD=[redacted]"},
    {"password = hunter2", "password = [redacted]"},
    {"db_passwd=pw;next=1", "db_passwd=[redacted];next=1"},
    {"client_secret=abc,other=1", "client_secret=[redacted],other=1"},
    {"--token=abc rest", "--token=[redacted] rest"},
    {"X-Auth-Token: abc", "X-Auth-Token: [redacted]"},
    {"ticket=AAAA assertion=BBBB credential=CCCC",
     "ticket=[redacted] assertion=[redacted] "
     "credential=[redacted]"},
    {"key=abc", "key=[redacted]"},
    {"api_key=abc", "api_key=[redacted]"},
    {"X-API-Key: abc", "X-API-Key: [redacted]"},
    {"private_key: abc", "private_key: [redacted]"},
    {"ssh_private_key=abc", "ssh_private_key=[redacted]"},
    {"tls.key=/etc/tls.key", "tls.key=[redacted]"},
    {"GET /login?token=abc&x=1 HTTP/1.1", "GET /login?token=[redacted] HTTP/1.1"},
    // quoted values keep their quotes; escapes do not end them early
    {R"(password="a \"quoted\" pass" user=x)", R"(password="[redacted]" user=x)"},
    {"secret='s p a c e' n=1", "secret='[redacted]' n=1"},
    {R"(password="never closed)", R"(password="[redacted])"},
    // JSON
    {R"({"user":"bob","password":"hunter2"})", R"({"user":"bob","password":"[redacted]"})"},
    {R"({"token": "abc", "n": 1})", R"({"token": "[redacted]", "n": 1})"},
    {R"({"ticket":12345})", R"({"ticket":[redacted]})"},
    {R"({"client secret":"x"})", R"({"client secret":"[redacted]"})"},
    {R"({"tokens":["a","b]"],"n":1})", R"({"tokens":[redacted],"n":1})"},
    {R"({"credentials":{"user":"bob","password":"pw"}})",
     R"({"credentials":{"user":"bob","password":"[redacted]"}})"},
    {R"(details="{\"password\":\"pw\",\"n\":1}")",
     R"(details="{\"password\":\"[redacted]\",\"n\":1}")"},
    // multiple secrets of different forms on one line
    {R"(token=a {"secret":"b"} passwd: c)",
     R"(token=[redacted] {"secret":"[redacted]"} passwd: [redacted])"},
    // not secrets
    {"keyboard=us", "keyboard=us"},
    {"monkey=1", "monkey=1"},
    {"signing_key=keys/audit.key", "signing_key=keys/audit.key"},
    {"tokens processed: 5", "tokens processed: 5"},
    {"ticket 42 redeemed", "ticket 42 redeemed"},
    {"the password was wrong", "the password was wrong"},
    {"password=", "password="},
    {R"(password="")", R"(password="")"},
    {"", ""},
    // decided: a key naming a secret is redacted even when it is a count
    {"tokens: 5", "tokens: [redacted]"},
    // PEM private keys, whatever the algorithm; certificates and public keys stay
    {"got -----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBg\n-----END PRIVATE KEY----- done",
     "got [redacted private key] done"},
    {"-----BEGIN RSA PRIVATE KEY-----\nMIIB\n-----END RSA PRIVATE KEY-----\n"
     "-----BEGIN ENCRYPTED PRIVATE KEY-----\nMIIC\n-----END ENCRYPTED PRIVATE KEY-----",
     "[redacted private key]\n[redacted private key]"},
    {"cut -----BEGIN EC PRIVATE KEY-----\nMHcCAQEEI", "cut [redacted private key]"},
    {"-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----",
     "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----"},
    {"-----BEGIN PUBLIC KEY-----\nMCow\n-----END PUBLIC KEY-----",
     "-----BEGIN PUBLIC KEY-----\nMCow\n-----END PUBLIC KEY-----"},
};

TEST(Redact, Table) {
  for (const auto& c : kCases) {
    EXPECT_EQ(redact(c.input), c.expected) << "input: " << c.input;
  }
}

TEST(Redact, IsIdempotent) {
  for (const auto& c : kCases) {
    EXPECT_EQ(redact(redact(c.input)), c.expected) << "input: " << c.input;
  }
}

TEST(Secret, FormatsAsRedacted) {
  Secret<std::string> password("hunter2");
  EXPECT_EQ(password.reveal(), "hunter2");
  EXPECT_EQ(fmt::format("{}", password), "[redacted]");
  EXPECT_EQ(fmt::format("pw={:>12}|", password), "pw=  [redacted]|");
  EXPECT_EQ(fmt::format("{}", Secret<int>(1234)), "[redacted]");
}

TEST(ParseLevel, KnowsExactlyTheDocumentedNames) {
  using spdlog::level::level_enum;
  EXPECT_EQ(parse_level("trace"), level_enum::trace);
  EXPECT_EQ(parse_level("debug"), level_enum::debug);
  EXPECT_EQ(parse_level("info"), level_enum::info);
  EXPECT_EQ(parse_level("warn"), level_enum::warn);
  EXPECT_EQ(parse_level("error"), level_enum::err);
  EXPECT_EQ(parse_level("critical"), level_enum::critical);
  EXPECT_EQ(parse_level("off"), level_enum::off);
  EXPECT_EQ(parse_level("INFO"), std::nullopt);
  EXPECT_EQ(parse_level("warning"), std::nullopt);
  EXPECT_EQ(parse_level(""), std::nullopt);
  EXPECT_EQ(parse_level("info "), std::nullopt);
}

class LogFileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/log_test.XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    // A zone far from UTC, so a local-time stamp could not pass for UTC.
    const char* tz = std::getenv("TZ");
    if (tz != nullptr) saved_tz_ = tz;
    setenv("TZ", "JST-9", 1);
    tzset();
  }
  void TearDown() override {
    init({.service = "log_test"});  // let go of the file before the directory goes
    if (saved_tz_) {
      setenv("TZ", saved_tz_->c_str(), 1);
    } else {
      unsetenv("TZ");
    }
    tzset();
    std::filesystem::remove_all(dir_);
  }

  static std::vector<std::string> lines_of(const std::filesystem::path& path) {
    spdlog::default_logger()->flush();
    std::ifstream in(path);
    std::vector<std::string> lines;
    for (std::string line; std::getline(in, line);) lines.push_back(line);
    return lines;
  }

  std::filesystem::path dir_;
  std::optional<std::string> saved_tz_;
};

TEST_F(LogFileTest, LinesHaveTheServicePatternInUtcAndNoSecrets) {
  const auto file = dir_ / "svc.log";
  ::testing::internal::CaptureStderr();
  init({.service = "enclave-testd", .level = spdlog::level::info, .file = file});
  spdlog::info("login user={} password={}", "bob", "hunter2");
  spdlog::info("assertion {}", Secret<std::string>("s3cr3t-assertion"));
  spdlog::warn("request {}", R"({"user":"bob","token":"abc123tok"})");
  spdlog::error("bad key\n-----BEGIN PRIVATE KEY-----\nMIIEvQIBADAN\n-----END PRIVATE KEY-----");
  spdlog::debug("below the level: password=debugpw");
  const std::string err = ::testing::internal::GetCapturedStderr();

  const std::string text = [&] {
    spdlog::default_logger()->flush();
    std::ifstream in(file);
    std::stringstream s;
    s << in.rdbuf();
    return s.str();
  }();
  for (const std::string& output : {text, err}) {
    EXPECT_THAT(output, Not(HasSubstr("hunter2")));
    EXPECT_THAT(output, Not(HasSubstr("s3cr3t")));
    EXPECT_THAT(output, Not(HasSubstr("abc123tok")));
    EXPECT_THAT(output, Not(HasSubstr("MIIEvQIBADAN")));
    EXPECT_THAT(output, Not(HasSubstr("debugpw")));
    EXPECT_THAT(output, HasSubstr("login user=bob password=[redacted]\n"));
    EXPECT_THAT(output, HasSubstr("assertion [redacted]\n"));
    EXPECT_THAT(output, HasSubstr(R"(request {"user":"bob","token":"[redacted]"})"));
    EXPECT_THAT(output, HasSubstr("bad key\n[redacted private key]\n"));
  }

  const auto lines = lines_of(file);
  ASSERT_FALSE(lines.empty());
  const std::regex shape(
      R"((\d{4})-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d)\.\d{3}Z enclave-testd\[(\d+)\] info: login user=bob password=\[redacted\])");
  std::smatch m;
  ASSERT_TRUE(std::regex_match(lines[0], m, shape)) << lines[0];
  EXPECT_EQ(std::stoi(m[7].str()), getpid());
  std::tm tm{};
  tm.tm_year = std::stoi(m[1].str()) - 1900;
  tm.tm_mon = std::stoi(m[2].str()) - 1;
  tm.tm_mday = std::stoi(m[3].str());
  tm.tm_hour = std::stoi(m[4].str());
  tm.tm_min = std::stoi(m[5].str());
  tm.tm_sec = std::stoi(m[6].str());
  const auto stamped = timegm(&tm);
  EXPECT_LE(std::llabs(static_cast<long long>(stamped - std::time(nullptr))), 120);
  EXPECT_THAT(lines[2], HasSubstr("enclave-testd[" + std::to_string(getpid()) + "] warning: "));
}

TEST_F(LogFileTest, FileIsAppendedAndInitReplacesTheLogger) {
  const auto file = dir_ / "svc.log";
  ::testing::internal::CaptureStderr();
  init({.service = "first-svc", .level = spdlog::level::info, .file = file});
  spdlog::info("one");
  init({.service = "second-svc", .level = spdlog::level::debug, .file = file});
  spdlog::debug("two token={}", "t0k");
  spdlog::default_logger()->info("three");
  (void)::testing::internal::GetCapturedStderr();
  const auto lines = lines_of(file);
  ASSERT_EQ(lines.size(), 3u);
  EXPECT_THAT(lines[0], HasSubstr(" first-svc["));
  EXPECT_THAT(lines[0], HasSubstr("] info: one"));
  EXPECT_THAT(lines[1], HasSubstr(" second-svc["));
  EXPECT_THAT(lines[1], HasSubstr("] debug: two token=[redacted]"));
  EXPECT_THAT(lines[2], HasSubstr("] info: three"));
}

TEST_F(LogFileTest, UnwritableFileFallsBackToStderrAndSaysSo) {
  const auto blocker = dir_ / "not-a-dir";
  std::ofstream(blocker) << "x";
  ::testing::internal::CaptureStderr();
  init({.service = "svc", .level = spdlog::level::info, .file = blocker / "svc.log"});
  spdlog::info("still logging secret={}", "pw123");
  const std::string err = ::testing::internal::GetCapturedStderr();
  EXPECT_THAT(err, HasSubstr("svc["));
  EXPECT_THAT(err,
              HasSubstr("] error: cannot open the log file " + (blocker / "svc.log").string()));
  EXPECT_THAT(err, HasSubstr("] info: still logging secret=[redacted]"));
  EXPECT_THAT(err, Not(HasSubstr("pw123")));
}

}  // namespace
}  // namespace enclave::log
