#include "exitcontrol/service/registry_view.hpp"

#include <chrono>

#include "sessionmgr/service/registry_store.hpp"

namespace enclave::exitcontrol {

namespace registry = sessionmgr::registry;

Expected<std::unique_ptr<SqliteRegistryView>> SqliteRegistryView::open(
    const std::filesystem::path& path) {
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) {
    return fail(Errc::kNotFound,
                "registry " + path.string() + " does not exist yet (enclave-sessiond creates it)");
  }
  auto db = registry::open_registry_database(path, store::Access::kReadOnly);
  if (!db) return error_of(db);
  return std::unique_ptr<SqliteRegistryView>(new SqliteRegistryView(std::move(db).value()));
}

Expected<UserRights> SqliteRegistryView::rights(const std::string& user) {
  std::lock_guard lock(mu_);
  UserRights out;
  if (!registry::is_user_id(user)) return out;  // a name the registry cannot hold: nobody
  auto found = registry::find_user(db_, user);
  if (!found) return error_of(found);
  if (!*found) return out;
  out.exists = true;
  out.disabled = (*found)->disabled;
  out.steward = (*found)->has(registry::Role::kSteward);
  out.operator_role = (*found)->has(registry::Role::kOperator);
  auto projects = registry::list_projects(db_);
  if (!projects) return error_of(projects);
  const auto now = std::chrono::system_clock::now();
  for (const auto& p : *projects) {
    if (p.valid_at(now) && p.members.count(user)) out.projects.push_back(p.id);
  }
  return out;
}

Expected<std::vector<std::string>> SqliteRegistryView::projects_granting(
    const std::string& user, const std::string& compartment) {
  std::lock_guard lock(mu_);
  std::vector<std::string> out;
  if (!registry::is_user_id(user)) return out;
  auto found = registry::find_user(db_, user);
  if (!found) return error_of(found);
  if (!*found || (*found)->disabled || !(*found)->has(registry::Role::kAnalyst)) return out;
  auto projects = registry::list_projects(db_);
  if (!projects) return error_of(projects);
  const auto now = std::chrono::system_clock::now();
  for (const auto& p : *projects) {
    if (p.valid_at(now) && p.members.count(user) && p.compartments.count(compartment)) {
      out.push_back(p.id);
    }
  }
  return out;
}

}  // namespace enclave::exitcontrol
