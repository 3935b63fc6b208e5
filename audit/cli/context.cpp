#include <fstream>
#include <sstream>

#include "audit/cli/commands.hpp"

namespace enclave::audit::cli {

Expected<DaemonConfig> Context::config() const {
  auto policy = enclave::cli::load_policy(common, "audit.toml");
  if (!policy) return error_of(policy);
  auto config = load_daemon_config(*policy, common.state_dir);
  if (!config) return error_of(config);
  if (!database.empty()) config->database = database;
  if (!verifier_key.empty()) config->verifier_key = verifier_key;
  return config;
}

Expected<LogStore> Context::open_store() const {
  auto c = config();
  if (!c) return error_of(c);
  store::OpenOptions options;
  options.access = store::Access::kReadOnly;
  options.create = false;
  return LogStore::open(c->database, options);
}

Expected<note::Verifier> Context::verifier() const {
  auto c = config();
  if (!c) return error_of(c);
  std::ifstream in(c->verifier_key);
  if (!in) {
    return fail(Errc::kNotFound, "verifier key " + c->verifier_key.string() +
                                     ": cannot read it (pin the log's public key with --key)");
  }
  std::string text;
  std::getline(in, text);
  auto v = note::Verifier::parse(text);
  if (!v) {
    return fail(Errc::kInvalidArgument,
                "verifier key " + c->verifier_key.string() + ": " + v.error().describe());
  }
  return std::move(v).value();
}

void Filters::add_to(CLI::App& command) {
  command.add_option("--user", user, "actor (user or service name)");
  command.add_option("--site", site, "remote site");
  command.add_option("--device", device, "device id");
  command.add_option("--session", session, "session id");
  command.add_option("--type", type, "event type, e.g. login.attempt");
  command.add_option("--outcome", outcome, "success, failure, refused, error or info");
  command.add_option("--since", since, "from this time (YYYY-MM-DD or RFC 3339), inclusive");
  command.add_option("--until", until, "to this time, exclusive");
  command.add_option("--limit", limit, "at most this many events");
}

Expected<Query> Filters::to_query() const {
  Query q;
  q.actor = user;
  q.site = site;
  q.device = device;
  q.session = session;
  q.type = type;
  q.outcome = outcome;
  q.limit = limit;
  for (auto [text, out] : {std::pair{&since, &q.since_us}, std::pair{&until, &q.until_us}}) {
    if (text->empty()) continue;
    *out = parse_time_us(*text);
    if (!*out) {
      return fail(Errc::kInvalidArgument,
                  "cannot read the time \"" + *text + "\" (use YYYY-MM-DD or RFC 3339)");
    }
  }
  return q;
}

}  // namespace enclave::audit::cli
