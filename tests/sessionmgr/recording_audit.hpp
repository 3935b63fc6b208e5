// An AuditSink that records events in memory, for the session manager's unit tests; healthy()
// and append_sync() can be made to fail.
#pragma once

#include <atomic>
#include <mutex>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "sessionmgr/service/session_service.hpp"

namespace enclave::sessionmgr {

class FakeAudit : public AuditSink {
 public:
  bool healthy() const override { return healthy_; }
  bool append(nlohmann::json event) override {
    std::lock_guard lock(mu_);
    events_.push_back(std::move(event));
    return true;
  }
  Status append_sync(nlohmann::json event) override {
    if (!accept_sync_) return fail(Errc::kUnavailable, "auditd down");
    append(std::move(event));
    return {};
  }
  std::vector<nlohmann::json> of_type(const std::string& type) {
    std::lock_guard lock(mu_);
    std::vector<nlohmann::json> out;
    for (const auto& e : events_) {
      if (e["type"] == type) out.push_back(e);
    }
    return out;
  }
  std::vector<std::string> reasons(const std::string& type) {
    std::vector<std::string> out;
    for (const auto& e : of_type(type)) out.push_back(e["details"]["reason"].get<std::string>());
    return out;
  }
  std::atomic<bool> healthy_{true};
  std::atomic<bool> accept_sync_{true};

 private:
  std::mutex mu_;
  std::vector<nlohmann::json> events_;
};

}  // namespace enclave::sessionmgr
