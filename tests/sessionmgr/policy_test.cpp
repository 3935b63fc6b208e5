// policies/sessions.toml: the shipped file loads; defaults; every bad value is refused with the
// file, line and dotted key.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "sessionmgr/core/policy.hpp"
#include "tests/support/process.hpp"

namespace enclave::sessionmgr {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

Expected<SessionPolicy> load(const std::string& text) {
  auto doc = policy::Document::parse(text, "sessions.toml");
  if (!doc) return error_of(doc);
  return load_session_policy(*doc, "/state");
}

const std::string kTier = "[tiers.standard]\n";
const std::string kLocal =
    "[compartments.demo]\ntier = \"standard\"\nlocal = { kind = \"shadow\" }\n";

std::string error_of_text(const std::string& text) {
  auto p = load(text);
  EXPECT_FALSE(p) << text;
  return p ? "" : p.error().message;
}

TEST(SessionPolicy, ShippedPolicyLoads) {
  auto doc = policy::Document::load_file(testing::source_dir() / "policies" / "sessions.toml");
  ASSERT_TRUE(doc) << doc.error().describe();
  auto p = load_session_policy(*doc, "/var/lib/enclave");
  ASSERT_TRUE(p) << p.error().describe();
  EXPECT_EQ(p->sessiond.socket, "/var/lib/enclave/run/sessiond.sock");
  EXPECT_EQ(p->sessiond.ticket_ttl, std::chrono::seconds(60));
  EXPECT_EQ(p->sessiond.registry, "/var/lib/enclave/sessionmgr/registry.db");
  EXPECT_EQ(p->sessiond.print_key, "/var/lib/enclave/keys/prints.key");
  ASSERT_TRUE(p->compartments.contains("demo-shadow"));
  ASSERT_TRUE(p->compartments.contains("demo-xrdp"));
  EXPECT_EQ(std::get<LocalPool>(p->compartments.at("demo-shadow").pool).kind, LocalKind::kShadow);
  EXPECT_EQ(std::get<LocalPool>(p->compartments.at("demo-xrdp").pool).kind, LocalKind::kXrdp);
  const Tier& restricted = p->tiers.at("restricted");
  EXPECT_EQ(restricted.utc_offset_minutes, 9 * 60);
  ASSERT_EQ(restricted.windows.size(), 1u);
  EXPECT_EQ(restricted.windows[0].from_minute, 8 * 60);
  EXPECT_EQ(restricted.windows[0].days, 0b0111110);
  EXPECT_THAT(restricted.site_classes, ElementsAre("security-room"));
  // The login's stack is the template beside the policy file.
  EXPECT_EQ(p->sessiond.login.pam_stack, testing::source_dir() / "policies/pam/enclave-login");
  EXPECT_EQ(p->sessiond.login.failure_delay, std::chrono::seconds(1));
  EXPECT_EQ(p->sessiond.enrolment_window, std::chrono::minutes(30));
  EXPECT_EQ(p->sessiond.outbox_root, "/var/lib/enclave/exitcontrol/outbox");
  EXPECT_TRUE(p->sessiond.exporters.empty());
  EXPECT_EQ(p->tiers.at("standard").export_profile, "acro-default");
  EXPECT_EQ(p->tiers.at("standard").export_stewards, 1);
  EXPECT_EQ(restricted.export_profile, "ndb");
  EXPECT_EQ(restricted.export_stewards, 2);
  // Both profiles ship beside it.
  EXPECT_TRUE(check_export_profiles(*doc, *p));
}

TEST(SessionPolicy, LoginSettings) {
  auto p = load(
      "[sessiond]\nenrolment_window_s = 600\n[sessiond.login]\n"
      "pam_service = \"enclave-login-sss\"\npam_modules = \"lib/security\"\n"
      "failure_delay_ms = 250\nanswer_timeout_s = 60\nmax_logins = 50\n" +
      kTier + kLocal);
  ASSERT_TRUE(p) << p.error().describe();
  const LoginSettings& l = p->sessiond.login;
  EXPECT_EQ(l.pam_service, "enclave-login-sss");
  EXPECT_EQ(l.pam_stack, "pam/enclave-login-sss");  // beside "sessions.toml", a relative name
  EXPECT_EQ(l.pam_modules, "/state/lib/security");
  EXPECT_EQ(l.failure_delay, std::chrono::milliseconds(250));
  EXPECT_EQ(l.answer_timeout, std::chrono::seconds(60));
  EXPECT_EQ(l.max_logins, 50);
  EXPECT_EQ(p->sessiond.enrolment_window, std::chrono::minutes(10));
  EXPECT_THAT(error_of_text("[sessiond.login]\nfailure_delay_ms = 60000\n" + kTier + kLocal),
              HasSubstr("failure_delay_ms"));
  EXPECT_THAT(error_of_text("[sessiond.login]\npam_service = \"../etc/passwd\"\n" + kTier + kLocal),
              HasSubstr("pam_service"));
  EXPECT_THAT(error_of_text("[sessiond.login]\npam_servic = \"x\"\n" + kTier + kLocal),
              HasSubstr("pam_servic"));
}

TEST(SessionPolicy, Defaults) {
  auto p = load(kTier + kLocal);
  ASSERT_TRUE(p) << p.error().describe();
  const Tier& t = p->tiers.at("standard");
  EXPECT_THAT(t.static_channels, ElementsAre("drdynvc"));
  EXPECT_THAT(t.dynamic_channels, ElementsAre("Microsoft::Windows::RDS::Graphics",
                                              "Microsoft::Windows::RDS::DisplayControl"));
  EXPECT_FALSE(t.audio);
  EXPECT_EQ(t.grace, std::chrono::seconds(300));
  EXPECT_EQ(t.utc_offset_minutes, 540);
  EXPECT_TRUE(t.windows.empty());
  EXPECT_EQ(t.max_sessions_per_user, 1);
  EXPECT_EQ(p->sessiond.database, "/state/sessionmgr/sessions.db");
  EXPECT_EQ(p->sessiond.registry, "/state/sessionmgr/registry.db");
  EXPECT_EQ(p->sessiond.print_key, "/state/keys/prints.key");
  EXPECT_EQ(p->sessiond.ca_certificate, "/state/keys/ca/ca.crt");
  EXPECT_EQ(p->sessiond.gateway_socket, "/state/run/gatewayd.sock");
  EXPECT_EQ(std::get<LocalPool>(p->compartments.at("demo").pool).max_desktops, 4);
}

TEST(SessionPolicy, ExportSettings) {
  auto defaults = load(kTier + kLocal);
  ASSERT_TRUE(defaults) << defaults.error().describe();
  EXPECT_EQ(defaults->sessiond.outbox_root, "/state/exitcontrol/outbox");
  EXPECT_TRUE(defaults->sessiond.exporters.empty());
  EXPECT_EQ(defaults->tiers.at("standard").export_profile, "acro-default");
  EXPECT_EQ(defaults->tiers.at("standard").export_stewards, 1);

  auto p = load(
      "[sessiond]\noutbox_root = \"/srv/outbox\"\nexporters = [\"exportd\"]\n"
      "[tiers.standard]\nexport_profile = \"ndb\"\nexport_stewards = 2\n" +
      kLocal);
  ASSERT_TRUE(p) << p.error().describe();
  EXPECT_EQ(p->sessiond.outbox_root, "/srv/outbox");
  EXPECT_THAT(p->sessiond.exporters, ElementsAre("exportd"));
  EXPECT_EQ(p->tiers.at("standard").export_profile, "ndb");
  EXPECT_EQ(p->tiers.at("standard").export_stewards, 2);

  for (const char* stewards : {"0", "3", "-1", "\"2\"", "1.5"}) {
    EXPECT_THAT(error_of_text("[tiers.standard]\nexport_stewards = " + std::string(stewards) +
                              "\n" + kLocal),
                HasSubstr("sessions.toml:2:1: tiers.standard.export_stewards: expected an "
                          "integer between 1 and 2"))
        << stewards;
  }
  for (const char* profile : {"../ndb", "NDB", "ndb.toml", "a/b"}) {
    EXPECT_THAT(error_of_text("[tiers.standard]\nexport_profile = \"" + std::string(profile) +
                              "\"\n" + kLocal),
                HasSubstr("sessions.toml:2:1: tiers.standard.export_profile: \"" +
                          std::string(profile) + "\" is not a profile name"))
        << profile;
  }
  EXPECT_THAT(error_of_text("[tiers.standard]\nexport_profile = \"\"\n" + kLocal),
              HasSubstr("tiers.standard.export_profile: must not be empty"));
  EXPECT_THAT(error_of_text("[sessiond]\nexporters = \"exportd\"\n" + kTier + kLocal),
              HasSubstr("sessions.toml:2:1: sessiond.exporters"));
  EXPECT_THAT(error_of_text("[sessiond]\noutbox_root = \"\"\n" + kTier + kLocal),
              HasSubstr("sessiond.outbox_root: must not be empty"));
  EXPECT_THAT(error_of_text("[sessiond]\nexporter = []\n" + kTier + kLocal),
              HasSubstr("sessions.toml:2:1: sessiond.exporter: unknown key"));
}

// The profiles are files beside the policy: a tier naming one that is not there is refused at
// its export_profile key (at the tier, for the default).
TEST(SessionPolicy, ExportProfilesMustExist) {
  testing::TempDir dir;
  std::filesystem::create_directories(dir / "exitcontrol");
  std::ofstream(dir / "exitcontrol" / "ndb.toml") << "threshold = 10\n";
  auto check = [&](const std::string& text) -> Status {
    auto doc = policy::Document::parse(text, (dir / "sessions.toml").string());
    if (!doc) return error_of(doc);
    auto p = load_session_policy(*doc, "/state");
    if (!p) return error_of(p);
    return check_export_profiles(*doc, *p);
  };
  EXPECT_TRUE(check("[tiers.standard]\nexport_profile = \"ndb\"\n" + kLocal));
  auto missing = check("[tiers.standard]\ngrace_s = 0\nexport_profile = \"nope\"\n" + kLocal);
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().message,
            (dir / "sessions.toml").string() +
                ":3:1: tiers.standard.export_profile: no export profile \"nope\": " +
                (dir / "exitcontrol" / "nope.toml").string() + " is missing");
  auto by_default = check("[tiers.ok]\nexport_profile = \"ndb\"\n[tiers.standard]\n" + kLocal);
  ASSERT_FALSE(by_default);
  EXPECT_THAT(by_default.error().message,
              HasSubstr("sessions.toml:3:1: tiers.standard.export_profile: no export profile "
                        "\"acro-default\""));
  // A directory of that name is not a profile.
  std::filesystem::create_directories(dir / "exitcontrol" / "acro-default.toml");
  EXPECT_FALSE(check(kTier + kLocal));
}

TEST(SessionPolicy, AudioAddsPlaybackChannels) {
  auto p = load("[tiers.standard]\naudio = true\nstatic_channels = [\"DRDYNVC\"]\n" + kLocal);
  ASSERT_TRUE(p) << p.error().describe();
  const Tier& t = p->tiers.at("standard");
  EXPECT_THAT(t.static_channels, ElementsAre("drdynvc", "rdpsnd"));
  EXPECT_THAT(t.dynamic_channels,
              ElementsAre("Microsoft::Windows::RDS::Graphics",
                          "Microsoft::Windows::RDS::DisplayControl", "AUDIO_PLAYBACK_DVC"));
}

TEST(SessionPolicy, StaticHosts) {
  auto p = load(kTier +
                "[compartments.a]\ntier = \"standard\"\n"
                "[[compartments.a.hosts]]\nhost = \"10.0.0.1\"\npin_sha256 = \"" +
                std::string(64, 'A') +
                "\"\nprovision_command = [\"/usr/bin/true\"]\ncapacity = 2\n"
                "[[compartments.a.hosts]]\nhost = \"10.0.0.2\"\nport = 3390\nca_file = \"ca.pem\"\n"
                "credentials = \"fixed\"\ncredentials_file = \"/etc/c.toml\"\n");
  ASSERT_TRUE(p) << p.error().describe();
  const auto& hosts = std::get<std::vector<StaticHost>>(p->compartments.at("a").pool);
  ASSERT_EQ(hosts.size(), 2u);
  EXPECT_EQ(hosts[0].id, "a/10.0.0.1:3389");
  EXPECT_EQ(hosts[0].pin_sha256, std::string(64, 'a'));
  EXPECT_EQ(hosts[0].server_name, "10.0.0.1");
  EXPECT_EQ(hosts[0].capacity, 2);
  EXPECT_EQ(hosts[0].credentials, CredentialSource::kPerSession);
  EXPECT_EQ(hosts[0].account, "analyst");
  EXPECT_EQ(hosts[1].id, "a/10.0.0.2:3390");
  EXPECT_EQ(hosts[1].ca_file, "/state/ca.pem");
  EXPECT_EQ(hosts[1].credentials, CredentialSource::kFixed);
}

TEST(SessionPolicy, ErrorsNameFileLineAndKey) {
  EXPECT_EQ(error_of_text(kTier + "[compartments.demo]\ntier = \"gold\"\nlocal = {}\n"),
            "sessions.toml:3:1: compartments.demo.tier: unknown tier \"gold\" (known: standard)");
  EXPECT_THAT(error_of_text("[tiers.standard]\ngrace_s = -1\n" + kLocal),
              HasSubstr("sessions.toml:2:1: tiers.standard.grace_s: expected an integer"));
  EXPECT_THAT(error_of_text("[tiers.standard]\nstatic_channels = [\"drdynvc\", \"toolongname\"]\n" +
                            kLocal),
              HasSubstr("sessions.toml:2:1: tiers.standard.static_channels: \"toolongname\""));
  EXPECT_THAT(error_of_text("[tiers.standard]\nstatic_channels = []\n" + kLocal),
              HasSubstr("tiers.standard.static_channels: dynamic channels travel inside"));
  EXPECT_THAT(error_of_text("[tiers.standard]\ntimezone = \"Europe/Paris\"\n" + kLocal),
              HasSubstr("sessions.toml:2:1: tiers.standard.timezone: expected a UTC offset"));
  EXPECT_THAT(
      error_of_text("[tiers.standard]\nwindows = [{ days = [\"monday\"] }]\n" + kLocal),
      HasSubstr("sessions.toml:2:14: tiers.standard.windows[0].days: \"monday\" is not a day"));
  EXPECT_THAT(error_of_text("[tiers.standard]\nwindows = [{ from = \"8:00\" }]\n" + kLocal),
              HasSubstr("tiers.standard.windows[0].from: expected \"HH:MM\""));
  EXPECT_THAT(error_of_text("[tiers.standard]\nidle = 5\n" + kLocal),
              HasSubstr("sessions.toml:2:1: tiers.standard.idle: unknown key"));
  EXPECT_THAT(error_of_text(kTier + "[compartments.demo]\ntier = \"standard\"\n"),
              HasSubstr("compartments.demo.tier: a compartment needs exactly one desktop pool"));
  EXPECT_THAT(error_of_text(
                  kTier + "[compartments.demo]\ntier = \"standard\"\nlocal = { kind = \"vnc\" }\n"),
              HasSubstr("sessions.toml:4:11: compartments.demo.local.kind: expected \"shadow\" or "
                        "\"xrdp\", found \"vnc\""));
  EXPECT_THAT(
      error_of_text(kTier + "[compartments.a]\ntier = \"standard\"\n[[compartments.a.hosts]]\n"
                            "host = \"h\"\nprovision_command = [\"/bin/true\"]\n"),
      HasSubstr("compartments.a.hosts[0].host: needs pin_sha256 or ca_file"));
  EXPECT_THAT(
      error_of_text(kTier + "[compartments.a]\ntier = \"standard\"\n[[compartments.a.hosts]]\n"
                            "host = \"h\"\npin_sha256 = \"abc\"\n"),
      HasSubstr("sessions.toml:6:1: compartments.a.hosts[0].pin_sha256: expected 64 hex"));
  EXPECT_THAT(
      error_of_text(kTier + "[compartments.a]\ntier = \"standard\"\n[[compartments.a.hosts]]\n"
                            "host = \"h\"\nca_file = \"ca\"\n"),
      HasSubstr("needs provision_command"));
  EXPECT_THAT(
      error_of_text(kTier + "[compartments.a]\ntier = \"standard\"\n[[compartments.a.hosts]]\n"
                            "host = \"h\"\nca_file = \"ca\"\nprovision_command = [\"rel\"]\n"),
      HasSubstr("sessions.toml:7:1: compartments.a.hosts[0].provision_command: the "
                "program must be an absolute path"));
  EXPECT_THAT(
      error_of_text(kTier + "[compartments.a]\ntier = \"standard\"\n[[compartments.a.hosts]]\n"
                            "host = \"h\"\nca_file = \"ca\"\ncredentials = \"fixed\"\n"),
      HasSubstr("compartments.a.hosts[0].credentials: credentials = \"fixed\" needs "
                "credentials_file"));
  EXPECT_THAT(error_of_text("[sessiond]\ngateway_address = \"nohost\"\n" + kTier + kLocal),
              HasSubstr("sessions.toml:2:1: sessiond.gateway_address: expected HOST:PORT"));
  EXPECT_THAT(error_of_text("[sessiond]\nticket_ttl_s = 3600\n" + kTier + kLocal),
              HasSubstr("sessiond.ticket_ttl_s: expected an integer between 5 and 600"));
  EXPECT_THAT(error_of_text(kLocal), HasSubstr("missing [tiers.NAME]"));
  EXPECT_THAT(error_of_text("[tiers.Bad]\n" + kLocal), HasSubstr("tiers.Bad: a tier name"));
}

}  // namespace
}  // namespace enclave::sessionmgr
