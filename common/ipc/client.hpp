// A blocking client for the framed protocol, for CLIs and for services that call another
// service. One connection; call() for one request at a time, or send()/receive() to pipeline
// (responses come back matched by id). Not thread-safe: one client per thread.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <string_view>

#include <nlohmann/json.hpp>

#include "common/ipc/frame.hpp"
#include "common/result.hpp"

namespace enclave::ipc {

class Client {
 public:
  // kUnavailable when nothing listens at the path; kPermission when the socket refuses us.
  static Expected<Client> connect(const std::filesystem::path& socket_path,
                                  std::chrono::milliseconds timeout = std::chrono::seconds(5));

  Client(Client&&) noexcept;
  Client& operator=(Client&&) noexcept;
  ~Client();

  // Sends one request and waits for its response. A failure response becomes its Error
  // (code and message from the server); a dead or silent peer is kUnavailable / kTimeout.
  Expected<nlohmann::json> call(std::string_view method, nlohmann::json params,
                                std::chrono::milliseconds timeout = std::chrono::seconds(30));

  // Pipelining: send returns the request id; receive returns the next response to arrive.
  Expected<std::uint64_t> send(std::string_view method, nlohmann::json params);
  Expected<Response> receive(std::chrono::milliseconds timeout = std::chrono::seconds(30));

 private:
  struct Impl;
  explicit Client(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace enclave::ipc
