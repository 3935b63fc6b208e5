// login_load: load for the login path (issue 5, "Targets"): the gateway's login API,
// enclave-sessiond's PAM transaction and ticket, driven by kiosks built on the kiosk library.
//
//   login_load enrol --gateway H:P --kits DIR [--kiosks 50] [--users bench-user-]
//                    [--devices bench-kiosk-]
//       records one print per kiosk: user USERSnn on device DEVICESnn (kit DIR/DEVICESnn, as
//       `enclavectl device kit --out` writes it), scanned on libfprint's virtual_device reader
//       and sent by kiosk::run_enrolment. A steward must have approved each enrolment.
//   login_load logins --gateway H:P --kits DIR --sessiond SOCK --gateway-pid PID
//                     --sessiond-pid PID [--auditd-pid PID] [--kiosks 50] [--rounds 10]
//                     [--warmup 1] [--spread-ms 0] [--think-ms 0] [--password P] [--users ...]
//                     [--devices ...]
//       each round, every kiosk logs its own user in at once with kiosk::run_login (or, with
//       --spread-ms, kiosk i starts i/N of that time after the first): the person answers
//       every prompt after about --think-ms (at once by default; uniform between half and one
//       and a half times it) and the matcher answers "match" for the offered print without a
//       reader, after as long. What is reported as the
//       center's side is each login's wall clock less the person's own time: with thinking,
//       all N logins are in progress together, as at N kiosks whose users type and scan. Per login:
//       connect to success, wall clock, and its phases as the kiosk saw them; the kiosk thread's
//       own CPU time; the services' CPU per login; apart, the cost of signing one assertion (the
//       kiosk's share). Between rounds the sessions the tickets opened are ended (outside the
//       measured window), so that each user holds one at most, as the shipped tiers allow.
//   login_load refusals --gateway H:P --gateway-pid PID --kit DIR [--auditd-pid PID]
//                       [--outside 127.0.0.9] [--connections 20000] [--handshakes 2000]
//                       [--rounds 4]
//       connections bound to --outside (in no site's pool) that send a real TLS ClientHello:
//       each must be closed with no byte back. Against them, mutual-TLS handshakes from
//       127.0.0.1 with the kit, the two interleaved round by round; the gateway's CPU per
//       connection of each kind, and their ratio.
//   login_load refusal-audit --file F --client ADDR --expect N
//       the gateway.login.refused events for ADDR in F (`enclave-audit query --type
//       gateway.login.refused --json`), counted by reason; exits 1 unless exactly N say the
//       address is outside every pool (the reason only the accept loop gives).
//   login_load password-cost [--cost 5] [--count 20]
//       what pam_unix adds per login: crypt_r of a yescrypt hash at Debian 12's default cost
//       (login.defs leaves YESCRYPT_COST_FACTOR at 5).
//   login_load summary --dir DIR
//       a human summary of the files bench.sh writes (logins.json, password.json,
//       refusals.json, refusal_audit.json; any may be missing).
// Output: one JSON object on stdout.
#include <arpa/inet.h>
#include <crypt.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <latch>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <random>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <openssl/ssl.h>

#include "common/bytes.hpp"
#include "common/ipc/client.hpp"
#include "common/login/assertion.hpp"
#include "kiosk/fingerprint.hpp"
#include "kiosk/login_client.hpp"
#include "sessionmgr/service/methods.hpp"
#include "tests/bench/bench_support.hpp"
#include "tests/kiosk/virtual_finger.hpp"

namespace {

using namespace enclave;
using Clock = std::chrono::steady_clock;
namespace methods = sessionmgr::methods;

struct Failure : std::runtime_error {
  using std::runtime_error::runtime_error;
};

double ms_between(Clock::time_point from, Clock::time_point to) {
  return std::chrono::duration<double, std::milli>(to - from).count();
}

double thread_cpu_ms() {
  timespec t{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
  return static_cast<double>(t.tv_sec) * 1e3 + static_cast<double>(t.tv_nsec) / 1e6;
}

// n, mean and nearest-rank percentiles.
nlohmann::json distribution(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  auto pct = [&](double p) {
    if (v.empty()) return 0.0;
    const auto rank =
        static_cast<std::size_t>(std::ceil(p / 100.0 * static_cast<double>(v.size())));
    return v[std::max<std::size_t>(rank, 1) - 1];
  };
  double sum = 0;
  for (double x : v) sum += x;
  return {{"n", v.size()},  {"mean", v.empty() ? 0.0 : sum / static_cast<double>(v.size())},
          {"p50", pct(50)}, {"p95", pct(95)},
          {"p99", pct(99)}, {"max", v.empty() ? 0.0 : v.back()}};
}

struct Endpoint {
  std::string host;
  std::uint16_t port = 0;
};

Endpoint parse_endpoint(const std::string& text) {
  const auto colon = text.rfind(':');
  if (colon == std::string::npos) throw Failure("not HOST:PORT: " + text);
  return {text.substr(0, colon), static_cast<std::uint16_t>(std::stoi(text.substr(colon + 1)))};
}

sockaddr_in ipv4(const std::string& address, std::uint16_t port) {
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  if (inet_pton(AF_INET, address.c_str(), &a.sin_addr) != 1) {
    throw Failure("not an IPv4 address: " + address);
  }
  return a;
}

struct Fd {
  int fd = -1;
  explicit Fd(int f) : fd(f) {}
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  ~Fd() {
    if (fd >= 0) ::close(fd);
  }
};

void receive_timeout(int fd, std::chrono::milliseconds limit) {
  timeval tv{static_cast<time_t>(limit.count() / 1000),
             static_cast<suseconds_t>((limit.count() % 1000) * 1000)};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
}

// The login API takes kiosks from 127.0.0.1: a connection is accepted and kept open. Until the
// gateway has fetched the approved pools it closes every connection at once.
void wait_admitted(const Endpoint& gateway) {
  const auto address = ipv4(gateway.host, gateway.port);
  for (int attempt = 0; attempt < 100; ++attempt) {
    Fd s(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (::connect(s.fd, reinterpret_cast<const sockaddr*>(&address), sizeof address) == 0) {
      receive_timeout(s.fd, std::chrono::milliseconds(300));
      char byte;
      if (::recv(s.fd, &byte, 1, 0) < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  throw Failure("the login API at " + gateway.host + ":" + std::to_string(gateway.port) +
                " does not take connections from 127.0.0.1");
}

// ---- kiosks ----

struct Kiosks {
  Endpoint gateway;
  std::filesystem::path kits;
  int count = 50;
  std::string user_prefix = "bench-user-", device_prefix = "bench-kiosk-";

  static std::string two_digits(int i) {
    char text[16];
    std::snprintf(text, sizeof text, "%02d", i);
    return text;
  }
  std::string user(int i) const { return user_prefix + two_digits(i); }
  std::string device(int i) const { return device_prefix + two_digits(i); }
  kiosk::LoginOptions options(int i) const {
    kiosk::LoginOptions o;
    o.gateway_host = gateway.host;
    o.gateway_port = gateway.port;
    o.server_name = gateway.host;  // `enclavectl gateway cert --name` gave the certificate it
    o.kit = kiosk::DeviceKit::in(kits / device(i));
    o.user = user(i);
    o.timeout = std::chrono::seconds(60);
    return o;
  }
};

// The person at an enrolment: only watches the reader's progress.
class Watcher : public kiosk::Person {
 public:
  std::optional<std::string> answer(const std::string&, bool) override { return std::nullopt; }
  void tell(const std::string&, bool) override {}
};

nlohmann::json enrol(const Kiosks& k) {
  wait_admitted(k.gateway);
  const auto socket = k.kits / "virtual-device";
  auto reader = kiosk::open_virtual_device(socket);
  if (!reader) throw Failure("virtual_device reader: " + reader.error().describe());
  const int stages = (*reader)->enroll_stages();
  const auto t0 = Clock::now();
  for (int i = 0; i < k.count; ++i) {
    Watcher steward_watching;
    kiosk::FingerScript finger(socket, kiosk::repeat("SCAN " + k.user(i), stages));
    auto enrolled = kiosk::run_enrolment(k.options(i), steward_watching, **reader);
    const auto scanned = finger.finished();
    const std::string who = k.user(i) + " on " + k.device(i);
    if (!enrolled) throw Failure("enrolment of " + who + ": " + enrolled.error().describe());
    if (auto* refused = std::get_if<login::ErrorReply>(&*enrolled)) {
      throw Failure("enrolment of " + who + " refused: " + refused->description);
    }
    if (!scanned) throw Failure("enrolment of " + who + ": " + scanned.message());
  }
  return {{"scenario", "enrol"},
          {"enrolled", k.count},
          {"reader", "virtual_device"},
          {"scans_each", stages},
          {"seconds", ms_between(t0, Clock::now()) / 1000}};
}

// The analyst answers every prompt the moment it appears: the user's own time is ~0.
// The person at the kiosk takes `think` over each answer (at once when it is zero): the time
// of typing a password or placing a finger, which the target leaves out. How long they took is
// summed, so the center's side of a login is the whole minus that.
// A person's time over one answer: uniform between half and one and a half times `think`, so
// that people at different kiosks do not all press Enter in the same millisecond.
class Thinking {
 public:
  Thinking(std::chrono::milliseconds think, unsigned seed) : think_(think), rng_(seed) {}
  double take() {  // sleeps; the milliseconds it took
    if (think_.count() == 0) return 0;
    std::uniform_int_distribution<long> ms(think_.count() / 2, think_.count() * 3 / 2);
    const auto t0 = Clock::now();
    std::this_thread::sleep_for(std::chrono::milliseconds(ms(rng_)));
    return ms_between(t0, Clock::now());
  }

 private:
  std::chrono::milliseconds think_;
  std::mt19937 rng_;
};

class Analyst : public kiosk::Person {
 public:
  Analyst(std::string password, Thinking& thinking)
      : password_(std::move(password)), thinking_(thinking) {}
  std::optional<std::string> answer(const std::string&, bool secret) override {
    if (!first_prompt) first_prompt = Clock::now();
    thought_ms += thinking_.take();
    return secret ? password_ : std::string();
  }
  void tell(const std::string&, bool) override {}
  std::optional<Clock::time_point> first_prompt;
  double thought_ms = 0;

 private:
  std::string password_;
  Thinking& thinking_;
};

// The finger matches after `think` (at once when zero): no reader, the offered print's id and
// "match". The kiosk still signs the assertion with its device key (run_login does), which the
// center verifies.
class FingerOnReader : public kiosk::FingerprintMatcher {
 public:
  explicit FingerOnReader(Thinking& thinking) : thinking_(thinking) {}
  Expected<kiosk::FingerprintVerdict> match(
      const std::vector<login::EnrolledPrint>& prints) override {
    challenged = Clock::now();
    thought_ms += thinking_.take();
    if (prints.empty()) return fail(Errc::kInternal, "the fingerprint challenge offers no print");
    print_bytes = prints.front().data.size();
    return kiosk::FingerprintVerdict{prints.front().print_id, login::MatchResult::kMatch};
  }
  std::optional<Clock::time_point> challenged;
  std::size_t print_bytes = 0;
  double thought_ms = 0;

 private:
  Thinking& thinking_;
};

struct LoginTiming {
  bool succeeded = false;
  std::string failure;    // why not
  double total_ms = 0;    // run_login: connect, TLS, create_session ... success
  double thought_ms = 0;  // the person's own time inside total_ms: the two below
  double password_thought_ms = 0, finger_thought_ms = 0;
  std::optional<double> to_prompt_ms, to_challenge_ms;  // from the start
  double kiosk_cpu_ms = 0;                              // this kiosk thread's CPU over the login
  std::size_t print_bytes = 0;
};

LoginTiming one_login(const kiosk::LoginOptions& options, const std::string& password,
                      std::chrono::milliseconds think, unsigned seed) {
  Thinking thinking(think, seed);
  Analyst analyst(password, thinking);
  FingerOnReader reader(thinking);
  LoginTiming t;
  const double cpu0 = thread_cpu_ms();
  const auto t0 = Clock::now();
  auto outcome = kiosk::run_login(options, analyst, reader);
  const auto t1 = Clock::now();
  t.kiosk_cpu_ms = thread_cpu_ms() - cpu0;
  t.total_ms = ms_between(t0, t1);
  t.password_thought_ms = analyst.thought_ms;
  t.finger_thought_ms = reader.thought_ms;
  t.thought_ms = analyst.thought_ms + reader.thought_ms;
  if (analyst.first_prompt) t.to_prompt_ms = ms_between(t0, *analyst.first_prompt);
  if (reader.challenged) t.to_challenge_ms = ms_between(t0, *reader.challenged);
  t.print_bytes = reader.print_bytes;
  if (!outcome) {
    t.failure = outcome.error().describe();
  } else if (auto* refused = std::get_if<login::ErrorReply>(&*outcome)) {
    t.failure = "refused: " + refused->description;
  } else {
    t.succeeded = true;
  }
  return t;
}

// The services measured, by name; the load tool itself is "load".
using Processes = std::map<std::string, int>;

std::map<std::string, double> cpu_seconds(const Processes& processes) {
  std::map<std::string, double> out;
  for (const auto& [name, pid] : processes) out[name] = bench::cpu_times(pid).total();
  return out;
}

// Ends every open session of the benchmark's users; the number ended.
int end_sessions(const std::filesystem::path& sessiond, const std::string& user_prefix) {
  auto client = ipc::Client::connect(sessiond);
  if (!client) throw Failure("sessiond: " + client.error().describe());
  auto listed = client->call(methods::kSessionList, nlohmann::json::object());
  if (!listed) throw Failure("session.list: " + listed.error().describe());
  int ended = 0;
  for (const auto& s : listed->value("sessions", nlohmann::json::array())) {
    if (!s.value("user", "").starts_with(user_prefix) || s.value("state", "") == "ended") continue;
    auto r = client->call(methods::kSessionEnd, {{"session_id", s.at("session_id")},
                                                 {"reason", "login benchmark round"}});
    if (!r) throw Failure("session.end: " + r.error().describe());
    ++ended;
  }
  return ended;
}

// The kiosk's signing of one assertion as run_login does it (the key read from its file).
nlohmann::json signing_cost(const Kiosks& k, int count) {
  const auto options = k.options(0);
  login::FingerprintAssertion a;
  a.nonce = std::string(64, 'a');
  a.user = options.user;
  a.device = k.device(0);
  a.print_id = "bench";
  a.result = login::MatchResult::kMatch;
  std::vector<double> ms;
  for (int i = 0; i < count; ++i) {
    a.time = std::time(nullptr);
    const auto t0 = Clock::now();
    auto signed_text = login::sign_assertion(a, options.kit.private_key);
    ms.push_back(ms_between(t0, Clock::now()));
    if (!signed_text) throw Failure("signing: " + signed_text.error().describe());
  }
  return distribution(ms);
}

nlohmann::json logins(const Kiosks& k, const std::filesystem::path& sessiond,
                      const Processes& services, int rounds, int warmup, int spread_ms,
                      std::chrono::milliseconds think, const std::string& password) {
  wait_admitted(k.gateway);
  Processes measured = services;
  measured["load"] = static_cast<int>(::getpid());
  std::vector<kiosk::LoginOptions> options;
  for (int i = 0; i < k.count; ++i) options.push_back(k.options(i));

  std::vector<double> total, server_side, to_prompt, prompt_to_challenge, challenge_to_success,
      kiosk_cpu;
  std::vector<double> warm_total, round_seconds, round_p95;
  std::map<std::string, double> cpu;
  int attempted = 0, succeeded = 0, not_ended = 0;
  std::map<std::string, int> failures;
  std::size_t print_bytes = 0;
  for (int round = 0; round < warmup + rounds; ++round) {
    const bool counted = round >= warmup;
    std::vector<LoginTiming> timings(static_cast<std::size_t>(k.count));
    const auto cpu_before = cpu_seconds(measured);
    Clock::time_point start;
    {
      std::latch go(1);
      std::vector<std::jthread> kiosks;
      for (int i = 0; i < k.count; ++i) {
        kiosks.emplace_back([&, i] {
          go.wait();
          std::this_thread::sleep_until(start + std::chrono::milliseconds(spread_ms) * i / k.count);
          timings[static_cast<std::size_t>(i)] =
              one_login(options[static_cast<std::size_t>(i)], password, think,
                        static_cast<unsigned>(round * k.count + i));
        });
      }
      start = Clock::now();
      go.count_down();
    }  // every kiosk has finished
    const double seconds = ms_between(start, Clock::now()) / 1000;
    const auto cpu_after = cpu_seconds(measured);
    int round_succeeded = 0;
    std::vector<double> this_round;
    for (const auto& t : timings) {
      if (!counted) {
        warm_total.push_back(t.total_ms);
        if (t.succeeded) ++round_succeeded;
        continue;
      }
      ++attempted;
      if (!t.succeeded) {
        ++failures[t.failure];
        continue;
      }
      ++round_succeeded;
      total.push_back(t.total_ms);
      server_side.push_back(t.total_ms - t.thought_ms);
      this_round.push_back(t.total_ms - t.thought_ms);
      kiosk_cpu.push_back(t.kiosk_cpu_ms);
      print_bytes = std::max(print_bytes, t.print_bytes);
      if (t.to_prompt_ms && t.to_challenge_ms) {
        to_prompt.push_back(*t.to_prompt_ms);
        prompt_to_challenge.push_back(*t.to_challenge_ms - *t.to_prompt_ms - t.password_thought_ms);
        challenge_to_success.push_back(t.total_ms - *t.to_challenge_ms - t.finger_thought_ms);
      }
    }
    if (counted) {
      succeeded += round_succeeded;
      round_seconds.push_back(seconds);
      round_p95.push_back(distribution(this_round)["p95"].get<double>());
      for (const auto& [name, s] : cpu_after) cpu[name] += s - cpu_before.at(name);
    }
    // Outside the measured window: each user back to no session, then a quiet moment.
    not_ended += round_succeeded - end_sessions(sessiond, k.user_prefix);
    std::this_thread::sleep_for(std::chrono::seconds(1));
  }

  double measured_seconds = 0;
  for (double s : round_seconds) measured_seconds += s;
  nlohmann::json cpu_per_login = nlohmann::json::object();
  double server_cpu = 0;
  for (const auto& [name, s] : cpu) {
    cpu_per_login[name] = succeeded ? s * 1000 / succeeded : 0.0;
    if (name != "load") server_cpu += s;
  }
  nlohmann::json out{
      {"scenario", "logins"},
      {"kiosks", k.count},
      {"devices", k.count},
      {"spread_ms", spread_ms},
      {"think_ms", think.count()},
      {"rounds", rounds},
      {"warmup_rounds", warmup},
      {"attempted", attempted},
      {"succeeded", succeeded},
      {"failures", failures},
      {"sessions_not_ended", not_ended},
      {"print_bytes", print_bytes},
      {"login_ms", distribution(total)},
      {"server_side_ms", distribution(server_side)},
      {"phases_ms",
       {{"connect_tls_create_session_to_password_prompt", distribution(to_prompt)},
        {"password_prompt_to_fingerprint_challenge", distribution(prompt_to_challenge)},
        {"fingerprint_challenge_to_success", distribution(challenge_to_success)}}},
      {"kiosk_thread_cpu_ms", distribution(kiosk_cpu)},
      {"signing_ms", signing_cost(k, 200)},
      {"round_seconds", round_seconds},
      {"round_p95_ms", round_p95},
      {"logins_per_s", measured_seconds > 0 ? succeeded / measured_seconds : 0.0},
      {"cpu_ms_per_login", cpu_per_login},
      {"server_cpu_utilization", measured_seconds > 0 ? server_cpu / measured_seconds : 0.0},
      {"load_cpu_utilization", measured_seconds > 0 ? cpu.at("load") / measured_seconds : 0.0},
      {"warmup_login_ms", distribution(warm_total)}};
  return out;
}

// ---- refusals at accept against full handshakes ----

struct SslCtxFree {
  void operator()(SSL_CTX* c) const { SSL_CTX_free(c); }
};
struct SslFree {
  void operator()(SSL* s) const { SSL_free(s); }
};
using SslCtx = std::unique_ptr<SSL_CTX, SslCtxFree>;
using Ssl = std::unique_ptr<SSL, SslFree>;

// A client context with the kiosk's kit, as kiosk::run_login makes it.
SslCtx kiosk_context(const kiosk::DeviceKit& kit) {
  SslCtx ctx(SSL_CTX_new(TLS_client_method()));
  if (!ctx) throw Failure("SSL_CTX_new");
  SSL_CTX_set_min_proto_version(ctx.get(), TLS1_2_VERSION);
  if (SSL_CTX_load_verify_locations(ctx.get(), kit.ca.c_str(), nullptr) != 1 ||
      SSL_CTX_use_certificate_chain_file(ctx.get(), kit.certificate.c_str()) != 1 ||
      SSL_CTX_use_PrivateKey_file(ctx.get(), kit.private_key.c_str(), SSL_FILETYPE_PEM) != 1) {
    throw Failure("the kit in " + kit.certificate.parent_path().string() + " cannot be loaded");
  }
  SSL_CTX_set_verify(ctx.get(), SSL_VERIFY_PEER, nullptr);
  return ctx;
}

// The bytes of a real ClientHello from that context (written into a memory BIO).
Bytes client_hello(SSL_CTX* ctx, const std::string& server_name) {
  Ssl ssl(SSL_new(ctx));
  BIO* in = BIO_new(BIO_s_mem());
  BIO* out = BIO_new(BIO_s_mem());
  SSL_set_bio(ssl.get(), in, out);
  SSL_set_tlsext_host_name(ssl.get(), server_name.c_str());
  SSL_set_connect_state(ssl.get());
  SSL_do_handshake(ssl.get());  // wants to read the ServerHello: the hello is in `out`
  char* data = nullptr;
  const long n = BIO_get_mem_data(out, &data);
  if (n <= 5 || static_cast<unsigned char>(data[0]) != 0x16) {
    throw Failure("OpenSSL wrote no ClientHello");
  }
  return Bytes(data, data + n);
}

enum class RefusalSeen { kClosed, kAnswered, kKeptOpen, kConnectFailed };

// One connection from `outside`: the hello sent, then whatever the gateway does.
RefusalSeen refused_once(const sockaddr_in& outside, const sockaddr_in& gateway,
                         const Bytes& hello) {
  Fd s(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (::bind(s.fd, reinterpret_cast<const sockaddr*>(&outside), sizeof outside) != 0 ||
      ::connect(s.fd, reinterpret_cast<const sockaddr*>(&gateway), sizeof gateway) != 0) {
    return RefusalSeen::kConnectFailed;
  }
  // Closed at accept: the send may already meet the reset; either way nothing must come back.
  (void)::send(s.fd, hello.data(), hello.size(), MSG_NOSIGNAL);
  receive_timeout(s.fd, std::chrono::seconds(5));
  char buffer[512];
  const ssize_t n = ::recv(s.fd, buffer, sizeof buffer, 0);
  if (n > 0) return RefusalSeen::kAnswered;
  if (n == 0 || errno == ECONNRESET || errno == EPIPE) return RefusalSeen::kClosed;
  return RefusalSeen::kKeptOpen;
}

// One mutual-TLS handshake from 127.0.0.1, then close_notify and close.
std::optional<std::string> handshake_once(SSL_CTX* ctx, const sockaddr_in& gateway,
                                          const std::string& server_name) {
  Fd s(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (::connect(s.fd, reinterpret_cast<const sockaddr*>(&gateway), sizeof gateway) != 0) {
    return std::string("connect: ") + std::strerror(errno);
  }
  receive_timeout(s.fd, std::chrono::seconds(10));
  Ssl ssl(SSL_new(ctx));
  SSL_set_fd(ssl.get(), s.fd);
  SSL_set_tlsext_host_name(ssl.get(), server_name.c_str());
  SSL_set1_host(ssl.get(), server_name.c_str());
  if (SSL_connect(ssl.get()) != 1) {
    return std::string("TLS handshake: ") +
           X509_verify_cert_error_string(SSL_get_verify_result(ssl.get()));
  }
  SSL_shutdown(ssl.get());
  return std::nullopt;
}

nlohmann::json refusals(const Endpoint& gateway, const kiosk::DeviceKit& kit,
                        const std::string& outside_address, const Processes& services,
                        int connections, int handshakes, int rounds) {
  wait_admitted(gateway);
  const auto target = ipv4(gateway.host, gateway.port);
  const auto outside = ipv4(outside_address, 0);
  auto ctx = kiosk_context(kit);
  const Bytes hello = client_hello(ctx.get(), gateway.host);

  std::map<RefusalSeen, int> seen;
  std::vector<double> refusal_ms, handshake_ms;
  int handshake_failed = 0;
  std::string first_handshake_error;
  std::map<std::string, double> refusal_cpu, handshake_cpu;
  for (int round = 0; round < rounds; ++round) {
    auto before = cpu_seconds(services);
    for (int i = 0; i < connections / rounds; ++i) {
      const auto t0 = Clock::now();
      ++seen[refused_once(outside, target, hello)];
      refusal_ms.push_back(ms_between(t0, Clock::now()));
    }
    auto after = cpu_seconds(services);
    for (const auto& [name, s] : after) refusal_cpu[name] += s - before.at(name);

    before = cpu_seconds(services);
    for (int i = 0; i < handshakes / rounds; ++i) {
      const auto t0 = Clock::now();
      auto error = handshake_once(ctx.get(), target, gateway.host);
      if (error) {
        if (handshake_failed++ == 0) first_handshake_error = *error;
        continue;
      }
      handshake_ms.push_back(ms_between(t0, Clock::now()));
    }
    after = cpu_seconds(services);
    for (const auto& [name, s] : after) handshake_cpu[name] += s - before.at(name);
  }
  const int refused_total = (connections / rounds) * rounds;
  const int handshakes_done = static_cast<int>(handshake_ms.size());
  nlohmann::json per_refusal, per_handshake;
  for (const auto& [name, s] : refusal_cpu) per_refusal[name] = s * 1e6 / refused_total;
  for (const auto& [name, s] : handshake_cpu) {
    per_handshake[name] = handshakes_done ? s * 1e6 / handshakes_done : 0.0;
  }
  const double gw_refusal = per_refusal.value("gateway", 0.0);
  const double gw_handshake = per_handshake.value("gateway", 0.0);
  nlohmann::json out{{"scenario", "refusals"},
                     {"outside_address", outside_address},
                     {"client_hello_bytes", hello.size()},
                     {"rounds", rounds},
                     {"refused",
                      {{"connections", refused_total},
                       {"closed_without_a_byte", seen[RefusalSeen::kClosed]},
                       {"answered", seen[RefusalSeen::kAnswered]},
                       {"kept_open_5s", seen[RefusalSeen::kKeptOpen]},
                       {"connect_failed", seen[RefusalSeen::kConnectFailed]},
                       {"connect_to_close_ms", distribution(refusal_ms)},
                       {"cpu_us_per_connection", per_refusal}}},
                     {"handshakes",
                      {{"attempted", (handshakes / rounds) * rounds},
                       {"completed", handshakes_done},
                       {"failed", handshake_failed},
                       {"handshake_ms", distribution(handshake_ms)},
                       {"cpu_us_per_connection", per_handshake}}},
                     {"gateway_cpu_ratio_refused_to_handshake",
                      gw_handshake > 0 ? gw_refusal / gw_handshake : 0.0}};
  if (handshake_failed) out["handshakes"]["first_error"] = first_handshake_error;
  return out;
}

nlohmann::json refusal_audit(const std::filesystem::path& file, const std::string& client,
                             int expect) {
  std::ifstream in(file);
  auto events = nlohmann::json::parse(in);
  if (events.is_object() && events.contains("events")) events = events["events"];
  if (!events.is_array()) throw Failure(file.string() + ": not a list of audit events");
  std::map<std::string, int> reasons;
  int at_accept = 0;
  for (const auto& e : events) {
    if (e.value("type", "") != "gateway.login.refused") continue;
    const auto& d = e.value("details", nlohmann::json::object());
    if (d.value("client", "") != client) continue;
    const std::string reason = d.value("reason", "");
    ++reasons[reason];
    // Only the accept loop gives this reason, before the socket reaches TLS.
    if (reason == "address outside every approved site's pool") ++at_accept;
  }
  return {{"scenario", "refusal-audit"},    {"client", client},     {"expected", expect},
          {"refused_at_accept", at_accept}, {"by_reason", reasons}, {"ok", at_accept == expect}};
}

// ---- the password module's own cost ----

nlohmann::json password_cost(unsigned long cost, int count) {
  char setting[CRYPT_GENSALT_OUTPUT_SIZE];
  if (crypt_gensalt_rn("$y$", cost, nullptr, 0, setting, sizeof setting) == nullptr) {
    throw Failure("crypt_gensalt_rn($y$, " + std::to_string(cost) + "): " + std::strerror(errno));
  }
  auto data = std::make_unique<crypt_data>();
  const char* password = "correct horse battery staple";
  const char* made = crypt_r(password, setting, data.get());
  if (made == nullptr || made[0] == '*') throw Failure("crypt_r refused the yescrypt setting");
  const std::string hash = made;
  std::vector<double> ms;
  for (int i = 0; i < count; ++i) {
    const auto t0 = Clock::now();
    const char* again = crypt_r(password, hash.c_str(), data.get());
    ms.push_back(ms_between(t0, Clock::now()));
    if (again == nullptr || hash != again) throw Failure("crypt_r did not verify its own hash");
  }
  return {{"scenario", "password-cost"},
          {"scheme", "yescrypt"},
          {"cost", cost},
          {"hash_prefix", hash.substr(0, hash.find('$', 3) + 1)},
          {"crypt_r_ms", distribution(ms)}};
}

// ---- the human summary ----

std::string fixed(double v, int places = 1) {
  char text[32];
  std::snprintf(text, sizeof text, "%.*f", places, v);
  return text;
}

void print_summary(const std::filesystem::path& dir) {
  auto load = [&](const char* name) { return enclave::bench::load_result(dir, name); };
  auto ms = [](const nlohmann::json& d) {
    return "p50 " + fixed(d["p50"].get<double>()) + " / p95 " + fixed(d["p95"].get<double>()) +
           " / p99 " + fixed(d["p99"].get<double>()) + " / max " + fixed(d["max"].get<double>()) +
           " ms";
  };
  // One kiosk alone (the unloaded baseline), all at once, spread out, with people thinking.
  for (const char* file :
       {"login_single.json", "logins.json", "logins_spread.json", "logins_thinking.json"}) {
    auto l = load(file);
    if (!l) continue;
    const auto& j = *l;
    const int spread = j.value("spread_ms", 0);
    const int think = j.value("think_ms", 0);
    std::cout << "logins (" << file << "): " << j["kiosks"].get<int>() << " kiosks "
              << (spread ? "spread over " + std::to_string(spread) + " ms" : std::string("at once"))
              << (think ? ", each answer after about " + std::to_string(think) + " ms"
                        : std::string())
              << " x " << j["rounds"].get<int>() << " rounds, " << j["succeeded"].get<int>()
              << " of " << j["attempted"].get<int>() << " succeeded\n"
              << "  connect to success: " << ms(j["login_ms"]) << "\n"
              << "  the center's side (less the person's own time): " << ms(j["server_side_ms"])
              << " (target p95 <= 100 ms)\n"
              << "  per round p95:";
    for (const auto& p : j["round_p95_ms"]) std::cout << " " << fixed(p.get<double>());
    std::cout << " ms\n  phases p50/p95:";
    for (const auto& [phase, d] : j["phases_ms"].items()) {
      std::cout << " " << phase << " " << fixed(d["p50"].get<double>()) << "/"
                << fixed(d["p95"].get<double>()) << ";";
    }
    std::cout << "\n  " << fixed(j["logins_per_s"].get<double>()) << " logins/s; CPU per login:";
    for (const auto& [name, v] : j["cpu_ms_per_login"].items()) {
      std::cout << " " << name << " " << fixed(v.get<double>(), 2) << " ms";
    }
    std::cout << "; the services used " << fixed(j["server_cpu_utilization"].get<double>() * 100)
              << "% of a CPU, the kiosks " << fixed(j["load_cpu_utilization"].get<double>() * 100)
              << "%\n  the kiosk's own code per login: thread CPU p50 "
              << fixed(j["kiosk_thread_cpu_ms"]["p50"].get<double>(), 2)
              << " ms, of which signing the assertion p50 "
              << fixed(j["signing_ms"]["p50"].get<double>(), 2) << " ms\n";
    if (!j["failures"].empty()) std::cout << "  failures: " << j["failures"].dump() << "\n";
  }
  if (auto p = load("password.json")) {
    std::cout << "pam_unix's own cost, not in the figure above: crypt_r, "
              << (*p)["hash_prefix"].get<std::string>() << " (yescrypt, cost "
              << (*p)["cost"].get<int>() << "): " << fixed((*p)["crypt_r_ms"]["p50"].get<double>())
              << " ms per login (p95 " << fixed((*p)["crypt_r_ms"]["p95"].get<double>())
              << " ms) of one CPU\n";
  }
  if (auto r = load("refusals.json")) {
    const auto& refused = (*r)["refused"];
    const auto& hs = (*r)["handshakes"];
    std::cout << "refused at accept, from " << (*r)["outside_address"].get<std::string>() << ": "
              << refused["closed_without_a_byte"].get<int>() << " of "
              << refused["connections"].get<int>() << " closed without a byte after a "
              << (*r)["client_hello_bytes"].get<int>() << "-byte ClientHello (answered "
              << refused["answered"].get<int>() << ", kept open "
              << refused["kept_open_5s"].get<int>() << ")\n"
              << "  gateway CPU per connection: refused "
              << fixed(refused["cpu_us_per_connection"].value("gateway", 0.0)) << " us, mutual-TLS "
              << "handshake " << fixed(hs["cpu_us_per_connection"].value("gateway", 0.0)) << " us ("
              << hs["completed"].get<int>() << " completed); ratio "
              << fixed((*r)["gateway_cpu_ratio_refused_to_handshake"].get<double>(), 3) << "\n"
              << "  auditd CPU per connection (each refusal is an audit event): refused "
              << fixed(refused["cpu_us_per_connection"].value("auditd", 0.0)) << " us, handshake "
              << fixed(hs["cpu_us_per_connection"].value("auditd", 0.0)) << " us\n";
  }
  if (auto a = load("refusal_audit.json")) {
    std::cout << "  gateway audit: " << (*a)["refused_at_accept"].get<int>()
              << " gateway.login.refused events for " << (*a)["client"].get<std::string>()
              << " refused at accept, of " << (*a)["expected"].get<int>() << " connections"
              << ((*a)["ok"].get<bool>() ? "" : "  MISMATCH") << "\n";
  }
}

}  // namespace

int main(int argc, char** argv) {
  std::signal(SIGPIPE, SIG_IGN);
  CLI::App app{"login_load: load for the login path (gateway login API, sessiond PAM, tickets)"};
  app.require_subcommand(1);

  Kiosks k;
  std::string gateway, sessiond, password = "bench-password", kit, outside = "127.0.0.9";
  std::filesystem::path kits;
  int gateway_pid = 0, sessiond_pid = 0, auditd_pid = 0, rounds = 10, warmup = 1, spread_ms = 0,
      think_ms = 0;
  int connections = 20000, handshakes = 2000;
  auto add_kiosks = [&](CLI::App* c) {
    c->add_option("--gateway", gateway, "the login API, HOST:PORT")->required();
    c->add_option("--kits", kits, "the kits, one directory per device")->required();
    c->add_option("--kiosks", k.count)->check(CLI::Range(1, 100));
    c->add_option("--users", k.user_prefix, "user name prefix (then 00, 01, ...)");
    c->add_option("--devices", k.device_prefix, "device id prefix (then 00, 01, ...)");
  };
  auto* enrol_cmd = app.add_subcommand("enrol", "record one print per kiosk");
  add_kiosks(enrol_cmd);
  auto* logins_cmd = app.add_subcommand("logins", "N kiosks logging in at once, R rounds");
  add_kiosks(logins_cmd);
  logins_cmd->add_option("--sessiond", sessiond, "enclave-sessiond's socket")->required();
  logins_cmd->add_option("--gateway-pid", gateway_pid)->required();
  logins_cmd->add_option("--sessiond-pid", sessiond_pid)->required();
  logins_cmd->add_option("--auditd-pid", auditd_pid);
  logins_cmd->add_option("--rounds", rounds)->check(CLI::Range(1, 1000));
  logins_cmd->add_option("--warmup", warmup, "rounds run first, not counted")
      ->check(CLI::Range(0, 10));
  logins_cmd->add_option("--spread-ms", spread_ms, "kiosk i starts i/N of this after the first")
      ->check(CLI::NonNegativeNumber);
  logins_cmd->add_option("--think-ms", think_ms, "the person's own time over each answer")
      ->check(CLI::Range(0, 600000));
  logins_cmd->add_option("--password", password, "every user's password (pam_matrix passdb)");

  auto* refusals_cmd = app.add_subcommand("refusals", "refused at accept vs full handshakes");
  refusals_cmd->add_option("--gateway", gateway, "the login API, HOST:PORT")->required();
  refusals_cmd->add_option("--gateway-pid", gateway_pid)->required();
  refusals_cmd->add_option("--auditd-pid", auditd_pid);
  refusals_cmd->add_option("--kit", kit, "a kiosk's kit for the handshakes")->required();
  refusals_cmd->add_option("--outside", outside, "a source address in no site's pool");
  refusals_cmd->add_option("--connections", connections)->check(CLI::Range(1, 1000000));
  refusals_cmd->add_option("--handshakes", handshakes)->check(CLI::Range(1, 1000000));
  refusals_cmd->add_option("--rounds", rounds)->check(CLI::Range(1, 100));

  std::string file, client;
  int expect = 0;
  auto* audit_cmd = app.add_subcommand("refusal-audit", "count the gateway's refusal events");
  audit_cmd->add_option("--file", file)->required();
  audit_cmd->add_option("--client", client)->required();
  audit_cmd->add_option("--expect", expect)->required();

  unsigned long cost = 5;
  int count = 20;
  auto* password_cmd = app.add_subcommand("password-cost", "crypt_r of a yescrypt hash");
  password_cmd->add_option("--cost", cost)->check(CLI::Range(1, 11));
  password_cmd->add_option("--count", count)->check(CLI::Range(1, 10000));

  std::string results;
  auto* summary_cmd = app.add_subcommand("summary", "a human summary of bench.sh's files");
  summary_cmd->add_option("--dir", results)->required();
  CLI11_PARSE(app, argc, argv);

  try {
    nlohmann::json out;
    Processes services;
    if (gateway_pid) services["gateway"] = gateway_pid;
    if (sessiond_pid) services["sessiond"] = sessiond_pid;
    if (auditd_pid) services["auditd"] = auditd_pid;
    if (*enrol_cmd || *logins_cmd) {
      k.gateway = parse_endpoint(gateway);
      k.kits = kits;
    }
    if (*enrol_cmd) {
      out = enrol(k);
    } else if (*logins_cmd) {
      out = logins(k, sessiond, services, rounds, warmup, spread_ms,
                   std::chrono::milliseconds(think_ms), password);
    } else if (*refusals_cmd) {
      out = refusals(parse_endpoint(gateway), kiosk::DeviceKit::in(kit), outside, services,
                     connections, handshakes, rounds);
    } else if (*audit_cmd) {
      out = refusal_audit(file, client, expect);
      std::cout << out.dump() << "\n";
      return out["ok"].get<bool>() ? 0 : 1;
    } else if (*password_cmd) {
      out = password_cost(cost, count);
    } else {
      print_summary(results);
      return 0;
    }
    std::cout << out.dump() << "\n";
  } catch (const std::exception& e) {
    std::cerr << "login_load: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
