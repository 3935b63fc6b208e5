// The registry as the export service sees it: enclave-sessiond's registry database opened read
// only (users, roles, projects and their members). Nothing here can change the registry.
#pragma once

#include <filesystem>
#include <memory>
#include <mutex>

#include "common/store.hpp"
#include "exitcontrol/service/export_service.hpp"

namespace enclave::exitcontrol {

class SqliteRegistryView : public RegistryView {
 public:
  // kNotFound when the registry does not exist yet (enclave-sessiond creates it).
  static Expected<std::unique_ptr<SqliteRegistryView>> open(const std::filesystem::path& path);

  Expected<UserRights> rights(const std::string& user) override;
  Expected<std::vector<std::string>> projects_granting(const std::string& user,
                                                       const std::string& compartment) override;

 private:
  explicit SqliteRegistryView(store::Database db) : db_(std::move(db)) {}
  std::mutex mu_;  // one connection, one thread at a time
  store::Database db_;
};

}  // namespace enclave::exitcontrol
