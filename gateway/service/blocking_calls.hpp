// Calls to another service's Unix socket (common/ipc, or any blocking call such as strongSwan's
// VICI) made from the gateway's coroutines without blocking an I/O thread: each call runs on a
// small worker pool and its completion is dispatched back to the caller's executor (its
// strand).
#pragma once

#include <chrono>
#include <filesystem>
#include <string>
#include <utility>

#include <boost/asio/associated_executor.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/thread_pool.hpp>
#include <nlohmann/json.hpp>

#include "common/ipc/client.hpp"
#include "common/result.hpp"

namespace enclave::gateway {

class ServiceCaller {
 public:
  ServiceCaller(std::filesystem::path socket, unsigned workers)
      : socket_(std::move(socket)), pool_(workers) {}
  ~ServiceCaller() { pool_.join(); }

  // Runs fn() (a blocking call returning R) on the worker pool; completion signature
  // void(R), dispatched to the token's executor.
  template <class R, class F, class Token>
  auto async_run(F fn, Token&& token) {
    return boost::asio::async_initiate<Token, void(R)>(
        [this](auto handler, F fn) {
          auto executor = boost::asio::get_associated_executor(handler);
          boost::asio::post(
              pool_, [handler = std::move(handler), executor, fn = std::move(fn)]() mutable {
                R result = fn();
                boost::asio::post(
                    executor, [handler = std::move(handler), result = std::move(result)]() mutable {
                      handler(std::move(result));
                    });
              });
        },
        token, std::move(fn));
  }

  // Completion signature: void(Expected<nlohmann::json>).
  template <class Token>
  auto async_call(std::string method, nlohmann::json params, std::chrono::milliseconds timeout,
                  Token&& token) {
    return async_run<Expected<nlohmann::json>>(
        [this, method = std::move(method), params = std::move(params), timeout]() mutable {
          return call(method, std::move(params), timeout);
        },
        std::forward<Token>(token));
  }

  // The same, blocking (for shutdown paths and tests).
  Expected<nlohmann::json> call(const std::string& method, nlohmann::json params,
                                std::chrono::milliseconds timeout) {
    auto client = ipc::Client::connect(socket_, timeout);
    if (!client) return error_of(client);
    return client->call(method, std::move(params), timeout);
  }

  // Fire and forget: the result is logged by the caller-supplied callback on the pool.
  template <class OnDone>
  void post_call(std::string method, nlohmann::json params, OnDone on_done) {
    boost::asio::post(pool_, [this, method = std::move(method), params = std::move(params),
                              on_done = std::move(on_done)]() mutable {
      on_done(call(method, std::move(params), std::chrono::seconds(5)));
    });
  }

  const std::filesystem::path& socket() const { return socket_; }

 private:
  std::filesystem::path socket_;
  boost::asio::thread_pool pool_;
};

}  // namespace enclave::gateway
