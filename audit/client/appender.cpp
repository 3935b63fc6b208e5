#include "audit/client/appender.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <condition_variable>
#include <deque>
#include <map>
#include <mutex>
#include <optional>
#include <thread>

#include "common/ipc/client.hpp"
#include "common/ipc/server.hpp"

namespace enclave::audit {

nlohmann::json refused_connection_event(const std::string& type, const ipc::PeerCredentials& peer,
                                        const std::string& reason) {
  return {{"type", type},
          {"outcome", "refused"},
          {"actor_kind", "user"},
          {"actor", peer.user},
          {"object", "connection"},
          {"details",
           {{"reason", reason},
            {"peer", {{"uid", peer.uid}, {"pid", peer.pid}, {"command", peer.command}}}}}};
}

namespace {

using Clock = std::chrono::steady_clock;

constexpr auto kMinBackoff = std::chrono::milliseconds(50);
constexpr auto kMaxBackoff = std::chrono::seconds(2);
// While acknowledgements are outstanding the worker polls the socket this often, so an event
// appended meanwhile waits at most this long before it is sent.
constexpr auto kReceivePoll = std::chrono::milliseconds(5);
// With nothing to send the worker asks auditd for its status this often, so healthy() notices
// a daemon that went away while the service was idle.
constexpr auto kHeartbeat = std::chrono::milliseconds(500);
// Unacknowledged appends on the wire: below the server's per-connection backpressure limit.
constexpr std::size_t kWindow = 128;
constexpr auto kDrainOnDestroy = std::chrono::seconds(2);

// Someone waiting in append_sync() for one event.
struct Waiter {
  bool done = false;
  Status status;
};

struct Item {
  std::uint64_t seq = 0;
  nlohmann::json event;
  std::shared_ptr<Waiter> waiter;  // append_sync only
};

}  // namespace

struct Appender::Impl {
  std::filesystem::path socket;
  std::size_t max_queue;

  mutable std::mutex mu;
  std::condition_variable wake;  // the worker: new work, a sync request, stop
  std::condition_variable done;  // waiters: an item completed, the link changed
  std::deque<Item> pending;      // not yet sent, oldest first
  // INVARIANT: every item is in exactly one of pending and in_flight until it completes.
  std::map<std::uint64_t, Item> in_flight;  // request id -> item, on the current connection
  std::uint64_t next_seq = 1;
  bool stopping = false;
  bool link_ok = true;              // connected, or not yet failed to connect
  bool permission_ok = true;        // auditd has not refused us as a writer
  bool sync_waiting = false;        // an append_sync() wants a connection attempt now
  Clock::time_point retry_after{};  // after auditd could not store an event: resend from then
  AppenderStats stats;
  std::thread worker;

  std::size_t outstanding() const { return pending.size() + in_flight.size(); }

  bool is_outstanding_upto(std::uint64_t seq) const {
    if (!pending.empty() && pending.front().seq <= seq) return true;
    return std::any_of(in_flight.begin(), in_flight.end(),
                       [&](const auto& entry) { return entry.second.seq <= seq; });
  }

  void complete(Item& item, Status status) {
    if (item.waiter) {
      item.waiter->done = true;
      item.waiter->status = std::move(status);
    }
    done.notify_all();
  }

  // Puts what was sent on a lost connection back at the front, in the original order: it is
  // sent again (auditd may then hold an event twice; it never loses one it acknowledged).
  void requeue_in_flight() {
    std::vector<Item> back;
    for (auto& [id, item] : in_flight) back.push_back(std::move(item));
    in_flight.clear();
    std::sort(back.begin(), back.end(), [](const Item& a, const Item& b) { return a.seq < b.seq; });
    for (auto it = back.rbegin(); it != back.rend(); ++it) pending.push_front(std::move(*it));
  }

  // After a failed connection attempt: an append_sync() caller must not wait for a daemon that
  // is not there. Its event is dropped (the caller does not act, so there is nothing to record).
  void fail_unsent_sync(const Error& why) {
    for (auto it = pending.begin(); it != pending.end();) {
      if (it->waiter) {
        it->waiter->done = true;
        it->waiter->status = Unexpected<Error>{why};
        it = pending.erase(it);
      } else {
        ++it;
      }
    }
    done.notify_all();
  }

  void set_link(bool ok) {
    link_ok = ok;
    done.notify_all();
  }

  void run() {
    std::optional<ipc::Client> client;
    auto backoff = std::chrono::milliseconds(kMinBackoff);
    bool connected_once = false;
    std::optional<std::uint64_t> heartbeat_id;
    auto last_traffic = Clock::now();
    std::optional<Clock::time_point> drain_deadline;
    std::unique_lock lock(mu);
    for (;;) {
      if (stopping) {
        if (!drain_deadline) drain_deadline = Clock::now() + kDrainOnDestroy;
        if (outstanding() == 0 || Clock::now() >= *drain_deadline) break;
      }
      if (!client) {
        lock.unlock();
        auto connected = ipc::Client::connect(socket, std::chrono::seconds(2));
        lock.lock();
        if (!connected) {
          if (link_ok) {
            spdlog::warn("audit daemon unreachable: {}", connected.error().describe());
          }
          set_link(false);
          sync_waiting = false;
          fail_unsent_sync(
              {Errc::kUnavailable, "audit daemon unreachable: " + connected.error().message});
          auto until = Clock::now() + backoff;
          if (drain_deadline) until = std::min(until, *drain_deadline);
          wake.wait_until(lock, until,
                          [&] { return sync_waiting || (stopping && !drain_deadline); });
          backoff = std::min<std::chrono::milliseconds>(backoff * 2, kMaxBackoff);
          continue;
        }
        client.emplace(std::move(connected).value());
        if (connected_once) {
          stats.reconnects++;
          spdlog::info("audit daemon reachable again at {}", socket.string());
        }
        connected_once = true;
        backoff = kMinBackoff;
        heartbeat_id.reset();
        last_traffic = Clock::now();
        requeue_in_flight();
        set_link(true);
      }

      // Send what waits, within the window.
      bool broken = false;
      std::string why;
      while (!pending.empty() && in_flight.size() < kWindow && Clock::now() >= retry_after) {
        Item item = std::move(pending.front());
        pending.pop_front();
        auto params = item.event;
        lock.unlock();
        auto id = client->send("audit.append", std::move(params));
        lock.lock();
        if (!id) {
          pending.push_front(std::move(item));
          broken = true;
          why = id.error().describe();
          break;
        }
        in_flight.emplace(*id, std::move(item));
        last_traffic = Clock::now();
      }
      if (!broken && in_flight.empty() && !heartbeat_id && !stopping &&
          Clock::now() - last_traffic >= kHeartbeat) {
        lock.unlock();
        auto id = client->send("audit.status", nlohmann::json::object());
        lock.lock();
        if (id) {
          heartbeat_id = *id;
        } else {
          broken = true;
          why = id.error().describe();
        }
      }
      if (!broken && (!in_flight.empty() || heartbeat_id)) {
        lock.unlock();
        auto response = client->receive(kReceivePoll);
        lock.lock();
        if (response) {
          last_traffic = Clock::now();
          handle(*response, heartbeat_id);
        } else if (response.error().code != Errc::kTimeout) {
          broken = true;
          why = response.error().describe();
        }
      } else if (!broken) {
        const auto until = pending.empty() ? last_traffic + kHeartbeat : retry_after;
        wake.wait_until(lock, until, [&] {
          return stopping || (!pending.empty() && Clock::now() >= retry_after);
        });
      }
      if (broken) {
        spdlog::warn("lost the connection to the audit daemon ({}); reconnecting", why);
        client.reset();
        requeue_in_flight();
        set_link(false);
      }
    }
    const std::size_t lost = outstanding();
    if (lost > 0) {
      spdlog::error("{} audit events were not acknowledged before shutdown and are lost", lost);
    }
    Error gone{Errc::kUnavailable, "the audit appender is shutting down"};
    for (auto& item : pending) complete(item, Unexpected<Error>{gone});
    for (auto& [id, item] : in_flight) complete(item, Unexpected<Error>{gone});
    pending.clear();
    in_flight.clear();
  }

  // With mu held.
  void handle(const ipc::Response& response, std::optional<std::uint64_t>& heartbeat_id) {
    if (heartbeat_id && response.id == *heartbeat_id) {
      heartbeat_id.reset();
      return;
    }
    auto it = in_flight.find(response.id);
    if (it == in_flight.end()) return;  // id 0 or unknown: the connection's end will follow
    Item item = std::move(it->second);
    in_flight.erase(it);
    if (response.ok) {
      stats.acknowledged++;
      permission_ok = true;
      complete(item, {});
      return;
    }
    switch (response.code) {
      case Errc::kInvalidArgument:  // a malformed event: our bug; resending will not help
        stats.rejected++;
        spdlog::error("the audit daemon rejected an event: {}", response.message);
        complete(item, Unexpected<Error>{response.error()});
        return;
      case Errc::kPermission:
        stats.rejected++;
        permission_ok = false;
        spdlog::error("the audit daemon refused an event: {}", response.message);
        complete(item, Unexpected<Error>{response.error()});
        return;
      default:  // queue full, disk full, I/O: not stored; send it again
        spdlog::warn("the audit daemon could not store an event ({}); retrying",
                     response.error().describe());
        pending.push_front(std::move(item));
        retry_after = Clock::now() + kMinBackoff;
        return;
    }
  }
};

Appender::Appender(std::filesystem::path socket, std::size_t max_queue)
    : impl_(std::make_unique<Impl>()) {
  impl_->socket = std::move(socket);
  impl_->max_queue = std::max<std::size_t>(max_queue, 1);
  impl_->worker = std::thread([impl = impl_.get()] { impl->run(); });
}

Appender::~Appender() {
  {
    std::lock_guard lock(impl_->mu);
    impl_->stopping = true;
  }
  impl_->wake.notify_all();
  impl_->worker.join();
}

bool Appender::append(nlohmann::json event) {
  std::lock_guard lock(impl_->mu);
  if (impl_->outstanding() >= impl_->max_queue || impl_->stopping) {
    impl_->stats.refused_full++;
    return false;
  }
  impl_->pending.push_back({impl_->next_seq++, std::move(event), nullptr});
  impl_->wake.notify_all();
  return true;
}

Status Appender::append_sync(nlohmann::json event, std::chrono::milliseconds timeout) {
  auto waiter = std::make_shared<Waiter>();
  const auto deadline = Clock::now() + timeout;
  std::unique_lock lock(impl_->mu);
  if (impl_->stopping) return fail(Errc::kUnavailable, "the audit appender is shutting down");
  if (impl_->outstanding() >= impl_->max_queue) {
    impl_->stats.refused_full++;
    return fail(Errc::kUnavailable, "the audit queue is full");
  }
  const std::uint64_t seq = impl_->next_seq++;
  impl_->pending.push_back({seq, std::move(event), waiter});
  if (!impl_->link_ok) impl_->sync_waiting = true;  // try to connect now, not after back-off
  impl_->wake.notify_all();
  if (impl_->done.wait_until(lock, deadline, [&] { return waiter->done; })) return waiter->status;
  // Not acknowledged in time. An event still unsent is withdrawn, so that it is not recorded
  // for an action the caller is about to abandon; one already sent may still be recorded.
  auto& pending = impl_->pending;
  auto it = std::find_if(pending.begin(), pending.end(),
                         [&](const Item& item) { return item.seq == seq; });
  if (it != pending.end()) {
    pending.erase(it);
    return fail(Errc::kUnavailable, "the audit daemon at " + impl_->socket.string() +
                                        " did not take the event within " +
                                        std::to_string(timeout.count()) + " ms");
  }
  return fail(Errc::kTimeout, "the audit daemon did not acknowledge the event within " +
                                  std::to_string(timeout.count()) + " ms");
}

Status Appender::flush(std::chrono::milliseconds timeout) {
  std::unique_lock lock(impl_->mu);
  const std::uint64_t upto = impl_->next_seq - 1;
  if (impl_->done.wait_for(lock, timeout, [&] { return !impl_->is_outstanding_upto(upto); })) {
    return {};
  }
  if (!impl_->link_ok) {
    return fail(Errc::kUnavailable,
                "the audit daemon at " + impl_->socket.string() + " is unreachable");
  }
  return fail(Errc::kTimeout,
              "audit events still unacknowledged after " + std::to_string(timeout.count()) + " ms");
}

bool Appender::healthy() const {
  std::lock_guard lock(impl_->mu);
  return impl_->link_ok && impl_->permission_ok && impl_->outstanding() * 4 < impl_->max_queue * 3;
}

AppenderStats Appender::stats() const {
  std::lock_guard lock(impl_->mu);
  AppenderStats s = impl_->stats;
  s.queued = impl_->outstanding();
  return s;
}

}  // namespace enclave::audit
