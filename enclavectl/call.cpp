#include <iostream>

#include "common/ipc/client.hpp"
#include "enclavectl/commands.hpp"

namespace enclave::ctl {

int call_service(Context& ctx, const std::filesystem::path& socket, const std::string& method,
                 nlohmann::json params, std::chrono::milliseconds timeout,
                 const std::function<void(const nlohmann::json&)>& show) {
  auto client = ipc::Client::connect(socket);
  if (!client) return cli::report_error(client.error());
  auto result = client->call(method, std::move(params), timeout);
  if (!result) return cli::report_error(result.error());
  if (ctx.json) {
    std::cout << result->dump(2) << "\n";
  } else {
    show(*result);
  }
  return 0;
}

}  // namespace enclave::ctl
