// enclavectl audit status | checkpoint | archive | append
#include <iostream>

#include "audit/service/daemon.hpp"
#include "enclavectl/commands.hpp"

namespace enclave::ctl {

namespace {

struct AppendOptions {
  std::string type, outcome = "info", actor, actor_kind = "user", site, device, session, object,
                    details = "{}";
};

// Calls one method of enclave-auditd; prints the result as JSON or through `show`.
int call_auditd(Context& ctx, const std::string& method, nlohmann::json params,
                const std::function<void(const nlohmann::json&)>& show) {
  auto policy = cli::load_policy(ctx.common, "audit.toml");
  if (!policy) return cli::report_error(policy.error());
  auto config = audit::load_daemon_config(*policy, ctx.common.state_dir);
  if (!config) return cli::report_error(config.error());
  return call_service(ctx, config->socket, method, std::move(params), std::chrono::minutes(10),
                      show);
}

std::string text(const nlohmann::json& v) {
  return v.is_string() ? v.get<std::string>() : v.dump();
}

}  // namespace

void add_audit_commands(CLI::App& app, Context& ctx) {
  auto* audit = app.add_subcommand("audit", "the audit daemon (enclave-auditd)");
  audit->require_subcommand(1);

  audit->add_subcommand("status", "sizes, queue, off-box sinks and counters")->callback([&ctx] {
    ctx.exit_code = call_auditd(ctx, "audit.status", nlohmann::json::object(), [](const auto& r) {
      cli::TextTable table({"FIELD", "VALUE"});
      for (const auto& [k, v] : r.items()) table.add({k, text(v)});
      table.print(std::cout);
    });
  });

  audit->add_subcommand("checkpoint", "seal every entry now")->callback([&ctx] {
    ctx.exit_code =
        call_auditd(ctx, "audit.checkpoint", nlohmann::json::object(), [](const auto& r) {
          std::cout << "sealed " << text(r["size"]) << " entries:\n" << text(r["note"]);
        });
  });

  auto before = std::make_shared<std::string>();
  auto* archive = audit->add_subcommand(
      "archive", "move sealed entries older than a date to a sealed archive file");
  archive->add_option("--before", *before, "YYYY-MM-DD or RFC 3339")->required();
  archive->callback([&ctx, before] {
    ctx.exit_code = call_auditd(ctx, "audit.archive", {{"before", *before}}, [](const auto& r) {
      std::cout << "archived entries " << text(r["first"]) << " to "
                << r["end"].template get<std::uint64_t>() - 1 << " (" << text(r["entries"])
                << ") to " << text(r["file"]) << "\nsha256 " << text(r["sha256"]) << "\n";
    });
  });

  auto a = std::make_shared<AppendOptions>();
  auto* append = audit->add_subcommand(
      "append", "append one event by hand (operators' notes, drills); it is recorded as yours");
  append->add_option("--type", a->type, "dotted type, e.g. operator.note")->required();
  append->add_option("--outcome", a->outcome, "success, failure, refused, error or info")
      ->capture_default_str();
  append->add_option("--actor", a->actor, "who the event is about");
  append->add_option("--actor-kind", a->actor_kind, "user or service")->capture_default_str();
  append->add_option("--site", a->site, "remote site");
  append->add_option("--device", a->device, "device id");
  append->add_option("--session", a->session, "session id");
  append->add_option("--object", a->object, "what it concerns");
  append->add_option("--details", a->details, "a JSON object")->capture_default_str();
  append->callback([&ctx, a] {
    auto details = nlohmann::json::parse(a->details, nullptr, false);
    if (details.is_discarded()) {
      ctx.exit_code = cli::report_error({Errc::kInvalidArgument, "--details is not JSON"});
      return;
    }
    nlohmann::json event = {{"type", a->type},       {"outcome", a->outcome},
                            {"actor", a->actor},     {"actor_kind", a->actor_kind},
                            {"site", a->site},       {"device", a->device},
                            {"session", a->session}, {"object", a->object},
                            {"details", details}};
    ctx.exit_code = call_auditd(ctx, "audit.append", event, [](const auto& r) {
      std::cout << "appended as entry " << text(r["index"]) << " at " << text(r["time"]) << "\n";
    });
  });
}

}  // namespace enclave::ctl
