#include "sessionmgr/service/fingerprint_factor.hpp"

namespace enclave::sessionmgr {

using registry::Device;
using registry::DeviceState;
using registry::IpAddress;
using registry::Site;
using registry::SiteState;

namespace {

constexpr store::Migration kBackoffSchema[] = {
    {1,
     "CREATE TABLE biometric_backoff ("
     "  user TEXT PRIMARY KEY,"
     "  consecutive_failures INTEGER NOT NULL,"
     "  locked_until_ms INTEGER NOT NULL)"},
};

std::int64_t unix_seconds(TimePoint t) {
  return std::chrono::duration_cast<std::chrono::seconds>(t.time_since_epoch()).count();
}

FingerprintOutcome refused(std::string reason) {
  FingerprintOutcome o;
  o.kind = FingerprintOutcome::Kind::kRefused;
  o.reason = std::move(reason);
  return o;
}

}  // namespace

const char* outcome_name(FingerprintOutcome::Kind kind) {
  switch (kind) {
    case FingerprintOutcome::Kind::kAccepted:
      return "accepted";
    case FingerprintOutcome::Kind::kRefused:
      return "refused";
    case FingerprintOutcome::Kind::kFailed:
      return "failed";
    case FingerprintOutcome::Kind::kNoAnswer:
      return "no_answer";
  }
  return "refused";
}

Expected<BackoffStore> BackoffStore::open(const std::filesystem::path& path) {
  auto db = store::Database::open(path, kBackoffSchema);
  if (!db) return error_of(db);
  return BackoffStore(std::move(db).value());
}

Expected<BackoffState> BackoffStore::load(const std::string& user) {
  auto st = db_.prepare(
      "SELECT consecutive_failures, locked_until_ms FROM biometric_backoff WHERE user = ?");
  if (!st) return error_of(st);
  st->bind(1, user);
  auto row = st->step();
  if (!row) return error_of(row);
  BackoffState state;
  if (*row) {
    state.consecutive_failures = static_cast<int>(st->column_int64(0));
    state.locked_until = BackoffState::TimePoint(std::chrono::milliseconds(st->column_int64(1)));
  }
  return state;
}

Status BackoffStore::save(const std::string& user, const BackoffState& state) {
  auto st = db_.prepare(
      "INSERT INTO biometric_backoff (user, consecutive_failures, locked_until_ms) "
      "VALUES (?, ?, ?) ON CONFLICT (user) DO UPDATE SET "
      "consecutive_failures = excluded.consecutive_failures, "
      "locked_until_ms = excluded.locked_until_ms");
  if (!st) return error_of(st);
  st->bind(1, user)
      .bind(2, static_cast<std::int64_t>(state.consecutive_failures))
      .bind(3, std::chrono::duration_cast<std::chrono::milliseconds>(
                   state.locked_until.time_since_epoch())
                   .count());
  return st->run();
}

Status check_kiosk(const std::string& device_id, const std::optional<Device>& device,
                   const std::optional<Site>& site, const std::string& source, TimePoint now) {
  auto no = [](std::string reason) { return fail(Errc::kPermission, std::move(reason)); };
  if (!device) return no("unknown device " + device_id);
  if (device->state != DeviceState::kActive) return no("device " + device_id + " is revoked");
  if (!site) return no("device " + device_id + " belongs to no registered site");
  if (!site->may_log_in(now)) {
    return no("site " + site->id + " is " + site_state_name(site->state) +
              (site->state == SiteState::kApproved ? " but its approval has expired" : ""));
  }
  auto address = IpAddress::parse(source);
  if (!address || !site->holds(*address)) {
    return no("address " + source + " is outside the pools of site " + site->id);
  }
  return {};
}

FingerprintOutcome authenticate_fingerprint(const FingerprintContext& c,
                                            FingerprintConversation& conversation,
                                            BackoffStore& backoff,
                                            const FingerprintPolicy& policy) {
  // The kiosk, its site and where it connects from.
  if (auto kiosk = check_kiosk(c.device_id, c.device, c.site, c.source, c.clock()); !kiosk) {
    return refused(kiosk.error().message);
  }
  if (c.prints.empty()) {
    return refused("no print of " + c.user + " enrolled on device " + c.device_id);
  }
  const TimePoint now = c.clock();
  auto state = backoff.load(c.user);
  if (!state) return refused("back-off state: " + state.error().describe());
  if (auto wait = backoff_remaining(*state, now); wait.count() > 0) {
    FingerprintOutcome o =
        refused("biometric back-off: " + std::to_string(wait.count()) + " s left after " +
                std::to_string(state->consecutive_failures) + " failures");
    o.consecutive_failures = state->consecutive_failures;
    o.locked_for = wait;
    return o;
  }

  // The challenge, and the kiosk's signed answer.
  auto nonce = login::new_nonce();
  if (!nonce) return refused(nonce.error().describe());
  login::FingerprintChallenge challenge{*nonce, c.user, c.device_id, c.prints,
                                        unix_seconds(now) + policy.max_age.count()};
  auto text = login::encode_challenge(challenge);
  if (!text) return refused(text.error().describe());
  auto answer = conversation.ask(*text);
  if (!answer) {
    FingerprintOutcome o;
    o.kind = FingerprintOutcome::Kind::kNoAnswer;
    o.reason = "no answer to the fingerprint challenge: " + answer.error().describe();
    return o;
  }
  // Judged at the time the answer came, not when the challenge left.
  const TimePoint answered = c.clock();
  auto verified = login::verify_assertion(
      as_bytes(*answer), c.device->public_key,
      login::expectation_for(challenge, unix_seconds(answered), policy.max_age.count()));

  FingerprintOutcome o;
  if (verified && verified->result == login::MatchResult::kMatch) {
    o.kind = FingerprintOutcome::Kind::kAccepted;
    o.print_id = verified->print_id;
    o.reason = "match";
    if (auto saved = backoff.save(c.user, BackoffState{}); !saved) {
      o.reason += " (back-off state not reset: " + saved.error().describe() + ")";
    }
    return o;
  }
  o.kind = FingerprintOutcome::Kind::kFailed;
  if (verified) {
    o.print_id = verified->print_id;
    o.reason = "no match";
  } else {
    o.reason = std::string("assertion refused (") +
               login::assertion_error_id(verified.error().kind) +
               "): " + verified.error().describe();
  }
  BackoffState next = backoff_after_failure(*state, answered, policy.backoff);
  o.consecutive_failures = next.consecutive_failures;
  o.locked_for = backoff_remaining(next, answered);
  if (auto saved = backoff.save(c.user, next); !saved) {
    o.reason += " (back-off state not saved: " + saved.error().describe() + ")";
  }
  return o;
}

}  // namespace enclave::sessionmgr
