// The download server with real clients: curl for downloads and the statuses a browser or
// script meets, and a raw OpenSSL client for what curl will not send (malformed heads, TLS
// 1.1, a client that stops reading). The authority is a test one backed by temp files that
// implements one-time use; the certificate comes from a local CA made by common/x509.
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cctype>
#include <condition_variable>
#include <fstream>
#include <map>
#include <mutex>
#include <random>
#include <thread>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>

#include "common/bytes.hpp"
#include "common/files.hpp"
#include "common/x509.hpp"
#include "exitcontrol/download/download_server.hpp"
#include "tests/support/process.hpp"

namespace enclave::exitcontrol::download {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using enclave::testing::TempDir;

constexpr std::uint64_t kTenMegabytes = 10 * 1024 * 1024;

// ---- The test authority -----------------------------------------------------------------------

struct FinishedCall {
  std::string grant_id;
  bool complete = false;
  std::uint64_t bytes = 0;
  std::string reason;
};

// What the server asked of the grants' read functions.
struct ReadLog {
  std::atomic<std::uint64_t> calls{0}, bytes{0}, largest_request{0};
};

// Links to files, each usable once; one link can be made to fail as a database would.
class FileAuthority : public DownloadAuthority {
 public:
  // A link to `file`; the grant declares `declared_size` when given (a lying store).
  std::string add_link(const fs::path& file, std::optional<std::uint64_t> declared_size = {}) {
    std::lock_guard lock(mu_);
    const std::string token = sha256_hex(as_bytes("link " + std::to_string(links_.size())));
    links_[token] = Link{file, declared_size.value_or(fs::file_size(file)), false, false};
    return token;
  }
  std::string add_failing_link() {
    std::lock_guard lock(mu_);
    const std::string token = sha256_hex(as_bytes("failing " + std::to_string(links_.size())));
    links_[token] = Link{{}, 0, false, true};
    return token;
  }

  Expected<DownloadGrant> claim(const std::string& token, const std::string& source) override {
    std::lock_guard lock(mu_);
    sources_.push_back(source);
    auto it = links_.find(token);
    if (it == links_.end()) return fail(Errc::kNotFound, "unknown link");
    Link& link = it->second;
    if (link.fails) return fail(Errc::kIo, "exports.db: database is locked");
    if (link.used) return fail(Errc::kConflict, "link already used");
    link.used = true;
    auto file = std::make_shared<std::ifstream>(link.file, std::ios::binary);
    if (!*file) return fail(Errc::kIo, link.file.string() + ": cannot open");
    DownloadGrant grant;
    grant.grant_id = "G-" + std::to_string(++grants_);
    grant.file_name = link.file.filename().string();
    grant.size = link.size;
    grant.read = [file, log = reads_](std::span<std::uint8_t> out) -> Expected<std::size_t> {
      ++log->calls;
      std::uint64_t largest = log->largest_request.load();
      while (out.size() > largest &&
             !log->largest_request.compare_exchange_weak(largest, out.size())) {
      }
      file->read(reinterpret_cast<char*>(out.data()), static_cast<std::streamsize>(out.size()));
      if (file->bad()) return fail(Errc::kIo, "read failed");
      const auto n = static_cast<std::size_t>(file->gcount());
      log->bytes += n;
      return n;
    };
    return grant;
  }

  void finished(const std::string& grant_id, bool complete, std::uint64_t bytes,
                const std::string& reason) override {
    std::lock_guard lock(mu_);
    finished_.push_back({grant_id, complete, bytes, reason});
    cv_.notify_all();
  }

  void rejected(const std::string& source, const std::string& reason) override {
    std::lock_guard lock(mu_);
    rejected_.push_back(source + " " + reason);
  }

  // The finished() calls so far, once there are at least n (or when timeout passes).
  std::vector<FinishedCall> wait_finished(std::size_t n, std::chrono::milliseconds timeout = 20s) {
    std::unique_lock lock(mu_);
    cv_.wait_for(lock, timeout, [&] { return finished_.size() >= n; });
    return finished_;
  }
  std::size_t claims() {
    std::lock_guard lock(mu_);
    return sources_.size();
  }
  std::vector<std::string> sources() {
    std::lock_guard lock(mu_);
    return sources_;
  }
  std::vector<std::string> rejections() {
    std::lock_guard lock(mu_);
    return rejected_;
  }
  const ReadLog& reads() const { return *reads_; }

 private:
  struct Link {
    fs::path file;
    std::uint64_t size = 0;
    bool used = false;
    bool fails = false;
  };
  std::mutex mu_;
  std::condition_variable cv_;
  std::map<std::string, Link> links_;
  std::vector<std::string> sources_;
  std::vector<FinishedCall> finished_;
  std::vector<std::string> rejected_;  // "source reason"
  int grants_ = 0;
  std::shared_ptr<ReadLog> reads_ = std::make_shared<ReadLog>();
};

// ---- A raw TLS client (OpenSSL, blocking) -----------------------------------------------------

class RawTlsClient {
 public:
  // Connects to 127.0.0.1:port; receive_buffer > 0 shrinks the socket's receive buffer first
  // (a client that reads nothing then holds little).
  explicit RawTlsClient(std::uint16_t port, int receive_buffer = 0) {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (receive_buffer > 0) {
      ::setsockopt(fd_, SOL_SOCKET, SO_RCVBUF, &receive_buffer, sizeof receive_buffer);
    }
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_port = htons(port);
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    connected_ = ::connect(fd_, reinterpret_cast<sockaddr*>(&address), sizeof address) == 0;
    timeval timeout{5, 0};
    ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
  }
  ~RawTlsClient() {
    if (ssl_ != nullptr) SSL_free(ssl_);
    if (ctx_ != nullptr) SSL_CTX_free(ctx_);
    if (fd_ >= 0) ::close(fd_);
  }
  RawTlsClient(const RawTlsClient&) = delete;
  RawTlsClient& operator=(const RawTlsClient&) = delete;

  bool connected() const { return connected_; }
  int fd() const { return fd_; }

  // Handshakes offering only versions [min, max]; 0 on success, else OpenSSL's first error.
  unsigned long handshake(int min_version = TLS1_2_VERSION, int max_version = 0) {
    ctx_ = client_context(min_version, max_version);
    ssl_ = SSL_new(ctx_);
    SSL_set_fd(ssl_, fd_);
    ERR_clear_error();
    if (SSL_connect(ssl_) == 1) return 0;
    const unsigned long e = ERR_get_error();
    ERR_clear_error();
    return e == 0 ? 1 : e;
  }
  bool send(std::string_view bytes) {
    return SSL_write(ssl_, bytes.data(), static_cast<int>(bytes.size())) ==
           static_cast<int>(bytes.size());
  }
  // Everything until the server closes (or 5 s pass without a byte).
  std::string read_all() {
    std::string out;
    char buf[16384];
    for (;;) {
      const int n = SSL_read(ssl_, buf, sizeof buf);
      if (n <= 0) break;
      out.append(buf, static_cast<std::size_t>(n));
    }
    ERR_clear_error();
    return out;
  }
  // True when the server closed the TCP connection (without TLS) within 5 s.
  bool closed_by_server() {
    char byte;
    return ::recv(fd_, &byte, 1, 0) == 0;
  }

  // A client context that can speak every version in [min, max], old ones included: the
  // security level goes to 0 so that the client, not OpenSSL's policy, decides.
  static SSL_CTX* client_context(int min_version, int max_version) {
    SSL_CTX* ctx = SSL_CTX_new(TLS_client_method());
    SSL_CTX_set_security_level(ctx, 0);
    SSL_CTX_set_cipher_list(ctx, "DEFAULT:@SECLEVEL=0");
    SSL_CTX_set_min_proto_version(ctx, min_version);
    SSL_CTX_set_max_proto_version(ctx, max_version);
    SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, nullptr);
    return ctx;
  }

 private:
  int fd_ = -1;
  bool connected_ = false;
  SSL_CTX* ctx_ = nullptr;
  SSL* ssl_ = nullptr;
};

// Polls until check() holds, for at most 5 s.
template <class F>
bool eventually(F check) {
  for (int i = 0; i < 500; ++i) {
    if (check()) return true;
    std::this_thread::sleep_for(10ms);
  }
  return check();
}

// ---- The fixture ------------------------------------------------------------------------------

class DownloadServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (enclave::testing::run({"curl", "--version"}).exit_code != 0) {
      GTEST_SKIP() << "curl is not installed: the downloads are tested with the real client";
    }
    ASSERT_TRUE(x509::create_ca(dir_ / "ca.crt", dir_ / "ca.key", "download test CA"));
    auto ca = x509::CertificateAuthority::load(dir_ / "ca.crt", dir_ / "ca.key");
    ASSERT_TRUE(ca) << ca.error().describe();
    auto issued =
        ca->issue({x509::Purpose::kServer, "localhost", {"localhost"}, {"127.0.0.1"}, 30});
    ASSERT_TRUE(issued) << issued.error().describe();
    ASSERT_TRUE(write_file_atomically(certificate(), issued->certificate_pem, 0644));
    ASSERT_TRUE(write_file_atomically(private_key(), issued->private_key_pem, 0600));
  }

  void TearDown() override {
    server_.reset();
    work_.reset();
    io_.stop();
    if (io_thread_.joinable()) io_thread_.join();
  }

  fs::path certificate() const { return dir_ / "download.crt"; }
  fs::path private_key() const { return dir_ / "download.key"; }

  DownloadServerOptions options() const {
    DownloadServerOptions o;
    o.port = 0;
    o.certificate = certificate();
    o.private_key = private_key();
    return o;
  }

  void start(const DownloadServerOptions& o) {
    server_ = std::make_unique<DownloadServer>(io_, o, authority_);
    auto started = server_->start();
    ASSERT_TRUE(started) << started.error().describe();
    ASSERT_NE(server_->port(), 0);
    io_thread_ = std::thread([this] { io_.run(); });
  }
  void start() { start(options()); }

  fs::path random_file(const std::string& name, std::uint64_t size) {
    const fs::path path = dir_ / name;
    std::mt19937_64 rng(size);
    std::string bytes(size, '\0');
    for (char& c : bytes) c = static_cast<char>(rng());
    std::ofstream(path, std::ios::binary).write(bytes.data(), static_cast<std::streamsize>(size));
    return path;
  }

  std::string url(const std::string& path) const {
    return "https://127.0.0.1:" + std::to_string(server_->port()) + path;
  }
  std::string link(const std::string& token) const { return url("/download/" + token); }

  struct Fetched {
    int exit_code = -1;
    int status = 0;
    std::string headers;
    fs::path body;
  };
  Fetched curl(const std::string& target_url, std::vector<std::string> extra = {}) {
    const std::string n = std::to_string(++fetches_);
    Fetched f;
    f.body = dir_ / ("body-" + n);
    const fs::path headers = dir_ / ("headers-" + n);
    std::vector<std::string> argv{"curl",
                                  "--silent",
                                  "--show-error",
                                  "--cacert",
                                  (dir_ / "ca.crt").string(),
                                  "--output",
                                  f.body.string(),
                                  "--dump-header",
                                  headers.string(),
                                  "--write-out",
                                  "%{http_code}"};
    argv.insert(argv.end(), extra.begin(), extra.end());
    argv.push_back(target_url);
    auto r = enclave::testing::run(argv, {}, 60s);
    f.exit_code = r.exit_code;
    f.status = r.out.empty() ? 0 : std::stoi(r.out);
    f.headers = body_of(headers);
    return f;
  }

  static std::string file_sha256(const fs::path& path) {
    auto content = read_file(path);
    return content ? sha256_hex(as_bytes(*content)) : "";
  }
  static std::string body_of(const fs::path& path) {
    auto content = read_file(path);
    return content ? *content : "";
  }

  TempDir dir_;
  FileAuthority authority_;
  boost::asio::io_context io_;
  boost::asio::executor_work_guard<boost::asio::io_context::executor_type> work_ =
      boost::asio::make_work_guard(io_);
  std::unique_ptr<DownloadServer> server_;
  std::thread io_thread_;
  int fetches_ = 0;
};

TEST_F(DownloadServerTest, DeliversTheFileByteForByteAndReportsItComplete) {
  start();
  const fs::path file = random_file("R-7.tar", 1234567);
  const std::string token = authority_.add_link(file);
  Fetched f = curl(link(token));
  EXPECT_EQ(f.exit_code, 0);
  EXPECT_EQ(f.status, 200);
  EXPECT_EQ(file_sha256(f.body), file_sha256(file));
  for (const char* field : {"Content-Type: application/x-tar\r\n", "Content-Length: 1234567\r\n",
                            "Content-Disposition: attachment; filename=\"R-7.tar\"\r\n",
                            "Cache-Control: no-store\r\n", "Connection: close\r\n"}) {
    EXPECT_NE(f.headers.find(field), std::string::npos) << field << " in\n" << f.headers;
  }
  auto calls = authority_.wait_finished(1);
  ASSERT_EQ(calls.size(), 1u);
  EXPECT_EQ(calls[0].grant_id, "G-1");
  EXPECT_TRUE(calls[0].complete);
  EXPECT_EQ(calls[0].bytes, 1234567u);
  EXPECT_EQ(calls[0].reason, "complete");
  EXPECT_EQ(authority_.sources(), std::vector<std::string>{"127.0.0.1"});
  const DownloadServerStats stats = server_->stats();
  EXPECT_EQ(stats.served, 1u);
  EXPECT_EQ(stats.incomplete, 0u);
  EXPECT_EQ(stats.bytes, 1234567u);
}

TEST_F(DownloadServerTest, ALinkWorksOnceThenIsGoneLikeAnUnknownOne) {
  start();
  const std::string token = authority_.add_link(random_file("R-1.tar", 4096));
  ASSERT_EQ(curl(link(token)).status, 200);
  ASSERT_EQ(authority_.wait_finished(1).size(), 1u);

  Fetched again = curl(link(token));
  EXPECT_EQ(again.exit_code, 0);
  EXPECT_EQ(again.status, 410);
  const std::string words =
      "this link is not valid: it is unknown, has expired or was already used\n";
  EXPECT_EQ(body_of(again.body), words);
  Fetched unknown = curl(link(std::string(64, 'f')));
  EXPECT_EQ(unknown.status, 410);
  EXPECT_EQ(body_of(unknown.body), words);

  EXPECT_EQ(authority_.claims(), 3u);
  EXPECT_EQ(authority_.wait_finished(2, 300ms).size(), 1u) << "finished only for the claim";
  EXPECT_EQ(server_->stats().refused, 2u);
}

TEST_F(DownloadServerTest, TheStoreFailingIsUnavailableNotGone) {
  start();
  Fetched f = curl(link(authority_.add_failing_link()));
  EXPECT_EQ(f.status, 503);
  EXPECT_EQ(server_->stats().unavailable, 1u);
  EXPECT_TRUE(authority_.wait_finished(1, 200ms).empty());
}

TEST_F(DownloadServerTest, AnswersOtherPathsAndMethodsWithoutClaiming) {
  start();
  const std::string token = authority_.add_link(random_file("R-2.tar", 100));
  EXPECT_EQ(curl(url("/")).status, 404);
  EXPECT_EQ(curl(url("/download/")).status, 404);
  EXPECT_EQ(curl(url("/download/" + token + "?again=1")).status, 404);
  std::string upper = token;
  for (char& c : upper) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  EXPECT_EQ(curl(url("/download/" + upper)).status, 404);
  Fetched post = curl(link(token), {"-X", "POST"});
  EXPECT_EQ(post.status, 405);
  EXPECT_NE(post.headers.find("Allow: GET\r\n"), std::string::npos) << post.headers;
  EXPECT_EQ(curl(link(token), {"--head"}).status, 405);
  EXPECT_EQ(authority_.claims(), 0u);
  // The link is still good after all that.
  EXPECT_EQ(curl(link(token)).status, 200);
  EXPECT_EQ(server_->stats().bad_requests, 6u);
  const std::string not_a_link = "127.0.0.1 HTTP 404: not a download link";
  const std::string not_get =
      "127.0.0.1 HTTP 405: a download link requested with another method than GET";
  EXPECT_EQ(authority_.rejections(), (std::vector<std::string>{not_a_link, not_a_link, not_a_link,
                                                               not_a_link, not_get, not_get}));
}

// The status line of what the server sent back to a raw request.
std::string status_line(const std::string& response) {
  return response.substr(0, response.find("\r\n"));
}

TEST_F(DownloadServerTest, AnswersMalformedRequestsWithTheirStatus) {
  start();
  const std::string token = authority_.add_link(random_file("R-3.tar", 100));
  const std::pair<std::string, const char*> cases[] = {
      {"GET /download/" + token + " HTTP/1.1\nHost: h\n\n", "HTTP/1.1 400 Bad Request"},
      {"GET /download/" + token + " HTTP/1.1\r\n\r\n", "HTTP/1.1 400 Bad Request"},
      {"GET /download/" + token + " HTTP/1.1\r\nHost: h\r\n  folded\r\n\r\n",
       "HTTP/1.1 400 Bad Request"},
      {"GET /download/" + token + " HTTP/2.0\r\nHost: h\r\n\r\n",
       "HTTP/1.1 505 HTTP Version Not Supported"},
      {"GET /" + std::string(3000, 'a') + " HTTP/1.1\r\nHost: h\r\n\r\n",
       "HTTP/1.1 414 URI Too Long"},
      {"GET / HTTP/1.1\r\nHost: h\r\nX: " + std::string(5000, 'x') + "\r\n\r\n",
       "HTTP/1.1 431 Request Header Fields Too Large"},
      {"GET / HTTP/1.1\r\nHost: h\r\nX: " + std::string(3000, 'x') +
           "\r\nY: " + std::string(3000, 'y') + "\r\nZ: " + std::string(3000, 'z') + "\r\n\r\n",
       "HTTP/1.1 431 Request Header Fields Too Large"},
  };
  for (const auto& [request, expected] : cases) {
    SCOPED_TRACE(expected);
    RawTlsClient client(server_->port());
    ASSERT_TRUE(client.connected());
    ASSERT_EQ(client.handshake(), 0u);
    ASSERT_TRUE(client.send(request));
    EXPECT_EQ(status_line(client.read_all()), expected);
  }
  EXPECT_EQ(authority_.claims(), 0u);
  EXPECT_EQ(server_->stats().bad_requests, std::size(cases));
  const auto rejections = authority_.rejections();
  ASSERT_EQ(rejections.size(), std::size(cases));
  EXPECT_EQ(rejections[0],
            "127.0.0.1 HTTP 400: malformed request: request-line: bare LF (lines "
            "end in CRLF)");
  for (const std::string& r : rejections) EXPECT_EQ(r.find(token), std::string::npos) << r;
}

TEST_F(DownloadServerTest, ALateRequestHeadGets408AndNoTlsIsDropped) {
  DownloadServerOptions o = options();
  o.head_timeout = 1s;
  start(o);
  const std::string token = authority_.add_link(random_file("R-4.tar", 100));
  {
    RawTlsClient slow(server_->port());
    ASSERT_EQ(slow.handshake(), 0u);
    ASSERT_TRUE(slow.send("GET /download/" + token + " HTTP/1.1\r\nHost: h\r\n"));
    const auto begin = std::chrono::steady_clock::now();
    EXPECT_EQ(status_line(slow.read_all()), "HTTP/1.1 408 Request Timeout");
    EXPECT_LT(std::chrono::steady_clock::now() - begin, 5s);
  }
  {
    RawTlsClient silent(server_->port());  // never starts TLS
    ASSERT_TRUE(silent.connected());
    EXPECT_TRUE(silent.closed_by_server());
  }
  EXPECT_EQ(authority_.claims(), 0u);
  EXPECT_EQ(server_->stats().tls_failures, 1u);
  EXPECT_EQ(authority_.rejections(),
            (std::vector<std::string>{"127.0.0.1 HTTP 408: no complete request head within 1000 ms",
                                      "127.0.0.1 TLS handshake: not done within 1000 ms"}));
}

// A TLS 1.1 handshake between the test client and a server context that allows it, in
// memory: proof that the client can offer TLS 1.1 at all on this machine.
bool tls11_possible(const fs::path& certificate, const fs::path& private_key) {
  SSL_CTX* server_ctx = SSL_CTX_new(TLS_server_method());
  SSL_CTX_set_security_level(server_ctx, 0);
  SSL_CTX_set_cipher_list(server_ctx, "DEFAULT:@SECLEVEL=0");
  SSL_CTX_set_min_proto_version(server_ctx, TLS1_1_VERSION);
  bool loaded = SSL_CTX_use_certificate_chain_file(server_ctx, certificate.c_str()) == 1 &&
                SSL_CTX_use_PrivateKey_file(server_ctx, private_key.c_str(), SSL_FILETYPE_PEM) == 1;
  SSL_CTX* client_ctx = RawTlsClient::client_context(TLS1_1_VERSION, TLS1_1_VERSION);
  SSL* server = SSL_new(server_ctx);
  SSL* client = SSL_new(client_ctx);
  BIO *client_bio = nullptr, *server_bio = nullptr;
  BIO_new_bio_pair(&client_bio, 0, &server_bio, 0);
  SSL_set_bio(client, client_bio, client_bio);
  SSL_set_bio(server, server_bio, server_bio);
  SSL_set_connect_state(client);
  SSL_set_accept_state(server);
  bool done = false;
  for (int round = 0; loaded && round < 20 && !done; ++round) {
    const int c = SSL_do_handshake(client);
    const int s = SSL_do_handshake(server);
    done = c == 1 && s == 1;
  }
  const bool tls11 = done && SSL_version(client) == TLS1_1_VERSION;
  SSL_free(client);
  SSL_free(server);
  SSL_CTX_free(client_ctx);
  SSL_CTX_free(server_ctx);
  ERR_clear_error();
  return tls11;
}

TEST_F(DownloadServerTest, RefusesTls11AndServesTls12) {
  if (!tls11_possible(certificate(), private_key())) {
    GTEST_SKIP() << "this OpenSSL cannot speak TLS 1.1 even when allowed: nothing to refuse";
  }
  start();
  RawTlsClient old(server_->port());
  const unsigned long error = old.handshake(TLS1_1_VERSION, TLS1_1_VERSION);
  EXPECT_EQ(ERR_GET_REASON(error), SSL_R_TLSV1_ALERT_PROTOCOL_VERSION)
      << ERR_error_string(error, nullptr);
  // The client reads the alert before the server counts the failure.
  EXPECT_TRUE(eventually([&] { return server_->stats().tls_failures == 1; }));
  ASSERT_EQ(authority_.rejections().size(), 1u);
  EXPECT_TRUE(authority_.rejections()[0].starts_with("127.0.0.1 TLS handshake: "))
      << authority_.rejections()[0];
  Fetched tls12 = curl(url("/"), {"--tlsv1.2", "--tls-max", "1.2"});
  EXPECT_EQ(tls12.status, 404);
  Fetched tls13 = curl(url("/"), {"--tlsv1.3"});
  EXPECT_EQ(tls13.status, 404);
}

TEST_F(DownloadServerTest, StreamsTenMegabytesChunkByChunk) {
  start();
  const fs::path file = random_file("R-10.tar", kTenMegabytes);
  Fetched f = curl(link(authority_.add_link(file)));
  EXPECT_EQ(f.status, 200);
  EXPECT_EQ(file_sha256(f.body), file_sha256(file));
  auto calls = authority_.wait_finished(1);
  ASSERT_EQ(calls.size(), 1u);
  EXPECT_TRUE(calls[0].complete);
  EXPECT_EQ(calls[0].bytes, kTenMegabytes);
  // One 64 KiB chunk at a time, and once more to see the end.
  EXPECT_EQ(authority_.reads().largest_request.load(), kBodyChunkBytes);
  EXPECT_EQ(authority_.reads().calls.load(), kTenMegabytes / kBodyChunkBytes + 1);
  EXPECT_EQ(authority_.reads().bytes.load(), kTenMegabytes);
}

TEST_F(DownloadServerTest, AClientThatGoesAwayMidBodyIsReportedIncomplete) {
  start();
  const fs::path file = random_file("R-11.tar", kTenMegabytes);
  Fetched f = curl(link(authority_.add_link(file)), {"--limit-rate", "100K", "--max-time", "2"});
  EXPECT_EQ(f.exit_code, 28) << "curl's operation timeout";
  auto calls = authority_.wait_finished(1);
  ASSERT_EQ(calls.size(), 1u);
  EXPECT_FALSE(calls[0].complete);
  EXPECT_GT(calls[0].bytes, 0u);
  EXPECT_LT(calls[0].bytes, kTenMegabytes);
  EXPECT_EQ(calls[0].reason, "the client closed the connection");
  EXPECT_EQ(server_->stats().incomplete, 1u);
}

TEST_F(DownloadServerTest, AStalledClientTimesOutAndNothingIsReadAhead) {
  DownloadServerOptions o = options();
  o.write_timeout = 500ms;
  start(o);
  const std::string token = authority_.add_link(random_file("R-12.tar", kTenMegabytes));
  RawTlsClient stalled(server_->port(), 4096);
  ASSERT_EQ(stalled.handshake(), 0u);
  ASSERT_TRUE(stalled.send("GET /download/" + token + " HTTP/1.1\r\nHost: h\r\n\r\n"));
  auto calls = authority_.wait_finished(1);
  ASSERT_EQ(calls.size(), 1u);
  EXPECT_FALSE(calls[0].complete);
  EXPECT_EQ(calls[0].reason, "write timeout: the client took nothing for 500 ms");
  EXPECT_LT(calls[0].bytes, kTenMegabytes);
  // Backpressure: what was read from the store is what the socket took plus the one chunk
  // that could not be written.
  EXPECT_LE(authority_.reads().bytes.load(), calls[0].bytes + kBodyChunkBytes);
}

TEST_F(DownloadServerTest, ASourceShorterThanItsSizeIsNoCompleteDownload) {
  start();
  const fs::path file = random_file("R-13.tar", 100000);
  Fetched f = curl(link(authority_.add_link(file, 200000)));
  EXPECT_EQ(f.exit_code, 18) << "curl: transfer closed with outstanding read data";
  auto calls = authority_.wait_finished(1);
  ASSERT_EQ(calls.size(), 1u);
  EXPECT_FALSE(calls[0].complete);
  EXPECT_EQ(calls[0].bytes, 100000u);
  EXPECT_EQ(calls[0].reason, "the release ended after 100000 of 200000 bytes");

  const std::string longer = authority_.add_link(file, 50000);
  Fetched cut = curl(link(longer));
  EXPECT_EQ(cut.status, 200);
  calls = authority_.wait_finished(2);
  ASSERT_EQ(calls.size(), 2u);
  EXPECT_FALSE(calls[1].complete);
  EXPECT_EQ(calls[1].reason, "the release holds more bytes than its recorded size");
}

TEST_F(DownloadServerTest, StopReportsDownloadsInProgressBeforeItReturns) {
  start();
  const std::string token = authority_.add_link(random_file("R-14.tar", kTenMegabytes));
  enclave::testing::Child slow(
      {"curl", "--silent", "--cacert", (dir_ / "ca.crt").string(), "--output",
       (dir_ / "slow").string(), "--limit-rate", "50K", link(token)},
      {}, dir_.path());
  ASSERT_TRUE(eventually([&] { return authority_.reads().calls.load() >= 2; }))
      << "the download did not start";
  server_->stop();
  auto calls = authority_.wait_finished(1, 0ms);
  ASSERT_EQ(calls.size(), 1u);
  EXPECT_FALSE(calls[0].complete);
  EXPECT_EQ(calls[0].reason, "the download server stopped");
  const std::uint64_t reads = authority_.reads().calls.load();
  std::this_thread::sleep_for(300ms);
  EXPECT_EQ(authority_.reads().calls.load(), reads) << "the grant was read after stop()";
  EXPECT_EQ(authority_.wait_finished(2, 0ms).size(), 1u);
  EXPECT_TRUE(eventually([&] { return server_->stats().open_connections == 0; }))
      << "the connection was not closed";
}

TEST_F(DownloadServerTest, RefusesConnectionsAboveTheLimitBeforeTls) {
  DownloadServerOptions o = options();
  o.max_connections = 1;
  start(o);
  RawTlsClient first(server_->port());
  ASSERT_TRUE(first.connected());
  ASSERT_TRUE(eventually([&] { return server_->stats().connections_accepted == 1; }));
  RawTlsClient second(server_->port());
  ASSERT_TRUE(second.connected());
  EXPECT_TRUE(second.closed_by_server());
  EXPECT_EQ(server_->stats().connections_refused, 1u);
  // Closed first, reported after.
  EXPECT_TRUE(eventually([&] { return !authority_.rejections().empty(); }));
  EXPECT_EQ(authority_.rejections(),
            std::vector<std::string>{"127.0.0.1 max_connections (1) open"});
  EXPECT_EQ(server_->stats().open_connections, 1u);
  ::shutdown(first.fd(), SHUT_RDWR);
  ASSERT_TRUE(eventually([&] { return server_->stats().open_connections == 0; }));
  EXPECT_EQ(curl(url("/")).status, 404);
}

TEST_F(DownloadServerTest, StartNamesTheFileItCannotUse) {
  fs::permissions(private_key(), fs::perms::group_read | fs::perms::others_read,
                  fs::perm_options::add);
  DownloadServer open_key(io_, options(), authority_);
  auto started = open_key.start();
  ASSERT_FALSE(started);
  EXPECT_EQ(started.error().code, Errc::kPermission);
  EXPECT_NE(started.error().message.find(private_key().string()), std::string::npos);

  DownloadServerOptions missing = options();
  missing.certificate = dir_ / "absent.crt";
  DownloadServer no_certificate(io_, missing, authority_);
  started = no_certificate.start();
  ASSERT_FALSE(started);
  EXPECT_NE(started.error().message.find("absent.crt"), std::string::npos);

  DownloadServerOptions other = options();
  auto ca = x509::CertificateAuthority::load(dir_ / "ca.crt", dir_ / "ca.key");
  ASSERT_TRUE(ca);
  auto stranger = ca->issue({x509::Purpose::kServer, "other", {"other"}, {}, 30});
  ASSERT_TRUE(stranger);
  ASSERT_TRUE(write_file_atomically(dir_ / "other.key", stranger->private_key_pem, 0600));
  fs::permissions(private_key(), fs::perms::group_read | fs::perms::others_read,
                  fs::perm_options::remove);
  other.private_key = dir_ / "other.key";
  DownloadServer mismatched(io_, other, authority_);
  started = mismatched.start();
  ASSERT_FALSE(started);
  EXPECT_NE(started.error().message.find("other.key"), std::string::npos);
}

}  // namespace
}  // namespace enclave::exitcontrol::download
