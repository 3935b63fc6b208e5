// The shipped login stack with real parts around it, for the tests that run it through PAM:
// Linux-PAM reads policies/pam/enclave-login, rendered as enclave-sessiond renders it but with
// pam_matrix (pam_wrapper's test module) in place of pam_unix, so pam_faillock, the password
// check and pam_enclave_fingerprint.so all run; the registry is a real registry.db with a
// sealed print; the audit log is a real enclave-auditd. The kiosk is played by the test: it
// types the password and signs assertions with the device's Ed25519 key.
//
// Everything lives under one scratch directory (PamStackFiles). Writing the stack and running
// the services are separate steps, because pamtest_stack_test writes the stack as root and
// runs the rest as an unprivileged user.
#pragma once

#include <gtest/gtest.h>

#include <openssl/evp.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <memory>
#include <regex>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/ed25519.hpp"
#include "common/login/assertion.hpp"
#include "sessionmgr/service/print_vault.hpp"
#include "sessionmgr/service/registry_store.hpp"
#include "tests/support/process.hpp"

namespace enclave::sessionmgr::pam_stack_fixture {

inline constexpr const char* kPamMatrix = "/usr/lib/x86_64-linux-gnu/pam_wrapper/pam_matrix.so";
inline const std::filesystem::path kModuleDir =
    std::filesystem::path(ENCLAVE_BINARY_DIR) / "lib/security";
// The approved site's kiosk, and an address in that site's pool.
inline constexpr const char* kDevice = "kiosk-0001";
inline constexpr const char* kKioskAddress = "10.8.0.5";
inline constexpr const char* kPrintId = "print-1";

inline std::string read_text(const std::filesystem::path& p) {
  std::ifstream in(p);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

struct PamStackFiles {
  std::filesystem::path root;
  // Added to the environment of enclave-auditd and enclave-audit.
  std::map<std::string, std::string> tool_env;

  std::filesystem::path policies() const { return root / "policies"; }
  std::filesystem::path state() const { return root / "state"; }
  std::filesystem::path pam_dir() const { return root / "pam"; }  // holds enclave-login
  std::filesystem::path passdb() const { return root / "passdb"; }
  std::filesystem::path registry() const { return state() / "sessionmgr" / "registry.db"; }
  std::filesystem::path print_key() const { return state() / "keys" / "prints.key"; }
  std::filesystem::path audit_socket() const { return state() / "run" / "auditd.sock"; }
  std::map<std::string, std::string> env() const {
    auto env = tool_env;
    env["ENCLAVE_POLICIES"] = policies().string();
    env["ENCLAVE_STATE_DIR"] = state().string();
    return env;
  }
};

// pam_dir()/enclave-login: the shipped stack, pam_unix swapped for pam_matrix reading
// passdb() (pam_matrix's "user:password:service" lines, `passdb_lines`).
inline void write_stack(const PamStackFiles& f, const std::string& passdb_lines) {
  std::ofstream(f.passdb()) << passdb_lines;
  std::string stack = read_text(testing::source_dir() / "policies/pam/enclave-login");
  const std::string matrix = std::string(kPamMatrix) + " passdb=" + f.passdb().string();
  stack = std::regex_replace(stack, std::regex("pam_unix\\.so"), matrix);
  for (const auto& [from, to] : std::vector<std::pair<std::string, std::string>>{
           {"@ENCLAVE_STATE_DIR@", f.state().string()},
           {"@ENCLAVE_PAM_MODULES@", kModuleDir.string()},
           {"@ENCLAVE_REGISTRY@", f.registry().string()},
           {"@ENCLAVE_PRINT_KEY@", f.print_key().string()},
           {"@ENCLAVE_AUDIT_SOCKET@", f.audit_socket().string()}}) {
    stack = std::regex_replace(stack, std::regex(from), to);
  }
  std::filesystem::create_directories(f.pam_dir());
  std::ofstream(f.pam_dir() / "enclave-login") << stack;
}

// The state directory and a running enclave-auditd (its key made first) in `auditd`.
inline void start_auditd(const PamStackFiles& f, std::unique_ptr<testing::Child>& auditd) {
  std::filesystem::create_directories(f.policies());
  std::filesystem::create_directories(f.state() / "run");
  std::filesystem::create_directories(f.state() / "faillock");
  std::ofstream(f.policies() / "audit.toml")
      << "[audit]\norigin = \"test.example/audit\"\n"
      << "[audit.checkpoint]\nevery_entries = 1000\nevery_seconds = 30\n";
  const auto keygen = testing::run({testing::binary("enclave-auditd").string(), "keygen"}, f.env());
  ASSERT_EQ(keygen.exit_code, 0) << keygen.err;
  auditd = std::make_unique<testing::Child>(
      std::vector<std::string>{testing::binary("enclave-auditd").string(), "run"}, f.env(), f.root);
  ASSERT_TRUE(testing::wait_for_path(f.audit_socket())) << auditd->stderr_text();
}

// The registry: an approved site "tokyo-1" (pool 10.8.0.0/24), its kiosk kDevice with
// `device_key`'s public half, the analyst alice with `print` enrolled on that kiosk (sealed in
// the print vault as kPrintId, the vault key made here), and the steward sam who approved it.
inline void enrol_alice(const PamStackFiles& f, EVP_PKEY* device_key, const Bytes& print) {
  using namespace std::chrono_literals;
  auto store = registry::RegistryStore::open(f.registry());
  ASSERT_TRUE(store) << store.error().describe();
  auto vault = PrintVault::load(f.print_key(), PrintVault::KeyFile::kCreateIfMissing);
  ASSERT_TRUE(vault) << vault.error().describe();
  const TimePoint now = std::chrono::system_clock::now();
  registry::Site site;
  site.id = "tokyo-1";
  site.name = "Tokyo room 1";
  site.ike_identity = "tokyo-1.sites.enclave";
  site.site_class = "security-room";
  site.pools.push_back(registry::IpNetwork::parse("10.8.0.0/24").value());
  site.created_at = site.updated_at = now;
  ASSERT_TRUE(registry::approve(site, now - 24h, now + 24h * 365, now));
  registry::Device device;
  device.id = kDevice;
  device.site = "tokyo-1";
  device.certificate_pem = "-";
  device.certificate_sha256 = std::string(64, 'a');
  device.serial = "01";
  device.public_key = crypto::ed25519_public_key(device_key).value();
  device.created_at = now;
  registry::User alice{"alice", "Alice", {registry::Role::kAnalyst}, false, now, now};
  registry::User steward{"sam", "Sam", {registry::Role::kSteward}, false, now, now};
  auto sealed = vault->seal(print, {"alice", kDevice, kPrintId});
  ASSERT_TRUE(sealed);
  auto done = store->transaction([&]() -> Status {
    ENCLAVE_TRY(store->insert_user(alice));
    ENCLAVE_TRY(store->insert_user(steward));
    ENCLAVE_TRY(store->insert_site(site));
    ENCLAVE_TRY(store->insert_device(device));
    registry::Enrolment e;
    e.user = "alice";
    e.device = kDevice;
    e.state = registry::EnrolmentState::kEnrolled;
    e.approved_by = "sam";
    e.approved_at = now;
    e.enrolled_at = now;
    e.print_id = kPrintId;
    auto id = store->insert_enrolment(e);
    if (!id) return error_of(id);
    return store->insert_print(kPrintId, *id, *sealed, now);
  });
  ASSERT_TRUE(done) << done.error().describe();
}

// What the kiosk signs after matching the finger against the challenge's first print.
inline login::FingerprintAssertion assertion_for(const login::FingerprintChallenge& challenge,
                                                 login::MatchResult verdict) {
  return {challenge.nonce,
          challenge.user,
          challenge.device,
          challenge.prints.front().print_id,
          verdict,
          std::chrono::duration_cast<std::chrono::seconds>(
              std::chrono::system_clock::now().time_since_epoch())
              .count()};
}

// The login.fingerprint events enclave-auditd recorded, oldest first.
inline nlohmann::json fingerprint_events(const PamStackFiles& f) {
  auto r = testing::run(
      {testing::binary("enclave-audit").string(), "query", "--type", "login.fingerprint", "--json"},
      f.env());
  auto j = nlohmann::json::parse(r.out, nullptr, false);
  if (!j.is_array()) {
    ADD_FAILURE() << "enclave-audit query failed (" << r.exit_code << "): " << r.err;
    return nlohmann::json::array();
  }
  return j;
}

}  // namespace enclave::sessionmgr::pam_stack_fixture
