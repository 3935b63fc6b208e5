// The server and client over real Unix sockets in a temporary directory, with real threads.
#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>

#include "common/ipc/client.hpp"
#include "common/ipc/frame.hpp"
#include "common/ipc/server.hpp"

namespace enclave::ipc {
namespace {

using namespace std::chrono_literals;
using nlohmann::json;
namespace fs = std::filesystem;

// Polls pred until it holds or the timeout passes.
template <class Pred>
bool eventually(Pred pred, std::chrono::milliseconds timeout = 10s) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!pred()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(2ms);
  }
  return true;
}

// Runs tasks on a few threads, so responders are called off the event loop and out of order.
class Workers {
 public:
  explicit Workers(int count) {
    for (int i = 0; i < count; ++i) threads_.emplace_back([this] { run(); });
  }
  ~Workers() { join(); }
  void submit(std::function<void()> task) {
    std::lock_guard lock(mutex_);
    tasks_.push_back(std::move(task));
    ready_.notify_one();
  }
  void join() {
    {
      std::lock_guard lock(mutex_);
      done_ = true;
      ready_.notify_all();
    }
    for (auto& t : threads_) {
      if (t.joinable()) t.join();
    }
  }

 private:
  void run() {
    for (;;) {
      std::function<void()> task;
      {
        std::unique_lock lock(mutex_);
        ready_.wait(lock, [&] { return done_ || !tasks_.empty(); });
        if (tasks_.empty()) return;
        task = std::move(tasks_.front());
        tasks_.pop_front();
      }
      task();
    }
  }
  std::mutex mutex_;
  std::condition_variable ready_;
  std::deque<std::function<void()>> tasks_;
  bool done_ = false;
  std::vector<std::thread> threads_;
};

struct Held {
  Request request;
  Responder respond;
};

struct Refusal {
  PeerCredentials peer;
  std::string reason;
};

// Methods: test.echo answers its params; test.fail answers no_space; test.throw throws;
// test.big answers more than a frame; test.stop stops the server from inside the handler.
// In hold mode requests are kept unanswered until release(); with workers set, answers come
// from worker threads after `delay`.
class TestHandler : public Handler {
 public:
  void handle(const PeerCredentials& peer, Request request, Responder respond) override {
    {
      std::lock_guard lock(mutex_);
      peers_.push_back(peer);
    }
    ++handled;
    if (request.method == "test.fail") {
      respond(Response::failure(request.id, {Errc::kNoSpace, "disk full"}));
    } else if (request.method == "test.throw") {
      throw std::runtime_error("handler bug");
    } else if (request.method == "test.big") {
      respond(Response::success(request.id, {{"blob", std::string(kMaxFrame, 'b')}}));
    } else if (request.method == "test.stop") {
      stop_server();
      respond(Response::success(request.id, {}));
    } else if (request.method == "test.wrong_id") {
      respond(Response::success(request.id + 1000, request.params));
    } else if (hold) {
      std::lock_guard lock(mutex_);
      held_.push_back({std::move(request), std::move(respond)});
    } else if (workers != nullptr) {
      workers->submit([this, request = std::move(request), respond = std::move(respond)] {
        std::this_thread::sleep_for(delay);
        respond(Response::success(request.id, request.params));
      });
    } else {
      respond(Response::success(request.id, request.params));
    }
  }

  void on_refused(const PeerCredentials& peer, const std::string& reason) override {
    std::lock_guard lock(mutex_);
    refusals_.push_back({peer, reason});
  }

  std::vector<Held> take_held() {
    std::lock_guard lock(mutex_);
    std::vector<Held> out(held_.begin(), held_.end());
    held_.clear();
    return out;
  }
  // Answers every held request with its params and stops holding.
  void release() {
    std::vector<Held> held;
    {
      std::lock_guard lock(mutex_);
      hold = false;
      held.assign(held_.begin(), held_.end());
      held_.clear();
    }
    for (auto& h : held) h.respond(Response::success(h.request.id, h.request.params));
  }
  std::size_t held_count() {
    std::lock_guard lock(mutex_);
    return held_.size();
  }
  std::vector<PeerCredentials> peers() {
    std::lock_guard lock(mutex_);
    return peers_;
  }
  std::vector<Refusal> refusals() {
    std::lock_guard lock(mutex_);
    return refusals_;
  }

  std::atomic<bool> hold{false};
  Workers* workers = nullptr;
  std::chrono::milliseconds delay{0};
  std::function<void()> stop_server;
  std::atomic<int> handled{0};

 private:
  std::mutex mutex_;
  std::vector<PeerCredentials> peers_;
  std::deque<Held> held_;
  std::vector<Refusal> refusals_;
};

// A peer that writes raw bytes, for what the Client would never send.
class RawPeer {
 public:
  explicit RawPeer(const fs::path& path) : fd_(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) {
    sockaddr_un address{};
    address.sun_family = AF_UNIX;
    std::strncpy(address.sun_path, path.c_str(), sizeof address.sun_path - 1);
    connected_ = ::connect(fd_, reinterpret_cast<sockaddr*>(&address), sizeof address) == 0;
  }
  ~RawPeer() { ::close(fd_); }
  bool connected() const { return connected_; }
  bool write(const Bytes& bytes) {
    return ::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL) ==
           static_cast<ssize_t>(bytes.size());
  }
  void shutdown_write() { ::shutdown(fd_, SHUT_WR); }
  // Everything the server sends until it closes; nullopt if it stays open for 10 s.
  std::optional<Bytes> read_until_closed() {
    Bytes all;
    const auto deadline = std::chrono::steady_clock::now() + 10s;
    for (;;) {
      pollfd entry{fd_, POLLIN, 0};
      if (::poll(&entry, 1, 50) == 0) {
        if (std::chrono::steady_clock::now() > deadline) return std::nullopt;
        continue;
      }
      std::uint8_t chunk[4096];
      ssize_t n = ::read(fd_, chunk, sizeof chunk);
      if (n <= 0) return all;
      all.insert(all.end(), chunk, chunk + n);
    }
  }

 private:
  int fd_;
  bool connected_ = false;
};

std::vector<Response> responses_in(const Bytes& stream) {
  std::vector<Response> out;
  ByteSpan rest(stream);
  for (;;) {
    auto found = next_frame(rest);
    if (!found || !found->has_value()) break;
    auto response = parse_response((*found)->payload);
    EXPECT_TRUE(response.has_value()) << response.error().describe();
    if (response) out.push_back(*response);
    rest = rest.subspan((*found)->consumed);
  }
  EXPECT_TRUE(rest.empty()) << rest.size() << " trailing bytes";
  return out;
}

Bytes request_frame(std::string_view payload) {
  Bytes out;
  append_frame(payload, out);
  return out;
}

class IpcTest : public ::testing::Test {
 protected:
  void SetUp() override {
    // Under /tmp: a Unix socket path is limited to 107 bytes.
    char dir_template[] = "/tmp/enclave-ipc-XXXXXX";
    ASSERT_NE(::mkdtemp(dir_template), nullptr);
    dir_ = dir_template;
    path_ = dir_ / "service.sock";
    for (int i = 0; i < 2; ++i) io_threads_.emplace_back([this] { io_.run(); });
  }

  void TearDown() override {
    workers_.join();
    server_.reset();
    guard_.reset();
    for (auto& t : io_threads_) t.join();
    fs::remove_all(dir_);
  }

  ServerOptions options() {
    ServerOptions o;
    o.socket_path = path_;
    return o;
  }

  void start(ServerOptions o) {
    server_ = std::make_unique<Server>(io_, std::move(o), handler_);
    auto started = server_->start();
    ASSERT_TRUE(started.has_value()) << started.error().describe();
  }

  Client connect() {
    auto client = Client::connect(path_);
    EXPECT_TRUE(client.has_value()) << client.error().describe();
    return std::move(client).value();
  }

  boost::asio::io_context io_;
  std::optional<boost::asio::executor_work_guard<boost::asio::io_context::executor_type>> guard_{
      io_.get_executor()};
  std::vector<std::thread> io_threads_;
  fs::path dir_;
  fs::path path_;
  TestHandler handler_;
  Workers workers_{4};
  std::unique_ptr<Server> server_;
};

// --- requests and responses ------------------------------------------------------------------

TEST_F(IpcTest, EchoReturnsTheParamsAndCountsTheRequest) {
  start(options());
  Client client = connect();
  auto result = client.call("test.echo", {{"text", "hello"}, {"n", 3}});
  ASSERT_TRUE(result.has_value()) << result.error().describe();
  EXPECT_EQ(*result, (json{{"text", "hello"}, {"n", 3}}));

  auto empty = client.call("test.echo", {});
  ASSERT_TRUE(empty.has_value()) << empty.error().describe();
  EXPECT_EQ(*empty, json::object());

  ServerStats stats = server_->stats();
  EXPECT_EQ(stats.requests, 2u);
  EXPECT_EQ(stats.connections_accepted, 1u);
  EXPECT_EQ(stats.open_connections, 1u);
  EXPECT_EQ(stats.connections_refused, 0u);
  EXPECT_EQ(stats.protocol_errors, 0u);
}

TEST_F(IpcTest, FailureResponseBecomesTheCallersError) {
  start(options());
  Client client = connect();
  auto result = client.call("test.fail", {});
  ASSERT_FALSE(result.has_value());
  EXPECT_EQ(result.error().code, Errc::kNoSpace);
  EXPECT_EQ(result.error().message, "disk full");
  EXPECT_TRUE(client.call("test.echo", {}).has_value());  // the connection carries on
}

TEST_F(IpcTest, ThrowingHandlerAnswersInternalErrorAndTheConnectionCarriesOn) {
  start(options());
  Client client = connect();
  auto result = client.call("test.throw", {});
  ASSERT_FALSE(result.has_value());
  EXPECT_EQ(result.error().code, Errc::kInternal);
  EXPECT_NE(result.error().message.find("test.throw"), std::string::npos);
  EXPECT_TRUE(client.call("test.echo", {}).has_value());
}

TEST_F(IpcTest, OversizedResultIsReplacedByAnInternalError) {
  start(options());
  Client client = connect();
  auto result = client.call("test.big", {});
  ASSERT_FALSE(result.has_value());
  EXPECT_EQ(result.error().code, Errc::kInternal);
  EXPECT_NE(result.error().message.find("frame limit"), std::string::npos);
}

TEST_F(IpcTest, RequestNearTheFrameLimitRoundTrips) {
  start(options());
  Client client = connect();
  std::string blob(kMaxFrame - 100, 'x');
  auto result = client.call("test.echo", {{"blob", blob}});
  ASSERT_TRUE(result.has_value()) << result.error().describe();
  EXPECT_EQ((*result)["blob"], blob);

  auto too_big = client.call("test.echo", {{"blob", std::string(kMaxFrame, 'x')}});
  ASSERT_FALSE(too_big.has_value());
  EXPECT_EQ(too_big.error().code, Errc::kInvalidArgument);
  EXPECT_TRUE(client.call("test.echo", {}).has_value());
}

TEST_F(IpcTest, ResponderAnswersUnderTheRequestsIdWhateverIdTheHandlerGives) {
  start(options());
  Client client = connect();
  auto result = client.call("test.wrong_id", {{"k", 1}});
  ASSERT_TRUE(result.has_value()) << result.error().describe();
  EXPECT_EQ(*result, (json{{"k", 1}}));
}

TEST_F(IpcTest, ClientRefusesABadMethodOrParamsWithoutSendingThem) {
  start(options());
  Client client = connect();
  auto bad_method = client.call("Not.Valid", {});
  ASSERT_FALSE(bad_method.has_value());
  EXPECT_EQ(bad_method.error().code, Errc::kInvalidArgument);
  auto bad_params = client.call("test.echo", json::array({1, 2}));
  ASSERT_FALSE(bad_params.has_value());
  EXPECT_EQ(bad_params.error().code, Errc::kInvalidArgument);
  EXPECT_TRUE(client.call("test.echo", {}).has_value());
  EXPECT_EQ(handler_.handled.load(), 1);
}

TEST_F(IpcTest, PeerCredentialsAreOurProcess) {
  start(options());
  Client client = connect();
  ASSERT_TRUE(client.call("test.echo", {}).has_value());
  auto peers = handler_.peers();
  ASSERT_EQ(peers.size(), 1u);
  EXPECT_EQ(peers[0].pid, ::getpid());
  EXPECT_EQ(peers[0].uid, ::getuid());
  EXPECT_EQ(peers[0].gid, ::getgid());
  EXPECT_FALSE(peers[0].user.empty());
  std::ifstream comm("/proc/self/comm");
  std::string own_command;
  std::getline(comm, own_command);
  EXPECT_FALSE(peers[0].command.empty());
  EXPECT_EQ(peers[0].command, own_command);
}

TEST_F(IpcTest, PipelinedRequestsAreAllAnsweredAndMatchedById) {
  handler_.workers = &workers_;  // four threads answer, in whatever order they finish
  start(options());
  Client client = connect();
  constexpr int kCount = 1000;
  std::map<std::uint64_t, int> sent;
  for (int i = 0; i < kCount; ++i) {
    auto id = client.send("test.echo", {{"n", i}});
    ASSERT_TRUE(id.has_value()) << id.error().describe();
    EXPECT_EQ(*id, static_cast<std::uint64_t>(i + 1));
    sent[*id] = i;
  }
  std::set<std::uint64_t> answered;
  for (int i = 0; i < kCount; ++i) {
    auto response = client.receive(10s);
    ASSERT_TRUE(response.has_value()) << response.error().describe();
    ASSERT_TRUE(response->ok);
    ASSERT_EQ(sent.count(response->id), 1u);
    EXPECT_EQ(response->result["n"], sent[response->id]);
    EXPECT_TRUE(answered.insert(response->id).second) << "answered twice: " << response->id;
  }
  EXPECT_EQ(answered.size(), static_cast<std::size_t>(kCount));
  EXPECT_EQ(server_->stats().requests, static_cast<std::uint64_t>(kCount));
}

TEST_F(IpcTest, ResponderMayAnswerLaterFromAnotherThread) {
  handler_.workers = &workers_;
  handler_.delay = 50ms;
  start(options());
  Client client = connect();
  auto before = std::chrono::steady_clock::now();
  auto result = client.call("test.echo", {{"late", true}});
  ASSERT_TRUE(result.has_value()) << result.error().describe();
  EXPECT_EQ(*result, (json{{"late", true}}));
  EXPECT_GE(std::chrono::steady_clock::now() - before, 50ms);
}

TEST_F(IpcTest, ResponderCalledAfterTheClientLeftIsHarmless) {
  handler_.hold = true;
  start(options());
  {
    Client client = connect();
    ASSERT_TRUE(client.send("test.echo", {}).has_value());
    ASSERT_TRUE(eventually([&] { return handler_.held_count() == 1; }));
  }
  auto held = handler_.take_held();
  std::thread late([&] { held[0].respond(Response::success(held[0].request.id, {})); });
  late.join();
  EXPECT_TRUE(eventually([&] { return server_->stats().open_connections == 0; }));
}

TEST_F(IpcTest, ResponderCalledAfterTheServerIsGoneIsHarmless) {
  handler_.hold = true;
  start(options());
  Client client = connect();
  ASSERT_TRUE(client.send("test.echo", {}).has_value());
  ASSERT_TRUE(eventually([&] { return handler_.held_count() == 1; }));
  auto held = handler_.take_held();
  server_->stop();
  server_.reset();
  std::thread late([&] {
    held[0].respond(Response::success(held[0].request.id, {}));
    held[0].respond(Response::success(held[0].request.id, {}));  // a second call is dropped
  });
  late.join();
  auto response = client.receive(5s);
  ASSERT_FALSE(response.has_value());
  EXPECT_EQ(response.error().code, Errc::kUnavailable);
}

TEST_F(IpcTest, HandlerMayStopTheServerFromInsideARequest) {
  start(options());
  handler_.stop_server = [&] { server_->stop(); };
  Client client = connect();
  // The handler's own response may or may not be written before the connection closes.
  (void)client.call("test.stop", {});
  EXPECT_TRUE(eventually([&] { return server_->stats().open_connections == 0; }));
}

// --- refusals and protocol errors ------------------------------------------------------------

TEST_F(IpcTest, UnauthorizedPeerIsRefusedWithPermission) {
  ServerOptions o = options();
  std::atomic<uid_t> asked_uid{static_cast<uid_t>(-1)};
  o.authorize = [&](const PeerCredentials& peer) {
    asked_uid = peer.uid;
    return false;
  };
  start(std::move(o));
  Client client = connect();
  auto result = client.call("test.echo", {});
  ASSERT_FALSE(result.has_value());
  EXPECT_EQ(result.error().code, Errc::kPermission) << result.error().describe();
  EXPECT_NE(result.error().message.find("uid " + std::to_string(::getuid())), std::string::npos)
      << result.error().message;
  EXPECT_EQ(asked_uid.load(), ::getuid());
  ASSERT_TRUE(eventually([&] { return handler_.refusals().size() == 1; }));
  EXPECT_EQ(handler_.refusals()[0].peer.uid, ::getuid());
  EXPECT_EQ(handler_.refusals()[0].peer.pid, ::getpid());
  EXPECT_EQ(handler_.handled.load(), 0);
  EXPECT_EQ(server_->stats().connections_refused, 1u);
  EXPECT_EQ(server_->stats().connections_accepted, 0u);
}

TEST_F(IpcTest, ConnectionBeyondTheLimitIsRefusedAndOthersCarryOn) {
  ServerOptions o = options();
  o.max_connections = 1;
  start(std::move(o));
  Client first = connect();
  ASSERT_TRUE(first.call("test.echo", {}).has_value());

  Client second = connect();
  auto refused = second.call("test.echo", {});
  ASSERT_FALSE(refused.has_value());
  EXPECT_EQ(refused.error().code, Errc::kUnavailable);
  EXPECT_NE(refused.error().message.find("limit of 1"), std::string::npos)
      << refused.error().message;
  ASSERT_TRUE(eventually([&] { return handler_.refusals().size() == 1; }));
  EXPECT_TRUE(first.call("test.echo", {}).has_value());

  { Client closing = std::move(first); }  // frees the only slot
  ASSERT_TRUE(eventually([&] { return server_->stats().open_connections == 0; }));
  Client third = connect();
  EXPECT_TRUE(third.call("test.echo", {}).has_value());
}

struct MalformedCase {
  const char* name;
  Bytes bytes;
  std::uint64_t reply_id;
  const char* reason;
};

TEST_F(IpcTest, MalformedInputIsAnsweredAndClosesOnlyItsConnection) {
  start(options());
  Client good = connect();
  ASSERT_TRUE(good.call("test.echo", {}).has_value());

  Bytes oversized;
  WriteCursor(oversized).u32be(kMaxFrame + 1);
  Bytes empty{0, 0, 0, 0};
  const std::vector<MalformedCase> cases = {
      {"oversized length", oversized, 0, "frame too large"},
      {"empty frame", empty, 0, "empty frame"},
      {"garbage JSON", request_frame("{not json"), 0, "bad JSON"},
      {"bad version", request_frame(R"({"v":2,"id":5,"method":"test.echo"})"), 5, "bad version"},
      {"unknown field", request_frame(R"({"v":1,"id":6,"method":"test.echo","x":1})"), 6,
       "bad field"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    RawPeer peer(path_);
    ASSERT_TRUE(peer.connected());
    ASSERT_TRUE(peer.write(c.bytes));
    auto received = peer.read_until_closed();
    ASSERT_TRUE(received.has_value()) << "the server kept the connection open";
    auto responses = responses_in(*received);
    ASSERT_EQ(responses.size(), 1u);
    EXPECT_EQ(responses[0].id, c.reply_id);
    EXPECT_FALSE(responses[0].ok);
    EXPECT_EQ(responses[0].code, Errc::kInvalidArgument);
    EXPECT_NE(responses[0].message.find(c.reason), std::string::npos) << responses[0].message;

    auto still = good.call("test.echo", {{"after", c.name}});
    ASSERT_TRUE(still.has_value()) << still.error().describe();
  }
  EXPECT_EQ(server_->stats().protocol_errors, cases.size());
  auto refusals = handler_.refusals();
  ASSERT_EQ(refusals.size(), cases.size());
  EXPECT_NE(refusals[0].reason.find("frame too large"), std::string::npos);
  EXPECT_EQ(refusals[0].peer.pid, ::getpid());
  EXPECT_EQ(handler_.handled.load(), static_cast<int>(1 + cases.size()));
}

TEST_F(IpcTest, PeerThatShutsDownItsSideStillGetsItsAnswer) {
  handler_.workers = &workers_;
  handler_.delay = 50ms;  // still pending when the server reads end of stream
  start(options());
  RawPeer peer(path_);
  ASSERT_TRUE(peer.connected());
  ASSERT_TRUE(peer.write(request_frame(R"({"v":1,"id":9,"method":"test.echo","params":{"a":1}})")));
  peer.shutdown_write();
  auto received = peer.read_until_closed();
  ASSERT_TRUE(received.has_value());
  auto responses = responses_in(*received);
  ASSERT_EQ(responses.size(), 1u);
  EXPECT_EQ(responses[0].id, 9u);
  EXPECT_TRUE(responses[0].ok);
  EXPECT_EQ(responses[0].result, (json{{"a", 1}}));
}

// --- backpressure and idle connections --------------------------------------------------------

TEST_F(IpcTest, ServerStopsReadingAtMaxPendingAndResumesAsAnswersDrain) {
  ServerOptions o = options();
  o.max_pending_per_connection = 4;
  handler_.hold = true;
  start(std::move(o));
  Client client = connect();
  constexpr int kCount = 20;
  for (int i = 0; i < kCount; ++i) ASSERT_TRUE(client.send("test.echo", {{"n", i}}).has_value());

  ASSERT_TRUE(eventually([&] { return handler_.held_count() == 4; }));
  std::this_thread::sleep_for(200ms);  // time in which a server that kept reading would go on
  EXPECT_EQ(handler_.handled.load(), 4);
  EXPECT_EQ(server_->stats().requests, 4u);

  handler_.release();
  std::set<std::uint64_t> answered;
  for (int i = 0; i < kCount; ++i) {
    auto response = client.receive(10s);
    ASSERT_TRUE(response.has_value()) << response.error().describe();
    EXPECT_EQ(response->result["n"], static_cast<int>(response->id) - 1);
    answered.insert(response->id);
  }
  EXPECT_EQ(answered.size(), static_cast<std::size_t>(kCount));
  EXPECT_EQ(handler_.handled.load(), kCount);
}

TEST_F(IpcTest, SilentConnectionIsClosedAfterTheIdleTimeout) {
  ServerOptions o = options();
  o.idle_timeout = 100ms;
  start(std::move(o));
  Client client = connect();
  ASSERT_TRUE(client.call("test.echo", {}).has_value());
  auto response = client.receive(10s);
  ASSERT_FALSE(response.has_value());
  EXPECT_EQ(response.error().code, Errc::kUnavailable);
  EXPECT_NE(response.error().message.find("connection closed by"), std::string::npos);
  EXPECT_TRUE(eventually([&] { return server_->stats().open_connections == 0; }));
}

TEST_F(IpcTest, PendingRequestKeepsAConnectionFromIdling) {
  ServerOptions o = options();
  o.idle_timeout = 100ms;
  handler_.hold = true;
  start(std::move(o));
  Client client = connect();
  ASSERT_TRUE(client.send("test.echo", {{"k", "v"}}).has_value());
  ASSERT_TRUE(eventually([&] { return handler_.held_count() == 1; }));
  std::this_thread::sleep_for(400ms);
  handler_.release();
  auto response = client.receive(10s);
  ASSERT_TRUE(response.has_value()) << response.error().describe();
  EXPECT_EQ(response->result, (json{{"k", "v"}}));
}

// --- the socket file --------------------------------------------------------------------------

TEST_F(IpcTest, StaleSocketFileIsReplaced) {
  int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
  sockaddr_un address{};
  address.sun_family = AF_UNIX;
  std::strncpy(address.sun_path, path_.c_str(), sizeof address.sun_path - 1);
  ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof address), 0);
  ::close(fd);  // leaves the socket file behind, as a crashed server would
  ASSERT_TRUE(fs::is_socket(path_));

  start(options());
  Client client = connect();
  EXPECT_TRUE(client.call("test.echo", {}).has_value());
}

TEST_F(IpcTest, StaleStagingSocketIsReplaced) {
  const fs::path staging = path_.string() + ".new";
  int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
  sockaddr_un address{};
  address.sun_family = AF_UNIX;
  std::strncpy(address.sun_path, staging.c_str(), sizeof address.sun_path - 1);
  ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof address), 0);
  ::close(fd);  // a server that died between bind() and moving its socket into place

  start(options());
  EXPECT_FALSE(fs::exists(staging));
  Client client = connect();
  EXPECT_TRUE(client.call("test.echo", {}).has_value());
}

// A client that waits for the socket file must never find one that refuses: the file appears
// only once the server listens (the daemons' tests and run.sh rely on this).
TEST_F(IpcTest, TheSocketPathAppearsOnlyOnceItAccepts) {
  for (int round = 0; round < 100; ++round) {
    fs::remove(path_);
    std::atomic<bool> stop{false};
    std::optional<Errc> refused;
    std::thread watcher([&] {
      while (!stop && !fs::exists(path_)) {
      }
      if (stop) return;
      auto client = Client::connect(path_);
      if (!client) refused = client.error().code;
    });
    Server server(io_, options(), handler_);
    auto started = server.start();
    ASSERT_TRUE(started.has_value()) << started.error().describe();
    stop = true;
    watcher.join();
    ASSERT_FALSE(refused.has_value()) << "round " << round << ": the path existed before listen()";
    server.stop();
  }
}

TEST_F(IpcTest, StopRemovesItsOwnSocketFileAndNoOtherServers) {
  start(options());
  ASSERT_TRUE(fs::is_socket(path_));
  server_->stop();
  EXPECT_FALSE(fs::exists(path_));

  // A server whose path was taken over by a newer one leaves the newer one's file alone.
  Server first(io_, options(), handler_);
  ASSERT_TRUE(first.start().has_value());
  fs::remove(path_);  // as an operator clearing it would
  Server second(io_, options(), handler_);
  ASSERT_TRUE(second.start().has_value());
  first.stop();
  EXPECT_TRUE(fs::is_socket(path_));
  auto client = Client::connect(path_);
  ASSERT_TRUE(client.has_value()) << client.error().describe();
  EXPECT_TRUE(client->call("test.echo", {}).has_value());
  second.stop();
  EXPECT_FALSE(fs::exists(path_));
}

TEST_F(IpcTest, RegularFileAtTheSocketPathIsNotReplaced) {
  std::ofstream(path_) << "precious";
  Server server(io_, options(), handler_);
  auto started = server.start();
  ASSERT_FALSE(started.has_value());
  EXPECT_EQ(started.error().code, Errc::kAlreadyExists);
  EXPECT_NE(started.error().message.find(path_.string()), std::string::npos);
  std::ifstream in(path_);
  std::string content;
  std::getline(in, content);
  EXPECT_EQ(content, "precious");
}

TEST_F(IpcTest, LiveSocketOfAnotherServerIsNotReplaced) {
  start(options());
  Server second(io_, options(), handler_);
  auto started = second.start();
  ASSERT_FALSE(started.has_value());
  EXPECT_EQ(started.error().code, Errc::kAlreadyExists);
  Client client = connect();
  EXPECT_TRUE(client.call("test.echo", {}).has_value());
}

TEST_F(IpcTest, MissingDirectoryIsNotFound) {
  ServerOptions o = options();
  o.socket_path = dir_ / "absent" / "service.sock";
  Server server(io_, std::move(o), handler_);
  auto started = server.start();
  ASSERT_FALSE(started.has_value());
  EXPECT_EQ(started.error().code, Errc::kNotFound);
}

TEST_F(IpcTest, SocketGetsTheConfiguredMode) {
  ServerOptions o = options();
  o.socket_mode = 0600;
  start(std::move(o));
  struct stat info {};
  ASSERT_EQ(::stat(path_.c_str(), &info), 0);
  EXPECT_TRUE(S_ISSOCK(info.st_mode));
  EXPECT_EQ(info.st_mode & 0777, 0600u);
}

TEST_F(IpcTest, StopClosesConnectionsAndNewOnesFind) {
  start(options());
  Client client = connect();
  ASSERT_TRUE(client.call("test.echo", {}).has_value());
  server_->stop();
  auto after = client.call("test.echo", {});
  ASSERT_FALSE(after.has_value());
  EXPECT_EQ(after.error().code, Errc::kUnavailable);
  EXPECT_TRUE(eventually([&] {
    auto late = Client::connect(path_);
    return !late.has_value() && late.error().code == Errc::kUnavailable;
  }));
}

// --- the client -------------------------------------------------------------------------------

TEST_F(IpcTest, ClientTimesOutWhenTheServerNeverAnswersAndDropsTheLateAnswer) {
  handler_.hold = true;
  start(options());
  Client client = connect();
  auto result = client.call("test.echo", {{"first", 1}}, 100ms);
  ASSERT_FALSE(result.has_value());
  EXPECT_EQ(result.error().code, Errc::kTimeout);

  handler_.release();  // the first request's answer now arrives, late
  auto next = client.call("test.echo", {{"second", 2}});
  ASSERT_TRUE(next.has_value()) << next.error().describe();
  EXPECT_EQ(*next, (json{{"second", 2}}));
}

TEST_F(IpcTest, ClientToAMissingSocketIsUnavailable) {
  auto client = Client::connect(dir_ / "nothing.sock");
  ASSERT_FALSE(client.has_value());
  EXPECT_EQ(client.error().code, Errc::kUnavailable);
  EXPECT_NE(client.error().message.find("no service listening at"), std::string::npos);
}

TEST_F(IpcTest, ClientCallWhileResponsesArePendingIsAnInternalError) {
  start(options());
  Client client = connect();
  ASSERT_TRUE(client.send("test.echo", {}).has_value());
  auto result = client.call("test.echo", {});
  ASSERT_FALSE(result.has_value());
  EXPECT_EQ(result.error().code, Errc::kInternal);
}

}  // namespace
}  // namespace enclave::ipc
