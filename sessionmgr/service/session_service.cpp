#include "sessionmgr/service/session_service.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <array>
#include <cstdlib>
#include <variant>

#include "common/bytes.hpp"
#include "common/log.hpp"
#include "sessionmgr/service/outbox.hpp"

namespace enclave::sessionmgr {

namespace {

// An issued session with no ticket yet is still being prepared (its desktop starting); one
// left like that this long lost its issuer and is ended.
constexpr auto kPreparingLimit = std::chrono::minutes(5);
// Tickets are forgotten this long after they expired.
constexpr auto kTicketRetention = std::chrono::hours(1);

// Text from a request that may go into an audit event (which refuses control characters and
// long fields): kept when clean, else left out.
std::string clean(const std::string& s) {
  if (s.size() > 128 || !is_valid_utf8(s)) return "";
  for (char c : s) {
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) return "";
  }
  return s;
}

bool is_local(const Compartment& c) {
  return std::holds_alternative<LocalPool>(c.pool);
}

}  // namespace

struct SessionService::Release {
  Session session;
  std::unique_ptr<DesktopHandle> local;
  const StaticHost* revoke = nullptr;  // a per-session host whose password is rotated
  bool tell_gateway = false;
  nlohmann::json bytes = nlohmann::json::object();
  std::string by;  // the operator who ended it
};

SessionService::SessionService(SessionPolicy policy, ServiceDeps deps, SessionStore store)
    : policy_(std::move(policy)), deps_(std::move(deps)), store_(std::move(store)) {}

SessionService::~SessionService() {
  std::lock_guard lock(mu_);
  local_.clear();
}

Expected<std::unique_ptr<SessionService>> SessionService::open(SessionPolicy policy,
                                                               ServiceDeps deps) {
  if (!deps.audit || !deps.start_local || !deps.probe || !deps.provision) {
    return fail(Errc::kInternal, "SessionService needs audit, start_local, probe and provision");
  }
  if (!deps.random) deps.random = openssl_random;
  if (!deps.clock) deps.clock = [] { return std::chrono::system_clock::now(); };
  auto store = SessionStore::open(policy.sessiond.database);
  if (!store) return error_of(store);
  std::unique_ptr<SessionService> s(
      new SessionService(std::move(policy), std::move(deps), std::move(store).value()));

  std::vector<std::string> static_ids;
  for (const auto& [name, c] : s->policy_.compartments) {
    const auto* hosts = std::get_if<std::vector<StaticHost>>(&c.pool);
    if (!hosts) continue;
    for (const auto& h : *hosts) {
      static_ids.push_back(h.id);
      s->hosts_[h.id] = HostState{};
      if (h.credentials == CredentialSource::kFixed) {
        auto creds = read_fixed_credentials(h.credentials_file);
        if (!creds) {
          auto e = creds.error();
          e.message = "compartment " + name + ", host " + h.host + ": " + e.message;
          return Unexpected<Error>{e};
        }
        s->fixed_.emplace(h.id, std::move(creds).value());
      }
    }
  }

  std::vector<Release> leftovers;
  {
    std::lock_guard lock(s->mu_);
    ENCLAVE_TRY(s->store_.delete_desktops_not_in("static", static_ids));
    ENCLAVE_TRY(s->store_.delete_desktops_not_in("local", {}));
    for (const auto& [name, c] : s->policy_.compartments) {
      const auto* hosts = std::get_if<std::vector<StaticHost>>(&c.pool);
      if (!hosts) continue;
      for (const auto& h : *hosts) {
        DesktopRow row{h.id,       name,  "static",     h.host,           h.port,
                       h.capacity, false, std::nullopt, "not checked yet"};
        ENCLAVE_TRY(s->store_.upsert_desktop(row));
      }
    }
    auto open = s->store_.open_sessions();
    if (!open) return error_of(open);
    for (auto& session : *open) {
      auto r = s->end_locked(session, end_reason::kRestart, true);
      if (!r) return error_of(r);
      leftovers.push_back(std::move(r).value());
    }
  }
  if (!leftovers.empty()) {
    spdlog::warn("ending {} session(s) left open by an earlier run", leftovers.size());
  }
  for (auto& r : leftovers) s->finish(std::move(r));
  return s;
}

nlohmann::json SessionService::event(const std::string& type, const std::string& outcome,
                                     const Session* s, nlohmann::json details) const {
  nlohmann::json e = {{"type", type}, {"outcome", outcome}, {"actor_kind", "user"}};
  if (s) {
    e["actor"] = s->user;
    e["device"] = s->device;
    e["session"] = s->id;
    e["object"] = s->compartment;
    if (!details.contains("desktop")) details["desktop"] = s->desktop_id;
  }
  e["details"] = std::move(details);
  return e;
}

void SessionService::audit(nlohmann::json event) {
  if (!deps_.audit->append(event)) {
    spdlog::error("audit queue full: event {} not recorded", event.value("type", ""));
  }
}

const StaticHost* SessionService::static_host(const std::string& desktop_id) const {
  for (const auto& [name, c] : policy_.compartments) {
    const auto* hosts = std::get_if<std::vector<StaticHost>>(&c.pool);
    if (!hosts) continue;
    for (const auto& h : *hosts) {
      if (h.id == desktop_id) return &h;
    }
  }
  return nullptr;
}

bool SessionService::desktop_healthy_locked(const Session& session) const {
  if (auto it = local_.find(session.id); it != local_.end()) return it->second->alive();
  auto it = hosts_.find(session.desktop_id);
  return it != hosts_.end() && it->second.healthy;
}

Expected<std::string> SessionService::pick_static_locked(const Compartment& compartment,
                                                         const std::vector<Session>& open) const {
  const auto& hosts = std::get<std::vector<StaticHost>>(compartment.pool);
  const StaticHost* best = nullptr;
  int best_load = 0;
  int unhealthy = 0;
  for (const auto& h : hosts) {
    auto state = hosts_.find(h.id);
    if (state == hosts_.end() || !state->second.healthy) {
      unhealthy++;
      continue;
    }
    int load = static_cast<int>(std::count_if(open.begin(), open.end(), [&](const Session& s) {
      return s.desktop_id == h.id && s.state != SessionState::kEnded;
    }));
    if (load >= h.capacity) continue;
    if (!best || load < best_load) {
      best = &h;
      best_load = load;
    }
  }
  if (!best) {
    return fail(Errc::kUnavailable, "no desktop free in compartment " + compartment.name + " (" +
                                        std::to_string(hosts.size()) + " host(s), " +
                                        std::to_string(unhealthy) + " unhealthy)");
  }
  return best->id;
}

nlohmann::json SessionService::desktop_json_locked(const Session& session) const {
  nlohmann::json d = {{"id", session.desktop_id}};
  if (auto it = local_.find(session.id); it != local_.end()) {
    const auto& info = it->second->info();
    d["host"] = info.host;
    d["port"] = info.port;
    d["server_name"] = info.server_name;
    d["pin_sha256"] = info.pin_sha256;
  } else if (const StaticHost* h = static_host(session.desktop_id)) {
    d["host"] = h->host;
    d["port"] = h->port;
    d["server_name"] = h->server_name;
    if (!h->pin_sha256.empty()) d["pin_sha256"] = h->pin_sha256;
    if (!h->ca_file.empty()) d["ca_file"] = h->ca_file.string();
  }
  return d;
}

Expected<SessionService::Release> SessionService::end_locked(Session& session,
                                                             const std::string& reason,
                                                             bool tell_gateway) {
  const TimePoint now = deps_.clock();
  Release r;
  if (!end_session(session, now, reason))
    return fail(Errc::kConflict, "session " + session.id + " has already ended");
  ENCLAVE_TRY(store_.update_session(session));
  ENCLAVE_TRY(store_.expire_tickets(session.id, now));
  auto bytes = store_.bytes(session.id);
  if (bytes) r.bytes = std::move(bytes).value();
  if (auto it = local_.find(session.id); it != local_.end()) {
    r.local = std::move(it->second);
    local_.erase(it);
    ENCLAVE_TRY(store_.delete_desktop(session.desktop_id));
  }
  credentials_.erase(session.id);
  if (const StaticHost* h = static_host(session.desktop_id);
      h && h->credentials == CredentialSource::kPerSession) {
    r.revoke = h;
  }
  r.tell_gateway = tell_gateway;
  r.session = session;
  return r;
}

std::string SessionService::finish(Release r) {
  const Session& s = r.session;
  std::string gateway = "not told";
  if (r.tell_gateway && deps_.end_on_gateway) {
    auto found = deps_.end_on_gateway(s.id, s.end_reason);
    if (!found) {
      gateway = found.error().code == Errc::kUnavailable
                    ? "gateway not running (" + found.error().message + ")"
                    : "gateway error: " + found.error().describe();
    } else {
      gateway = *found ? "cut at the gateway" : "no connection at the gateway";
    }
  }
  if (r.local) {
    const std::string host = r.local->info().host + ":" + std::to_string(r.local->info().port);
    r.local.reset();  // stops its processes
    audit(event("desktop.stopped", "info", &s, {{"desktop", s.desktop_id}, {"host", host}}));
  }
  if (r.revoke) {
    std::string password = random_password(deps_.random);
    auto rotated = deps_.provision(*r.revoke, r.revoke->account, password);
    secure_wipe(password.data(), password.size());
    if (!rotated) {
      spdlog::error("could not revoke the session password on {}: {}", r.revoke->id,
                    rotated.error().describe());
    }
    audit(event("desktop.revoked", rotated ? "success" : "error", &s,
                {{"desktop", r.revoke->id},
                 {"account", r.revoke->account},
                 {"error", rotated ? "" : rotated.error().describe()}}));
  }
  nlohmann::json details = {{"reason", s.end_reason}, {"bytes", r.bytes}, {"gateway", gateway}};
  if (!r.by.empty()) details["by"] = r.by;
  audit(event("session.ended", "info", &s, std::move(details)));
  spdlog::info("session {} of {} ended: {} ({})", s.id, s.user, s.end_reason, gateway);
  return gateway;
}

Expected<nlohmann::json> SessionService::issue(const IssueRequest& request, const std::string& by) {
  auto denied = [&](const Error& e) {
    audit({{"type", "ticket.denied"},
           {"outcome", "refused"},
           {"actor_kind", "user"},
           {"actor", clean(request.user)},
           {"device", clean(request.device)},
           {"object", clean(request.compartment)},
           {"details", {{"reason", e.message}, {"source", clean(request.source)}, {"by", by}}}});
    return Unexpected<Error>{e};
  };

  IssuePlan plan;
  Session session;
  const Compartment* compartment = nullptr;
  // A session of this user whose desktop died is ended (after the lock is released).
  struct FinishLater {
    SessionService* service;
    std::optional<Release> release;
    ~FinishLater() {
      if (release) service->finish(std::move(*release));
    }
  } stale{this, std::nullopt};
  {
    std::lock_guard lock(mu_);
    const TimePoint now = deps_.clock();
    if (!deps_.audit->healthy()) {
      return fail(Errc::kUnavailable,
                  "the audit log is unavailable: no tickets are issued until it is back");
    }
    auto open = store_.open_sessions();
    if (!open) return error_of(open);
    auto planned = plan_issue(policy_, request, *open, now);
    if (planned && planned->kind != IssuePlan::Kind::kNew) {
      auto existing = store_.session(planned->session_id);
      if (!existing) return error_of(existing);
      if (*existing && !desktop_healthy_locked(**existing)) {
        auto ended = end_locked(**existing, end_reason::kDesktopFailed, true);
        if (!ended) return error_of(ended);
        stale.release = std::move(ended).value();
        open = store_.open_sessions();
        if (!open) return error_of(open);
        planned = plan_issue(policy_, request, *open, now);
      }
    }
    if (!planned) return denied(planned.error());
    plan = std::move(planned).value();
    compartment = &policy_.compartments.at(request.compartment);
    if (plan.kind == IssuePlan::Kind::kNew) {
      std::array<std::uint8_t, 8> id{};
      deps_.random(id);
      session.id = "s-" + hex_encode(id);
      session.user = request.user;
      session.device = request.device;
      session.source = *canonical_address(request.source);
      session.compartment = compartment->name;
      session.tier = compartment->tier;
      session.created_at = session.updated_at = now;
      if (is_local(*compartment)) {
        const auto& pool = std::get<LocalPool>(compartment->pool);
        auto in_use = std::count_if(open->begin(), open->end(), [&](const Session& s) {
          return s.compartment == compartment->name;
        });
        if (in_use >= pool.max_desktops) {
          return denied({Errc::kUnavailable, "all " + std::to_string(pool.max_desktops) +
                                                 " local desktops of compartment " +
                                                 compartment->name + " are in use"});
        }
        session.desktop_id = "local/" + session.id;
      } else {
        auto picked = pick_static_locked(*compartment, *open);
        if (!picked) return denied(picked.error());
        session.desktop_id = std::move(picked).value();
      }
      auto outbox = create_outbox(policy_.sessiond.outbox_root, session.id, deps_.random);
      if (!outbox) return denied(outbox.error());
      session.export_token_sha256 = outbox->token_sha256;
      if (auto inserted = store_.insert_session(session); !inserted) {  // reserves the desktop
        remove_outbox(outbox->dir);
        return error_of(inserted);
      }
    } else {
      auto existing = store_.session(plan.session_id);
      if (!existing) return error_of(existing);
      if (!*existing) return fail(Errc::kInternal, "session " + plan.session_id + " vanished");
      session = std::move(**existing);
    }
  }

  // A new session's desktop: started here, or its per-session password set on the host.
  std::unique_ptr<DesktopHandle> handle;
  std::optional<DesktopCredentials> credentials;
  auto abandon = [&](const std::string& reason, const Error& why) -> Unexpected<Error> {
    std::optional<Release> release;
    {
      std::lock_guard lock(mu_);
      auto current = store_.session(session.id);
      if (current && *current) {
        Session s = std::move(**current);
        if (auto r = end_locked(s, reason, false)) release = std::move(r).value();
      }
    }
    if (release) {
      if (handle) release->local = std::move(handle);
      finish(std::move(*release));
    }
    handle.reset();
    return denied(why);
  };
  if (plan.kind == IssuePlan::Kind::kNew) {
    if (is_local(*compartment)) {
      const auto& pool = std::get<LocalPool>(compartment->pool);
      LocalDesktopOptions options;
      options.kind =
          pool.kind == LocalKind::kXrdp ? LocalDesktopKind::kXrdp : LocalDesktopKind::kShadow;
      options.work_dir = policy_.sessiond.desktop_dir / session.id;
      options.account = "enc" + session.id.substr(2, 12);
      options.outbox = outbox_dir(policy_.sessiond.outbox_root, session.id);
      auto started = deps_.start_local(options);
      if (!started) {
        audit(event("desktop.failed", "error", &session, {{"error", started.error().describe()}}));
        return abandon(
            end_reason::kDesktopFailed,
            {Errc::kUnavailable, "the desktop did not start: " + started.error().message});
      }
      handle = std::move(started).value();
      audit(event("desktop.started", "info", &session,
                  {{"host", handle->info().host}, {"port", handle->info().port}}));
    } else if (const StaticHost* h = static_host(session.desktop_id);
               h && h->credentials == CredentialSource::kPerSession) {
      std::string password = random_password(deps_.random);
      auto set = deps_.provision(*h, h->account, password);
      if (!set) {
        secure_wipe(password.data(), password.size());
        audit(event("desktop.failed", "error", &session, {{"error", set.error().describe()}}));
        return abandon(end_reason::kDesktopFailed,
                       {Errc::kUnavailable, "could not set the session's password on " + h->host +
                                                ": " + set.error().message});
      }
      credentials.emplace("", h->account, std::move(password));
    }
  }

  std::string ticket = make_ticket(deps_.random);
  const std::string hash = ticket_hash(ticket);
  const TimePoint issued = deps_.clock();
  const TimePoint expires = issued + policy_.sessiond.ticket_ttl;
  const std::string source = *canonical_address(request.source);
  const char* kind = plan.kind == IssuePlan::Kind::kNew      ? "new"
                     : plan.kind == IssuePlan::Kind::kResume ? "resume"
                                                             : "replace";
  Session audited = session;
  audited.source = source;
  audited.device = request.device;
  auto recorded = deps_.audit->append_sync(event(
      "ticket.issued", "success", &audited,
      {{"by", by}, {"kind", kind}, {"source", source}, {"expires_at", format_rfc3339(expires)}}));
  if (!recorded) {
    secure_wipe(ticket.data(), ticket.size());
    Error e{Errc::kUnavailable,
            "the audit log did not record the ticket: " + recorded.error().message};
    if (plan.kind == IssuePlan::Kind::kNew) return abandon("audit log unavailable", e);
    return fail(e.code, e.message);
  }

  nlohmann::json result;
  {
    std::lock_guard lock(mu_);
    auto current = store_.session(session.id);
    if (!current) return error_of(current);
    if (!*current || (*current)->state == SessionState::kEnded) {
      return fail(Errc::kConflict, "session " + session.id + " ended while its ticket was issued");
    }
    Session s = std::move(**current);
    if (handle) {
      const auto& info = handle->info();
      local_[s.id] = std::move(handle);
      ENCLAVE_TRY(store_.upsert_desktop(
          {s.desktop_id, s.compartment, "local", info.host, info.port, 1, true, issued, ""}));
    }
    if (credentials) credentials_[s.id] = std::move(*credentials);
    ENCLAVE_TRY(store_.expire_tickets(s.id, issued));
    s.source = source;
    s.device = request.device;
    s.updated_at = issued;
    ENCLAVE_TRY(store_.update_session(s));
    ENCLAVE_TRY(store_.insert_ticket({hash, s.id, source, issued, expires, false}));
    auto desktop = desktop_json_locked(s);
    result = {{"ticket", ticket},
              {"expires_at", format_rfc3339(expires)},
              {"session_id", s.id},
              {"compartment", s.compartment},
              {"resumed", plan.kind == IssuePlan::Kind::kResume},
              {"gateway", policy_.sessiond.gateway_address},
              {"desktop",
               {{"id", s.desktop_id},
                {"host", desktop.value("host", "")},
                {"port", desktop.value("port", 0)}}}};
  }
  secure_wipe(ticket.data(), ticket.size());
  spdlog::info("ticket issued for {} in {} (session {}, {})", session.user, session.compartment,
               session.id, kind);
  return result;
}

Expected<nlohmann::json> SessionService::redeem(const std::string& ticket,
                                                const std::string& source, const std::string& by) {
  auto refuse = [&](Refusal r, const Session* s) {
    audit(event("ticket.refused", "refused", s,
                {{"reason", refusal_text(r)}, {"source", clean(source)}, {"by", by}}));
    return fail(Errc::kPermission, std::string("ticket refused: ") + refusal_text(r));
  };
  if (!is_ticket_syntax(ticket)) return refuse(Refusal::kUnknown, nullptr);
  const std::string hash = ticket_hash(ticket);

  std::lock_guard lock(mu_);
  const TimePoint now = deps_.clock();
  auto& db = store_.database();
  ENCLAVE_TRY(db.begin_immediate());
  struct Rollback {
    store::Database& db;
    bool armed = true;
    ~Rollback() {
      if (armed) (void)db.rollback();
    }
  } rollback{db};

  auto stored = store_.ticket(hash);
  if (!stored) return error_of(stored);
  std::optional<Session> session;
  std::optional<TicketRecord> record;
  if (*stored) {
    auto s = store_.session((*stored)->session_id);
    if (!s) return error_of(s);
    session = std::move(*s);
    if (session) {
      record = TicketRecord{session->id, (*stored)->source, (*stored)->expires_at, (*stored)->used,
                            session->state != SessionState::kEnded};
    }
  }
  const bool healthy = session && desktop_healthy_locked(*session);
  if (auto refusal = check_redemption(record, source, now, healthy)) {
    return refuse(*refusal, session ? &*session : nullptr);
  }
  if (!deps_.audit->healthy()) {
    return fail(Errc::kUnavailable,
                "the audit log is unavailable: no sessions start until it is back");
  }
  auto used = store_.mark_used(hash, now);
  if (!used) return error_of(used);
  if (!*used) return refuse(Refusal::kAlreadyUsed, &*session);
  auto resumed = on_redeemed(*session, now);
  if (!resumed) return error_of(resumed);
  ENCLAVE_TRY(store_.update_session(*session));
  ENCLAVE_TRY(db.commit());
  rollback.armed = false;

  const Tier& tier = policy_.tiers.at(session->tier);
  nlohmann::json credentials = {{"domain", ""}, {"user", ""}, {"password", ""}};
  if (auto it = local_.find(session->id); it != local_.end()) {
    const auto& info = it->second->info();
    credentials = {{"domain", info.domain}, {"user", info.user}, {"password", info.password}};
  } else if (auto c = credentials_.find(session->id); c != credentials_.end()) {
    credentials = {
        {"domain", c->second.domain}, {"user", c->second.user}, {"password", c->second.password}};
  } else if (auto f = fixed_.find(session->desktop_id); f != fixed_.end()) {
    credentials = {
        {"domain", f->second.domain}, {"user", f->second.user}, {"password", f->second.password}};
  }
  auto desktop = desktop_json_locked(*session);
  audit(event("ticket.redeemed", "success", &*session,
              {{"by", by}, {"source", session->source}, {"resumed", *resumed}}));
  return nlohmann::json{
      {"session_id", session->id},
      {"user", session->user},
      {"device", session->device},
      {"compartment", session->compartment},
      {"tier", session->tier},
      {"resumed", *resumed},
      {"desktop", desktop},
      {"credentials", credentials},
      {"channels", {{"static", tier.static_channels}, {"dynamic", tier.dynamic_channels}}},
      {"limits",
       {{"idle_s", tier.idle_timeout.count()},
        {"max_s", tier.max_session.count()},
        {"remaining_s", remaining_seconds(*session, tier, now)}}}};
}

Expected<nlohmann::json> SessionService::identify(const std::string& token, const std::string& by) {
  // The token itself is never logged; a refusal names only why.
  auto refuse = [&](Errc code, const std::string& reason) {
    audit({{"type", "session.identify"},
           {"outcome", "refused"},
           {"actor_kind", "user"},
           {"actor", by},
           {"object", "export token"},
           {"details", {{"reason", reason}}}});
    return fail(code, reason);
  };
  if (!is_ticket_syntax(token)) {
    return refuse(Errc::kInvalidArgument, "an export token is 64 hex digits");
  }
  std::optional<Session> session;
  {
    std::lock_guard lock(mu_);
    auto found = store_.session_by_export_token(ticket_hash(token));
    if (!found) return error_of(found);
    session = std::move(found).value();
  }
  if (!session) return refuse(Errc::kPermission, "unknown export token");
  auto tier = policy_.tiers.find(session->tier);
  if (tier == policy_.tiers.end()) {
    return fail(Errc::kNotFound, "session " + session->id + ": its tier " + session->tier +
                                     " is no longer in " + policy_.source);
  }
  std::error_code ec;
  const auto outbox =
      std::filesystem::absolute(outbox_dir(policy_.sessiond.outbox_root, session->id), ec);
  if (ec) return fail(Errc::kIo, "the outbox of session " + session->id + ": " + ec.message());
  return nlohmann::json{
      {"session_id", session->id},
      {"user", session->user},
      {"device", session->device},
      {"compartment", session->compartment},
      {"tier", session->tier},
      {"state", state_name(session->state)},
      {"outbox", outbox.lexically_normal().string()},
      {"export",
       {{"profile", tier->second.export_profile}, {"stewards", tier->second.export_stewards}}}};
}

Status SessionService::connected(const std::string& session_id) {
  std::lock_guard lock(mu_);
  auto s = store_.session(session_id);
  if (!s) return error_of(s);
  if (!*s) return fail(Errc::kNotFound, "no session " + session_id.substr(0, 64));
  ENCLAVE_TRY(on_connected(**s, deps_.clock()));
  ENCLAVE_TRY(store_.update_session(**s));
  audit(event((*s)->connects == 1 ? "session.started" : "session.resumed", "success", &**s,
              {{"source", (*s)->source}, {"connects", (*s)->connects}}));
  return {};
}

Status SessionService::disconnected(const std::string& session_id, const std::string& reason,
                                    bool ended, const nlohmann::json& bytes) {
  std::optional<Release> release;
  {
    std::lock_guard lock(mu_);
    auto s = store_.session(session_id);
    if (!s) return error_of(s);
    if (!*s) return fail(Errc::kNotFound, "no session " + session_id.substr(0, 64));
    Session& session = **s;
    // The gateway's count arrives after an operator's end too: keep it with the session.
    ENCLAVE_TRY(store_.add_bytes(session.id, bytes));
    if (session.state == SessionState::kEnded) return {};
    const Tier& tier = policy_.tiers.at(session.tier);
    if (session.state != SessionState::kActive) {
      return fail(Errc::kConflict, "session " + session.id + " is " + state_name(session.state));
    }
    if (ended || tier.grace.count() == 0) {
      auto r = end_locked(session, reason.empty() ? "disconnected" : reason, false);
      if (!r) return error_of(r);
      release = std::move(r).value();
    } else {
      ENCLAVE_TRY(on_disconnected(session, deps_.clock(), tier.grace, false, reason));
      ENCLAVE_TRY(store_.update_session(session));
      auto totals = store_.bytes(session.id);
      audit(event("session.disconnected", "info", &session,
                  {{"reason", reason},
                   {"bytes", totals ? *totals : nlohmann::json::object()},
                   {"grace_until", format_rfc3339(*session.grace_until)}}));
    }
  }
  if (release) finish(std::move(*release));
  return {};
}

Expected<nlohmann::json> SessionService::list(bool include_ended) {
  std::lock_guard lock(mu_);
  auto sessions = store_.sessions(include_ended);
  if (!sessions) return error_of(sessions);
  nlohmann::json out = nlohmann::json::array();
  for (const auto& s : *sessions) {
    nlohmann::json row = {{"session_id", s.id},
                          {"user", s.user},
                          {"device", s.device},
                          {"source", s.source},
                          {"compartment", s.compartment},
                          {"tier", s.tier},
                          {"desktop", s.desktop_id},
                          {"state", state_name(s.state)},
                          {"created_at", format_rfc3339(s.created_at)},
                          {"started_at", s.started_at ? format_rfc3339(*s.started_at) : ""},
                          {"updated_at", format_rfc3339(s.updated_at)}};
    if (s.grace_until) row["grace_until"] = format_rfc3339(*s.grace_until);
    if (s.ended_at) {
      row["ended_at"] = format_rfc3339(*s.ended_at);
      row["end_reason"] = s.end_reason;
    }
    out.push_back(std::move(row));
  }
  return nlohmann::json{{"sessions", out}};
}

Expected<nlohmann::json> SessionService::end(const std::string& session_id,
                                             const std::string& reason, const std::string& by) {
  Release release;
  {
    std::lock_guard lock(mu_);
    auto s = store_.session(session_id);
    if (!s) return error_of(s);
    if (!*s) return fail(Errc::kNotFound, "no session " + session_id.substr(0, 64));
    std::string why = end_reason::kOperator;
    if (!reason.empty()) why += ": " + reason;
    auto r = end_locked(**s, why, true);
    if (!r) return error_of(r);
    release = std::move(r).value();
    release.by = by;
  }
  auto gateway = finish(std::move(release));
  return nlohmann::json{{"ended", true}, {"gateway", gateway}};
}

void SessionService::tick() {
  std::vector<Release> releases;
  {
    std::lock_guard lock(mu_);
    const TimePoint now = deps_.clock();
    auto open = store_.open_sessions();
    if (!open) {
      spdlog::error("session timers: {}", open.error().describe());
      return;
    }
    for (auto& s : *open) {
      const auto tier = policy_.tiers.find(s.tier);
      std::optional<std::string> reason;
      bool tell_gateway = true;
      if (s.state == SessionState::kIssued && !s.started_at) {
        auto expiry = store_.unused_ticket_expiry(s.id);
        if (expiry &&
            ((*expiry && now >= **expiry) || (!*expiry && now - s.created_at >= kPreparingLimit))) {
          reason = end_reason::kTicketExpired;
          tell_gateway = false;
        }
      }
      if (!reason && tier != policy_.tiers.end()) reason = due_end(s, tier->second, now);
      if (!reason) continue;
      auto r = end_locked(s, *reason, tell_gateway);
      if (!r) {
        spdlog::error("could not end session {}: {}", s.id, r.error().describe());
        continue;
      }
      releases.push_back(std::move(r).value());
    }
    if (auto gone = store_.delete_tickets_expired_before(now - kTicketRetention); !gone) {
      spdlog::error("ticket cleanup: {}", gone.error().describe());
    }
  }
  for (auto& r : releases) finish(std::move(r));
}

void SessionService::check_health() {
  struct Probe {
    const StaticHost* host;
    std::string compartment;
    Status result;
  };
  std::vector<Probe> probes;
  for (const auto& [name, c] : policy_.compartments) {
    if (const auto* hosts = std::get_if<std::vector<StaticHost>>(&c.pool)) {
      for (const auto& h : *hosts) probes.push_back({&h, name, {}});
    }
  }
  for (auto& p : probes) p.result = deps_.probe(p.host->host, p.host->port);

  std::vector<Release> releases;
  {
    std::lock_guard lock(mu_);
    const TimePoint now = deps_.clock();
    for (auto& p : probes) {
      auto& state = hosts_[p.host->id];
      const bool ok = p.result.has_value();
      const std::string error = ok ? "" : p.result.error().message;
      const bool changed = !state.checked || state.healthy != ok;
      state.checked = true;
      state.healthy = ok;
      state.error = error;
      if (auto stored = store_.upsert_desktop({p.host->id, p.compartment, "static", p.host->host,
                                               p.host->port, p.host->capacity, ok, now, error});
          !stored) {
        spdlog::error("desktop health: {}", stored.error().describe());
      }
      if (!changed) continue;
      if (ok) {
        spdlog::info("desktop {} is healthy", p.host->id);
      } else {
        spdlog::warn("desktop {} is unhealthy: {}", p.host->id, error);
      }
      audit({{"type", ok ? "desktop.healthy" : "desktop.unhealthy"},
             {"outcome", ok ? "info" : "error"},
             {"actor_kind", "service"},
             {"actor", "enclave-sessiond"},
             {"object", p.host->id},
             {"details", {{"compartment", p.compartment}, {"error", error}}}});
    }
    std::vector<std::string> dead;
    for (const auto& [id, handle] : local_) {
      if (!handle->alive()) dead.push_back(id);
    }
    for (const auto& id : dead) {
      auto s = store_.session(id);
      if (!s || !*s) continue;
      audit(event("desktop.unhealthy", "error", &**s,
                  {{"error", "a process of the local desktop exited"}}));
      auto r = end_locked(**s, end_reason::kDesktopFailed, true);
      if (r) releases.push_back(std::move(r).value());
    }
  }
  for (auto& r : releases) finish(std::move(r));
}

void SessionService::shutdown() {
  std::vector<Release> releases;
  {
    std::lock_guard lock(mu_);
    auto open = store_.open_sessions();
    if (open) {
      for (auto& s : *open) {
        auto r = end_locked(s, "session manager stopped", true);
        if (r) releases.push_back(std::move(r).value());
      }
    }
  }
  for (auto& r : releases) finish(std::move(r));
}

}  // namespace enclave::sessionmgr
