// audit_load: a load generator for enclave-auditd, and the naive peer it is compared with.
//
//   audit_load --socket PATH [--clients 8] [--window 64] [--seconds 10]
//       closed loop: each client keeps `window` appends in flight; reports durable appends/s
//       and acknowledgement latency percentiles.
//   audit_load --socket PATH --rate 1000 [--clients 8] [--seconds 10]
//       open loop at a fixed total rate; latency runs from each append's scheduled send time
//       to its acknowledgement, so a stall is charged to every append it delays.
//   audit_load --naive-sqlite DIR [--clients 8] [--seconds 10]
//       the peer: the same events, schema and durability (WAL, synchronous=FULL) with one
//       transaction, hence one fsync, per append: what a log without group commit does. (It
//       writes no tree nodes and signs nothing, which favours it.)
//   audit_load --fsync-probe DIR [--seconds 5]
//       the disk's own floor: 8 KiB appended and fsynced, 1,000 times a second.
// Output: one JSON object on stdout.
#include <fcntl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstring>
#include <iostream>
#include <mutex>
#include <nlohmann/json.hpp>
#include <thread>
#include <vector>

#include "audit/service/log_store.hpp"
#include "common/ipc/frame.hpp"

namespace {

using Clock = std::chrono::steady_clock;
using enclave::Bytes;

nlohmann::json sample_event(int client, std::uint64_t n) {
  return {{"type", "login.attempt"},
          {"outcome", n % 10 ? "success" : "failure"},
          {"actor", "user" + std::to_string((client * 7919 + n) % 500)},
          {"site", "site-" + std::to_string(n % 20)},
          {"device", "tc-" + std::to_string(n % 300)},
          {"session", "s-" + std::to_string(client) + "-" + std::to_string(n / 10)},
          {"details", {{"factors", {"password", "fingerprint"}}, {"n", n}}}};
}

int connect_unix(const std::string& path) {
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::strncpy(addr.sun_path, path.c_str(), sizeof addr.sun_path - 1);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    std::perror(path.c_str());
    std::exit(2);
  }
  return fd;
}

bool write_all(int fd, const Bytes& b) {
  std::size_t at = 0;
  while (at < b.size()) {
    ssize_t n = ::write(fd, b.data() + at, b.size() - at);
    if (n <= 0) return false;
    at += static_cast<std::size_t>(n);
  }
  return true;
}

// Reads responses from fd and reports each id; stops after `expected` responses.
class ResponseReader {
 public:
  explicit ResponseReader(int fd) : fd_(fd) {}
  // Returns the id of the next response and whether it was a success.
  std::optional<std::pair<std::uint64_t, bool>> next() {
    while (true) {
      auto frame = enclave::ipc::next_frame(enclave::ByteSpan(buf_).subspan(start_));
      if (!frame) return std::nullopt;
      if (*frame) {
        auto r = enclave::ipc::parse_response((*frame)->payload);
        start_ += (*frame)->consumed;
        if (!r) return std::nullopt;
        if (!r->ok) std::cerr << "append refused: " << r->message << "\n";
        return std::pair{r->id, r->ok};
      }
      if (start_ > 0) {
        buf_.erase(buf_.begin(), buf_.begin() + static_cast<std::ptrdiff_t>(start_));
        start_ = 0;
      }
      std::uint8_t chunk[65536];
      ssize_t n = ::read(fd_, chunk, sizeof chunk);
      if (n <= 0) return std::nullopt;
      buf_.insert(buf_.end(), chunk, chunk + n);
    }
  }

 private:
  int fd_;
  Bytes buf_;
  std::size_t start_ = 0;
};

struct Samples {
  std::mutex mu;
  std::vector<double> latency_ms;
  std::atomic<std::uint64_t> ok{0}, failed{0};
  void add(const std::vector<double>& l) {
    std::lock_guard lock(mu);
    latency_ms.insert(latency_ms.end(), l.begin(), l.end());
  }
};

nlohmann::json summarize(Samples& s, double seconds, const std::string& mode, int clients) {
  std::sort(s.latency_ms.begin(), s.latency_ms.end());
  auto pct = [&](double p) {
    if (s.latency_ms.empty()) return 0.0;
    auto i = static_cast<std::size_t>(p / 100.0 * static_cast<double>(s.latency_ms.size() - 1));
    return s.latency_ms[i];
  };
  return {{"mode", mode},
          {"clients", clients},
          {"seconds", seconds},
          {"acknowledged", s.ok.load()},
          {"failed", s.failed.load()},
          {"appends_per_second", static_cast<double>(s.ok.load()) / seconds},
          {"latency_ms",
           {{"p50", pct(50)},
            {"p90", pct(90)},
            {"p99", pct(99)},
            {"p999", pct(99.9)},
            {"max", s.latency_ms.empty() ? 0.0 : s.latency_ms.back()}}}};
}

Bytes request_frame(std::uint64_t id, nlohmann::json params) {
  enclave::ipc::Request r{id, "audit.append", std::move(params)};
  Bytes out;
  enclave::ipc::append_frame(enclave::ipc::encode_request(r), out);
  return out;
}

// Closed loop: a window of appends in flight per connection.
nlohmann::json closed_loop(const std::string& socket, int clients, int window, double seconds) {
  Samples samples;
  auto start = Clock::now();
  auto end = start + std::chrono::duration<double>(seconds);
  std::vector<std::thread> threads;
  for (int c = 0; c < clients; ++c) {
    threads.emplace_back([&, c] {
      int fd = connect_unix(socket);
      ResponseReader reader(fd);
      std::vector<Clock::time_point> sent;
      std::vector<double> latencies;
      std::uint64_t next_id = 1, in_flight = 0;
      auto send_one = [&] {
        sent.push_back(Clock::now());
        write_all(fd, request_frame(next_id, sample_event(c, next_id)));
        ++next_id;
        ++in_flight;
      };
      for (int i = 0; i < window; ++i) send_one();
      while (in_flight > 0) {
        auto r = reader.next();
        if (!r) break;
        --in_flight;
        latencies.push_back(
            std::chrono::duration<double, std::milli>(Clock::now() - sent[r->first - 1]).count());
        (r->second ? samples.ok : samples.failed)++;
        if (Clock::now() < end) send_one();
      }
      ::close(fd);
      samples.add(latencies);
    });
  }
  for (auto& t : threads) t.join();
  double elapsed = std::chrono::duration<double>(Clock::now() - start).count();
  auto out = summarize(samples, elapsed, "closed-loop", clients);
  out["window"] = window;
  return out;
}

// Open loop: appends leave on a fixed schedule whatever the acknowledgements do.
nlohmann::json open_loop(const std::string& socket, int clients, double rate, double seconds) {
  Samples samples;
  const double per_client = rate / clients;
  const auto total = static_cast<std::uint64_t>(per_client * seconds);
  auto start = Clock::now() + std::chrono::milliseconds(50);
  std::vector<std::thread> threads;
  for (int c = 0; c < clients; ++c) {
    threads.emplace_back([&, c] {
      int fd = connect_unix(socket);
      auto offset = std::chrono::duration<double>(c / rate);  // stagger the clients
      auto scheduled = [&](std::uint64_t k) {
        return start + std::chrono::duration_cast<Clock::duration>(
                           offset + std::chrono::duration<double>(k / per_client));
      };
      std::thread sender([&] {
        for (std::uint64_t k = 0; k < total; ++k) {
          std::this_thread::sleep_until(scheduled(k));
          write_all(fd, request_frame(k + 1, sample_event(c, k)));
        }
      });
      ResponseReader reader(fd);
      std::vector<double> latencies;
      for (std::uint64_t k = 0; k < total; ++k) {
        auto r = reader.next();
        if (!r) break;
        latencies.push_back(
            std::chrono::duration<double, std::milli>(Clock::now() - scheduled(r->first - 1))
                .count());
        (r->second ? samples.ok : samples.failed)++;
      }
      sender.join();
      ::close(fd);
      samples.add(latencies);
    });
  }
  for (auto& t : threads) t.join();
  auto out = summarize(samples, seconds, "open-loop", clients);
  out["target_rate"] = rate;
  return out;
}

// The naive peer: one durable transaction per append, from every client at once.
nlohmann::json naive_sqlite(const std::string& dir, int clients, double seconds) {
  using namespace enclave::audit;
  Samples samples;
  std::atomic<std::uint64_t> next_index{0};
  auto path = std::filesystem::path(dir) / "naive.db";
  std::filesystem::remove(path);
  { auto created = LogStore::open(path, {}); }
  auto start = Clock::now();
  auto end = start + std::chrono::duration<double>(seconds);
  std::vector<std::thread> threads;
  for (int c = 0; c < clients; ++c) {
    threads.emplace_back([&, c] {
      auto store = LogStore::open(path, {});
      if (!store) {
        std::cerr << store.error().describe() << "\n";
        return;
      }
      std::vector<double> latencies;
      for (std::uint64_t n = 0; Clock::now() < end; ++n) {
        auto e = event_from_json(sample_event(c, n)).value();
        e.time_us = std::chrono::duration_cast<std::chrono::microseconds>(
                        std::chrono::system_clock::now().time_since_epoch())
                        .count();
        auto t0 = Clock::now();
        auto one = std::span(&e, 1);
        auto r = store->append(next_index++, one, leaf_hashes(one), {});
        latencies.push_back(std::chrono::duration<double, std::milli>(Clock::now() - t0).count());
        (r ? samples.ok : samples.failed)++;
      }
      samples.add(latencies);
    });
  }
  for (auto& t : threads) t.join();
  double elapsed = std::chrono::duration<double>(Clock::now() - start).count();
  return summarize(samples, elapsed, "naive-sqlite", clients);
}

// The disk alone: what one fsync'd append costs, paced like the open-loop run.
nlohmann::json fsync_probe(const std::string& dir, double seconds) {
  Samples samples;
  auto path = std::filesystem::path(dir) / "fsync-probe";
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) {
    std::perror(path.c_str());
    std::exit(2);
  }
  Bytes block(8192, 'x');
  std::vector<double> latencies;
  auto start = Clock::now();
  for (std::uint64_t k = 0; k < static_cast<std::uint64_t>(seconds * 1000); ++k) {
    std::this_thread::sleep_until(start + std::chrono::microseconds(k * 1000));
    auto t0 = Clock::now();
    bool ok = write_all(fd, block) && ::fsync(fd) == 0;
    latencies.push_back(std::chrono::duration<double, std::milli>(Clock::now() - t0).count());
    (ok ? samples.ok : samples.failed)++;
  }
  ::close(fd);
  std::filesystem::remove(path);
  samples.add(latencies);
  return summarize(samples, seconds, "fsync-probe", 1);
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"audit_load: load for enclave-auditd, and the naive one-fsync-per-append peer"};
  std::string socket, naive_dir, probe_dir;
  int clients = 8, window = 64;
  double seconds = 10, rate = 0;
  app.add_option("--socket", socket, "enclave-auditd's socket");
  app.add_option("--naive-sqlite", naive_dir, "run the naive peer in this directory instead");
  app.add_option("--fsync-probe", probe_dir, "measure the disk's fsync in this directory instead");
  app.add_option("--clients", clients)->check(CLI::Range(1, 256));
  app.add_option("--window", window, "appends in flight per client (closed loop)")
      ->check(CLI::Range(1, 4096));
  app.add_option("--rate", rate, "total appends per second (open loop)");
  app.add_option("--seconds", seconds)->check(CLI::Range(0.1, 3600.0));
  CLI11_PARSE(app, argc, argv);
  nlohmann::json result;
  if (!probe_dir.empty()) {
    result = fsync_probe(probe_dir, seconds);
  } else if (!naive_dir.empty()) {
    result = naive_sqlite(naive_dir, clients, seconds);
  } else if (socket.empty()) {
    std::cerr << "give --socket or --naive-sqlite\n";
    return 2;
  } else if (rate > 0) {
    result = open_loop(socket, clients, rate, seconds);
  } else {
    result = closed_loop(socket, clients, window, seconds);
  }
  std::cout << result.dump() << "\n";
  return 0;
}
