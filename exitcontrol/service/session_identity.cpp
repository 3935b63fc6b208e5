#include "exitcontrol/service/session_identity.hpp"

#include <memory>
#include <mutex>
#include <optional>

#include "common/ipc/client.hpp"

namespace enclave::exitcontrol {

Expected<SessionIdentity> session_identity_from_json(const nlohmann::json& answer) {
  SessionIdentity id;
  auto text = [&](const char* key, std::string& out) -> Status {
    auto it = answer.find(key);
    if (it == answer.end() || !it->is_string()) {
      return fail(Errc::kInternal,
                  std::string("session.identify answered without \"") + key + "\"");
    }
    out = it->get<std::string>();
    return {};
  };
  ENCLAVE_TRY(text("session_id", id.session_id));
  ENCLAVE_TRY(text("user", id.user));
  ENCLAVE_TRY(text("device", id.device));
  ENCLAVE_TRY(text("compartment", id.compartment));
  ENCLAVE_TRY(text("tier", id.tier));
  ENCLAVE_TRY(text("state", id.state));
  ENCLAVE_TRY(text("outbox", id.outbox));
  auto e = answer.find("export");
  if (e == answer.end() || !e->is_object() || !e->contains("profile") ||
      !(*e)["profile"].is_string() || !e->contains("stewards") ||
      !(*e)["stewards"].is_number_integer()) {
    return fail(Errc::kInternal, "session.identify answered without \"export\" settings");
  }
  id.profile = (*e)["profile"].get<std::string>();
  id.stewards = (*e)["stewards"].get<int>();
  if (id.stewards < 1 || id.stewards > 2) {
    return fail(Errc::kInternal,
                "session.identify answered a steward count of " + std::to_string(id.stewards));
  }
  return id;
}

IdentifySession sessiond_identify(std::filesystem::path sessiond_socket) {
  struct Connection {
    std::mutex mu;
    std::optional<ipc::Client> client;
  };
  auto shared = std::make_shared<Connection>();
  return [shared, socket = std::move(sessiond_socket)](
             const std::string& token) -> Expected<SessionIdentity> {
    std::lock_guard lock(shared->mu);
    for (int attempt = 0; attempt < 2; ++attempt) {
      if (!shared->client) {
        auto c = ipc::Client::connect(socket);
        if (!c) return error_of(c);
        shared->client.emplace(std::move(c).value());
      }
      auto answer =
          shared->client->call("session.identify", {{"token", token}}, std::chrono::seconds(10));
      if (answer) return session_identity_from_json(*answer);
      // A restarted sessiond closed the old connection: once more on a new one.
      if (answer.error().code != Errc::kUnavailable) return error_of(answer);
      shared->client.reset();
    }
    return fail(Errc::kUnavailable, "enclave-sessiond at " + socket.string() + " did not answer");
  };
}

}  // namespace enclave::exitcontrol
