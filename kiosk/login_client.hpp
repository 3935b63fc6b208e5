// The kiosk's side of a login (design "The login path"): mutual TLS to the gateway's login
// API with the device certificate from kitting, then the login messages
// (common/login/messages.hpp): the person at the kiosk answers the prompts, the reader answers
// the fingerprint challenge (matched here with libfprint, signed with the device key), until
// the center says success (a ticket and where to use it) or error.
//
// Enrolment takes the same connection: a steward approves it at the center standing at this
// kiosk, the person scans their finger here until libfprint has a print, and the print goes to
// the center in one enrol_print message, which records it for this user and this reader (the
// device is the one the TLS certificate names).
//
// The person and the reader are interfaces so that the terminal client, the full-screen kiosk
// and the tests drive the same code.
#pragma once

#include <chrono>
#include <filesystem>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "common/bytes.hpp"
#include "common/login/assertion.hpp"
#include "common/login/messages.hpp"
#include "common/result.hpp"

namespace enclave::kiosk {

// What `enclavectl device kit` wrote for this thin client.
struct DeviceKit {
  std::filesystem::path certificate;  // device.crt
  std::filesystem::path private_key;  // device.key (0600)
  std::filesystem::path ca;           // ca.crt: the center's CA, which issued the gateway's
  static DeviceKit in(const std::filesystem::path& dir);
};

// The person at the kiosk.
class Person {
 public:
  virtual ~Person() = default;
  // A visible or secret prompt; nullopt: the person gave up (the login is cancelled).
  virtual std::optional<std::string> answer(const std::string& prompt, bool secret) = 0;
  virtual void tell(const std::string& text, bool is_error) = 0;
};

// The reader: compares one scan with the enrolled prints the challenge carried.
struct FingerprintVerdict {
  std::string print_id;  // the print it matched, or the first one offered when none did
  login::MatchResult result = login::MatchResult::kNoMatch;
};
class FingerprintMatcher {
 public:
  virtual ~FingerprintMatcher() = default;
  virtual Expected<FingerprintVerdict> match(const std::vector<login::EnrolledPrint>& prints) = 0;
};

class FingerprintReader;

// The reader through libfprint: one scan per offered print until one matches (a user usually
// has one print per reader); a failed scan (a finger too short, off centre) is asked for
// again, at most three times, with the reader's advice.
class ReaderMatcher : public FingerprintMatcher {
 public:
  ReaderMatcher(FingerprintReader& reader, Person& person) : reader_(reader), person_(person) {}
  Expected<FingerprintVerdict> match(const std::vector<login::EnrolledPrint>& prints) override;

 private:
  FingerprintReader& reader_;
  Person& person_;
};

struct LoginOptions {
  std::string gateway_host;
  std::uint16_t gateway_port = 0;
  std::string server_name;  // the name the gateway's certificate must carry (its host name)
  DeviceKit kit;
  std::string user;
  // The compartment to enter, for a user whose projects grant several (a login only).
  std::optional<std::string> compartment;
  std::chrono::milliseconds timeout{std::chrono::minutes(3)};  // per message from the center
};

using LoginOutcome = std::variant<login::Success, login::ErrorReply>;

// Runs one login to its end. Errors: the connection, TLS (a gateway the CA did not issue),
// the protocol, the reader, or the device key; a refused login is an ErrorReply, not an error.
Expected<LoginOutcome> run_login(const LoginOptions& options, Person& person,
                                 FingerprintMatcher& reader);

// Scans `user`'s finger on the reader until libfprint has a print, telling the person the
// progress ("Scan 2 of 5 done.") and the reader's advice after a failed scan. The serialised
// print, or the reader's error.
Expected<Bytes> enrol_finger(FingerprintReader& reader, Person& person, const std::string& user);

using EnrolmentOutcome = std::variant<login::Enrolled, login::ErrorReply>;

// Enrols options.user on this kiosk: reads the kit (before anyone scans), enrol_finger, then
// records the print at the center over the login API. Errors as run_login's; the center's
// refusal (no approved enrolment, an approval that expired) is an ErrorReply.
Expected<EnrolmentOutcome> run_enrolment(const LoginOptions& options, Person& person,
                                         FingerprintReader& reader);

// The xfreerdp command line for a successful login (the relay's address, the ticket in the
// preconnection PDU, the gateway's certificate pinned, TLS only).
std::vector<std::string> xfreerdp_arguments(const login::Success& success);

}  // namespace enclave::kiosk
