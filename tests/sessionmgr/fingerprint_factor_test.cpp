// The fingerprint factor with real Ed25519 device keys, real challenges and assertions
// (common/login) and a real back-off file: the kiosk is played by a conversation that signs
// what a kiosk would sign, or what an attacker would send.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <openssl/evp.h>

#include "common/ed25519.hpp"
#include "sessionmgr/service/fingerprint_factor.hpp"
#include "tests/support/process.hpp"

namespace enclave::sessionmgr {
namespace {

using ::testing::HasSubstr;
using testing::TempDir;
using namespace std::chrono_literals;
using Kind = FingerprintOutcome::Kind;

crypto::EvpPkeyPtr new_device_key() {
  return crypto::EvpPkeyPtr(EVP_PKEY_Q_keygen(nullptr, nullptr, "ED25519"));
}

// The kiosk: reads the challenge, "scans" (the verdict is the test's), signs with its key.
struct Kiosk : FingerprintConversation {
  EVP_PKEY* key = nullptr;
  login::MatchResult verdict = login::MatchResult::kMatch;
  std::optional<std::string> replay;  // send this instead of a fresh answer
  std::function<void()> while_scanning;
  std::vector<std::string> answers;  // every wire text sent
  bool fail = false;

  Expected<std::string> ask(const std::string& text) override {
    if (fail) return fail_with();
    auto challenge = login::parse_challenge(as_bytes(text));
    EXPECT_TRUE(challenge.has_value());
    if (!challenge) return Unexpected<Error>{Error{Errc::kInternal, "bad challenge"}};
    if (while_scanning) while_scanning();
    if (replay) return *replay;
    login::FingerprintAssertion a{challenge->nonce,  challenge->user,
                                  challenge->device, challenge->prints.front().print_id,
                                  verdict,           now_s};
    auto wire = login::sign_assertion(a, key);
    EXPECT_TRUE(wire.has_value());
    answers.push_back(*wire);
    return *wire;
  }
  static Expected<std::string> fail_with() {
    return Unexpected<Error>{Error{Errc::kUnavailable, "kiosk connection closed"}};
  }
  std::int64_t now_s = 0;
};

struct Fixture {
  Fixture() {
    device_key = new_device_key();
    registry::Device d;
    d.id = "kiosk-0001";
    d.site = "tokyo-1";
    d.public_key = crypto::ed25519_public_key(device_key.get()).value();
    device = d;
    registry::Site s;
    s.id = "tokyo-1";
    s.ike_identity = "tokyo-1.sites.enclave";
    s.pools.push_back(registry::IpNetwork::parse("10.8.0.0/24").value());
    EXPECT_TRUE(registry::approve(s, now - 24h, now + 24h * 365, now));
    site = s;
    kiosk.key = device_key.get();
    sync_kiosk_clock();
  }
  void sync_kiosk_clock() {
    kiosk.now_s = std::chrono::duration_cast<std::chrono::seconds>(now.time_since_epoch()).count();
  }
  FingerprintContext context() {
    FingerprintContext c;
    c.user = "alice";
    c.source = "10.8.0.5";
    c.device_id = "kiosk-0001";
    c.device = device;
    c.site = site;
    c.prints = {{"print-1", Bytes{1, 2, 3, 4}}};
    c.clock = [this] { return now; };
    return c;
  }
  FingerprintOutcome run() {
    auto store = BackoffStore::open(dir / "biometric.db");
    EXPECT_TRUE(store.has_value());
    return authenticate_fingerprint(context(), kiosk, *store, policy);
  }

  TempDir dir;
  TimePoint now = std::chrono::system_clock::from_time_t(1'800'000'000);
  crypto::EvpPkeyPtr device_key;
  std::optional<registry::Device> device;
  std::optional<registry::Site> site;
  FingerprintPolicy policy;
  Kiosk kiosk;
};

TEST(FingerprintFactor, AMatchSignedByTheDeviceIsAccepted) {
  Fixture f;
  auto o = f.run();
  EXPECT_EQ(o.kind, Kind::kAccepted) << o.reason;
  EXPECT_EQ(o.print_id, "print-1");
}

TEST(FingerprintFactor, NoMatchCountsAndTheSixthAttemptWaits) {
  Fixture f;
  f.kiosk.verdict = login::MatchResult::kNoMatch;
  for (int i = 1; i <= 5; ++i) {
    auto o = f.run();
    EXPECT_EQ(o.kind, Kind::kFailed) << i;
    EXPECT_EQ(o.reason, "no match");
    EXPECT_EQ(o.consecutive_failures, i);
  }
  // After the fifth failure: 30 s before anything is asked again.
  auto locked = f.run();
  EXPECT_EQ(locked.kind, Kind::kRefused);
  EXPECT_THAT(locked.reason, HasSubstr("biometric back-off: 30 s left after 5 failures"));
  EXPECT_EQ(f.kiosk.answers.size(), 5u);  // the locked attempt never reached the kiosk
  f.now += 30s;
  f.sync_kiosk_clock();
  auto sixth = f.run();
  EXPECT_EQ(sixth.kind, Kind::kFailed);
  EXPECT_EQ(sixth.locked_for, 60s);  // it doubles
  // A match once allowed resets the count.
  f.now += 60s;
  f.sync_kiosk_clock();
  f.kiosk.verdict = login::MatchResult::kMatch;
  EXPECT_EQ(f.run().kind, Kind::kAccepted);
  f.kiosk.verdict = login::MatchResult::kNoMatch;
  EXPECT_EQ(f.run().consecutive_failures, 1);
}

TEST(FingerprintFactor, AReplayedAssertionIsRefused) {
  Fixture f;
  ASSERT_EQ(f.run().kind, Kind::kAccepted);
  f.kiosk.replay = f.kiosk.answers.back();  // a valid match, for the previous challenge
  auto o = f.run();
  EXPECT_EQ(o.kind, Kind::kFailed);
  EXPECT_THAT(o.reason, HasSubstr("wrong_nonce"));
  EXPECT_EQ(o.consecutive_failures, 1);
}

TEST(FingerprintFactor, AnAssertionFromAnotherDeviceIsRefused) {
  Fixture f;
  auto other = new_device_key();
  f.kiosk.key = other.get();
  auto o = f.run();
  EXPECT_EQ(o.kind, Kind::kFailed);
  EXPECT_THAT(o.reason, HasSubstr("bad_signature"));
}

TEST(FingerprintFactor, AStaleAnswerIsRefused) {
  Fixture f;
  f.kiosk.while_scanning = [&f] { f.now += 121s; };  // the answer comes after max_age
  auto o = f.run();
  EXPECT_EQ(o.kind, Kind::kFailed);
  EXPECT_THAT(o.reason, HasSubstr("stale"));
}

TEST(FingerprintFactor, TheKioskGoingAwayIsNotAFailedMatch) {
  Fixture f;
  f.kiosk.fail = true;
  auto o = f.run();
  EXPECT_EQ(o.kind, Kind::kNoAnswer);
  EXPECT_THAT(o.reason, HasSubstr("kiosk connection closed"));
  f.kiosk.fail = false;
  f.kiosk.verdict = login::MatchResult::kNoMatch;
  EXPECT_EQ(f.run().consecutive_failures, 1);  // the lost answer did not count
}

TEST(FingerprintFactor, RefusedBeforeAskingWhenTheRegistrySaysNo) {
  struct Case {
    const char* what;
    std::function<void(Fixture&, FingerprintContext&)> change;
    const char* reason;
  };
  const std::vector<Case> cases = {
      {"unknown device", [](Fixture&, FingerprintContext& c) { c.device.reset(); },
       "unknown device kiosk-0001"},
      {"revoked device",
       [](Fixture&, FingerprintContext& c) { c.device->state = registry::DeviceState::kRevoked; },
       "device kiosk-0001 is revoked"},
      {"no site", [](Fixture&, FingerprintContext& c) { c.site.reset(); }, "no registered site"},
      {"suspended site",
       [](Fixture& f, FingerprintContext& c) { ASSERT_TRUE(registry::suspend(*c.site, f.now)); },
       "site tokyo-1 is suspended"},
      {"approval expired", [](Fixture& f, FingerprintContext&) { f.now += 24h * 366; },
       "its approval has expired"},
      {"address outside the pools", [](Fixture&, FingerprintContext& c) { c.source = "192.0.2.7"; },
       "address 192.0.2.7 is outside the pools of site tokyo-1"},
      {"no enrolled print", [](Fixture&, FingerprintContext& c) { c.prints.clear(); },
       "no print of alice enrolled on device kiosk-0001"},
  };
  for (const auto& k : cases) {
    Fixture f;
    auto c = f.context();
    k.change(f, c);
    auto store = BackoffStore::open(f.dir / "biometric.db");
    ASSERT_TRUE(store);
    auto o = authenticate_fingerprint(c, f.kiosk, *store, f.policy);
    EXPECT_EQ(o.kind, Kind::kRefused) << k.what;
    EXPECT_THAT(o.reason, HasSubstr(k.reason)) << k.what;
    EXPECT_TRUE(f.kiosk.answers.empty()) << k.what << ": the kiosk was asked";
  }
}

}  // namespace
}  // namespace enclave::sessionmgr
